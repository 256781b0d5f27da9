"""The Redis engine: several chatbus nodes as one chat, over one Redis (``chatbus[redis]``).

The log is one Redis Stream whose entry ids are the message ids
(``<id>-0``). One Lua script gives a message its id and stores and publishes
it, atomically, as Centrifugo's Redis engine does: ``INCR`` the counter,
``XADD`` to the stream (trimmed to ``max_length`` entries) and ``PUBLISH`` to
the log's channel. Ids therefore grow strictly across all nodes with no gap,
and whoever gets message ``n`` from the channel knows the stream already has
1..n.

Redis pub/sub is at-most-once (a subscriber that is slow or reconnects loses
what was published meanwhile), so a subscription repairs every gap from the
stream by id, and says :class:`~.base.Gap` where the stream was trimmed past it.

Presence is one sorted set, each member ``[user, node]`` scored with the
time (Redis' clock, so nodes' clocks do not matter) it expires at; leases are
keys set with ``NX PX`` whose value carries the holder and the fencing token,
taken from a counter per lease that only grows.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import AuthenticationError, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeout

from ..errors import StoreError
from ..message import DEFAULT_ROOM, Message
from .base import LISTENING, Engine, Gap, Lease, Missed, Reset
from .codec import decode, encode
from .redis_scripts import ACQUIRE, APPEND, EVERYONE, PRESENT, RELEASE, RENEW, TAKE

__all__ = ["RedisEngine"]

log = logging.getLogger("chatbus.engine")

T = TypeVar("T")

#: Entries read from the stream at a time while scanning it.
_BATCH = 500
#: How many people one call renews (a node renews everyone it has every lease_ttl / 3).
_PRESENT_BATCH = 1000
#: Seconds within which a person's message sent again with the same client id is the same message.
_RESEND_WINDOW = 600
#: Seconds of quiet after which a subscription checks the log for messages pub/sub did not bring.
_IDLE_CHECK = 1.0
#: Seconds between attempts to subscribe again after the connection to Redis broke, at most.
_MAX_BACKOFF = 2.0


@dataclass
class _Position:
    """Where a subscription is: the last id it yielded, of the log named ``epoch``."""

    last: int
    epoch: str


def _entry_id(stream_id: str) -> int:
    return int(stream_id.split("-", 1)[0])


class RedisEngine(Engine):
    """Many nodes over one Redis at ``url`` (``redis://HOST:PORT/DB``); keys start with ``prefix:``."""

    kind = "redis"

    def __init__(self, url: str, *, prefix: str = "chatbus", max_length: int = 100_000) -> None:
        self.url = url
        #: ``url`` without its password, for logs, errors and ``/readyz``.
        self.shown_url = _without_password(url)
        self.max_length = max_length
        self._keys = {name: f"{prefix}:{name}" for name in ("counter", "log", "epoch", "presence", "rooms")}
        self._prefix = prefix
        self._channel = f"{prefix}:messages"
        self._events = f"{prefix}:events"
        self._redis: aioredis.Redis | None = None
        self._epoch = ""
        self._closed = asyncio.Event()
        self._scripts: dict[str, Any] = {}

    @property
    def _r(self) -> aioredis.Redis:
        if self._redis is None:
            raise StoreError("the Redis engine is not open")
        return self._redis

    async def _call(self, what: str, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work``, turning Redis' errors into a ``StoreError`` that says what to check."""
        try:
            return await work()
        except (RedisError, OSError) as exc:
            raise StoreError(f"Redis at {self.shown_url} cannot {what} now: {_reason(exc)}") from exc

    # lifecycle -------------------------------------------------------------
    async def open(self) -> None:
        if self._redis is not None:
            return
        self._closed.clear()
        # A command whose connection broke is tried again, quickly: every write here is safe to repeat.
        retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), 2)
        self._redis = aioredis.Redis.from_url(self.url, decode_responses=True, health_check_interval=10, retry=retry)
        for name, source in (("append", APPEND), ("present", PRESENT), ("everyone", EVERYONE)):
            self._scripts[name] = self._redis.register_script(source)
        for name, source in (("acquire", ACQUIRE), ("renew", RENEW), ("release", RELEASE), ("take", TAKE)):
            self._scripts[name] = self._redis.register_script(source)
        try:
            await self._call("be reached", self._set_epoch)
        except StoreError:
            await self.close()
            raise

    async def _set_epoch(self) -> None:
        """The epoch is made by the first node that opens an empty Redis, and kept there."""
        await self._r.set(self._keys["epoch"], uuid.uuid4().hex, nx=True)
        self._epoch = str(await self._r.get(self._keys["epoch"]))

    async def close(self) -> None:
        self._closed.set()
        if self._redis is not None:
            redis, self._redis = self._redis, None
            await redis.aclose()

    async def ping(self) -> None:
        await self._call("be reached", self._r.ping)

    @property
    def epoch(self) -> str:
        return self._epoch

    # the log ---------------------------------------------------------------
    async def append(self, message: Message) -> Message:
        if message.client_id and message.kind == "human":
            # A person's client sends a message again after a reconnect, maybe to another node
            # (its node died): within the resend window it is the same message, stored once.
            sent = hashlib.sha256(json.dumps([message.sender, message.client_id]).encode()).hexdigest()
            return await self._append(message, f"sent:{sent}", keep=_RESEND_WINDOW)
        return await self._append(message, uuid.uuid4().hex)

    async def _append(self, message: Message, attempt: str, *, keep: int = 30) -> Message:
        """Append once per ``attempt`` (for ``keep`` seconds): the same attempt again answers the id it was given."""
        text = encode(message)
        files = json.dumps([attachment.id for attachment in message.attachments])
        args = [text, self.max_length, message.room, self._channel, uuid.uuid4().hex, files, f"{self._prefix}:", keep]
        keys = [
            self._keys["counter"], self._keys["log"], f"{self._prefix}:appended:{attempt}", self._keys["epoch"],
            self._room_key(message.room), self._keys["rooms"],
        ]  # fmt: skip
        new_id, epoch = await self._call("store the message", lambda: self._scripts["append"](keys=keys, args=args))
        self._epoch_seen(str(epoch))
        return decode(int(new_id), text)

    def _epoch_seen(self, epoch: str) -> None:
        if epoch != self._epoch:
            log.warning(
                "the message log in Redis at %s was replaced (epoch %s, was %s): ids start again; "
                "keep Redis' data across restarts (appendonly yes)",
                self.shown_url, epoch, self._epoch,
            )  # fmt: skip
            self._epoch = epoch

    async def last_id(self) -> int:
        found = await self._call("read the log", lambda: self._r.get(self._keys["counter"]))
        return int(found or 0)

    async def _range(self, start: str, count: int, *, reverse: bool = False) -> list[tuple[str, dict[str, str]]]:
        """Entries from ``start`` (``(n-0`` excludes n), oldest first; newest first down from it when ``reverse``."""
        log_key = self._keys["log"]
        read: Any = (
            (lambda: self._r.xrevrange(log_key, start, "-", count))
            if reverse
            else (lambda: self._r.xrange(log_key, start, "+", count))
        )
        found: list[tuple[str, dict[str, str]]] = await self._call("read the log", read)
        return found

    async def since(self, after_id: int, limit: int, room: str | None = None) -> Missed:
        entries = await self._range(f"{after_id + 1}-0", limit if room is None else 1)
        kept = _entry_id(entries[0][0]) if entries else await self.last_id() + 1
        if kept > after_id + 1 and await self.last_id() > after_id:
            return Missed((await self.since(kept - 1, limit, room)).messages, reset=True)
        if room is None:
            return Missed([decode(_entry_id(stream_id), fields["m"]) for stream_id, fields in entries])
        key = self._room_key(room)
        ids = await self._call("read the log", lambda: self._r.zrangebyscore(key, f"({after_id}", "+inf", 0, limit))
        return Missed(await self._fetch(ids))

    async def before(
        self, before_id: int | None, limit: int, room: str | None = DEFAULT_ROOM
    ) -> tuple[list[Message], bool]:
        if before_id is not None and before_id <= 1:
            return [], False
        if room is None:
            end = "+" if before_id is None else f"{before_id - 1}-0"
            entries = await self._range(end, limit + 1, reverse=True)
            found = [decode(_entry_id(stream_id), fields["m"]) for stream_id, fields in entries]
        else:
            key, high = self._room_key(room), "+inf" if before_id is None else f"({before_id}"
            ids = await self._call("read the log", lambda: self._r.zrevrangebyscore(key, high, "-inf", 0, limit + 1))
            found = await self._fetch(ids)
        return list(reversed(found[:limit])), len(found) > limit

    def _room_key(self, room: str) -> str:
        return f"{self._prefix}:room:{room}"

    async def _fetch(self, ids: list[Any]) -> list[Message]:
        """The messages of ``ids`` still in the log, in the order of ``ids``."""
        if not ids:
            return []
        log_key = self._keys["log"]

        async def read() -> list[Any]:
            pipe = self._r.pipeline(transaction=False)
            for number in ids:
                pipe.xrange(log_key, f"{int(number)}-0", f"{int(number)}-0")
            return await pipe.execute()

        found = await self._call("read the log", read)
        return [decode(_entry_id(hit[0][0]), hit[0][1]["m"]) for hit in found if hit]

    # fan-out ---------------------------------------------------------------
    async def subscribe(self, after_id: int) -> AsyncIterator[Message | Gap | Reset]:
        position = _Position(after_id, self._epoch)
        backoff = 0.1
        while not self._closed.is_set():
            pubsub = self._r.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                # Compared with the log only once subscribed: nothing falls between the two.
                async for item in self._heard(position, None):
                    yield item
                if backoff > 0.1:
                    log.info("subscribed to Redis at %s again, after id %d", self.shown_url, position.last)
                backoff = 0.1
                while not self._closed.is_set():
                    # Quiet (None) is compared with the log too: a silent reconnect may have lost the last ones.
                    got = await pubsub.get_message(timeout=_IDLE_CHECK)
                    async for item in self._heard(position, got):
                        yield item
            except (RedisError, OSError, StoreError) as exc:
                said = log.warning if backoff == 0.1 else log.debug  # once per outage, not every retry
                said(
                    "lost the subscription to Redis at %s (%s); resubscribing after id %d",
                    self.shown_url, exc, position.last,
                )  # fmt: skip
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
            finally:
                await _quietly(pubsub.aclose())  # type: ignore[no-untyped-call]

    async def _heard(self, position: _Position, got: dict[str, Any] | None) -> AsyncIterator[Message | Gap | Reset]:
        """What a subscriber at ``position`` should yield on hearing ``got`` (None: on a check of the log)."""
        text: str | None = None
        if got is None:
            keys = [self._keys["epoch"], self._keys["counter"]]
            found_epoch, counter = await self._call("read the log", lambda: self._r.mget(keys))
            epoch, number = str(found_epoch or position.epoch), int(counter or 0)
        else:
            epoch, found, text = str(got["data"]).split(" ", 2)
            number = int(found)
        if epoch != position.epoch:
            self._epoch_seen(epoch)
            position.epoch, position.last, text = epoch, 0, None
            yield Reset(epoch)
        if number <= position.last:
            return
        if number == position.last + 1 and text is not None:
            position.last = number
            yield decode(number, text)
            return
        async for item in self._catch_up(position.last):  # some were lost on the way: the stream has them
            position.last = item.id if isinstance(item, Message) else item.resumed_at - 1
            yield item

    async def _catch_up(self, last: int) -> AsyncIterator[Message | Gap]:
        """Everything the stream has after ``last``, and a :class:`Gap` first where it was trimmed past it."""
        while True:
            entries = await self._range(f"({last}-0" if last else "-", _BATCH)
            if not entries:
                return
            first = _entry_id(entries[0][0])
            if first > last + 1:
                yield Gap(last, first)
            for stream_id, fields in entries:
                last = _entry_id(stream_id)
                yield decode(last, fields["m"])

    async def broadcast(self, node: str, event: dict[str, Any]) -> None:
        text = json.dumps({"node": node, "event": event}, separators=(",", ":"))
        await self._call("pass events on", lambda: self._r.publish(self._events, text))

    async def events(self, node: str) -> AsyncIterator[dict[str, Any]]:
        failing = False
        while not self._closed.is_set():
            pubsub = self._r.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._events)
                failing = False
                yield dict(LISTENING)
                while not self._closed.is_set():
                    got = await pubsub.get_message(timeout=_IDLE_CHECK)
                    if got is not None and (sent := json.loads(got["data"]))["node"] != node:
                        yield sent["event"]
            except (RedisError, OSError) as exc:
                said = log.debug if failing else log.warning  # once per outage, not every retry
                said("lost the events of other nodes from Redis at %s (%s); listening again", self.shown_url, exc)
                failing = True
                await asyncio.sleep(_MAX_BACKOFF / 4)
            finally:
                await _quietly(pubsub.aclose())  # type: ignore[no-untyped-call]

    async def take(self, key: str, *, burst: int, per_second: float, per_hour: int | None) -> float:
        keys = [f"{self._prefix}:rate:{key}", f"{self._prefix}:rate-hour:{key}"]
        args = [burst, repr(float(per_second)), per_hour or 0, uuid.uuid4().hex]
        wait = await self._call("count rate limits", lambda: self._scripts["take"](keys=keys, args=args))
        return max(0.0, float(wait))

    # presence --------------------------------------------------------------
    async def set_present(self, node: str, user_id: str, ttl: float) -> None:
        await self.set_present_many(node, [user_id], ttl)

    async def set_present_many(self, node: str, user_ids: Sequence[str], ttl: float) -> None:
        present, keys = self._scripts["present"], [self._keys["presence"]]
        for start in range(0, len(user_ids), _PRESENT_BATCH):
            members = [json.dumps([user_id, node]) for user_id in user_ids[start : start + _PRESENT_BATCH]]
            await self._call("keep presence", partial(present, keys=keys, args=[int(ttl * 1000), *members]))

    async def set_absent(self, node: str, user_id: str) -> None:
        member = json.dumps([user_id, node])
        await self._call("keep presence", lambda: self._r.zrem(self._keys["presence"], member))

    async def present(self) -> dict[str, set[str]]:
        members = await self._call("read presence", lambda: self._scripts["everyone"](keys=[self._keys["presence"]]))
        out: dict[str, set[str]] = {}
        for member in members:
            user_id, node = json.loads(member)
            out.setdefault(user_id, set()).add(node)
        return out

    # leases ----------------------------------------------------------------
    def _lease_keys(self, name: str) -> list[str]:
        return [f"{self._prefix}:lease:{name}", f"{self._prefix}:fence:{name}"]

    async def acquire(self, name: str, holder: str, ttl: float) -> Lease | None:
        if "\n" in holder:
            raise ValueError("a lease holder's name has no line breaks")
        args = [holder, max(1, int(ttl * 1000))]
        token = await self._call(
            "grant leases", lambda: self._scripts["acquire"](keys=self._lease_keys(name), args=args)
        )
        return None if token is None else Lease(name, holder, int(token), ttl)

    async def renew(self, lease: Lease) -> bool:
        args = [f"{lease.holder}\n{lease.token}", max(1, int(lease.ttl * 1000))]
        done = await self._call(
            "renew leases", lambda: self._scripts["renew"](keys=self._lease_keys(lease.name)[:1], args=args)
        )
        return bool(done)

    async def release(self, lease: Lease) -> None:
        args = [f"{lease.holder}\n{lease.token}"]
        await self._call(
            "release leases", lambda: self._scripts["release"](keys=self._lease_keys(lease.name)[:1], args=args)
        )


def _reason(exc: BaseException) -> str:
    """Why Redis could not do something, in words for the operator (the client's text names its internals)."""
    if isinstance(exc, AuthenticationError):
        return "it refused the user name or password in the engine url"
    if isinstance(exc, RedisTimeout | TimeoutError):
        return "it did not answer in time"
    if isinstance(exc, RedisConnectionError | OSError):
        return "it does not accept connections (is redis-server running there, and reachable?)"
    if isinstance(exc, ResponseError):
        return f"it answered: {exc}"  # Redis' own words: OOM, READONLY, MISCONF say what to change
    return type(exc).__name__


async def _quietly(closing: Awaitable[Any]) -> None:
    try:
        await closing
    except (RedisError, OSError):
        pass


def _without_password(url: str) -> str:
    """``url`` with its password, if any, shown as ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
