"""The store several chatbus nodes share: the whole :class:`~chatbus.core.store.base.Store` over Redis.

The log is the :class:`~.redis.RedisEngine`'s stream (ids from its append script, the
same on every node); the roster, id maps, state and the changes laid over logged messages
are :class:`~.redis_state.RedisState`'s; the files' metadata :class:`~.redis_files.RedisFiles`'.
Besides what every store does it has:

* :meth:`RedisStore.set_state_fenced`: a write of state that only the holder of a lease makes;
* :meth:`RedisStore.trim`: history dropped by age, with what hangs on it;
* :meth:`RedisStore.kept_from`: the oldest id the log still keeps (a client further behind
  must reload: ``missedReset``);
* what copying a log in needs (``chatbus copy``): :meth:`RedisStore.append` under a message's
  own id, :meth:`RedisStore.keep_versions`, :meth:`RedisStore.adopt_epoch`, :meth:`RedisStore.erase`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import StoreError
from ..message import DEFAULT_ROOM, Agent, Attachment, Message
from ..store.base import SharedStore, Store
from .base import Lease
from .codec import decode, encode
from .redis import RedisEngine
from .redis_files import RedisFiles
from .redis_scripts import APPEND_AT
from .redis_state import RedisState

__all__ = ["RedisStore"]

T = TypeVar("T")

Reactions = tuple[tuple[str, tuple[str, ...]], ...]

#: KEYS: the lease, the state. ARGV: the lease's value (``holder\ntoken``), key, '1' to set (else
#: delete), value. 1 when written; 0, nothing written, when the lease is no longer that grant.
_FENCED = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '1' then redis.call('HSET', KEYS[2], ARGV[2], ARGV[4]) else redis.call('HDEL', KEYS[2], ARGV[2]) end
return 1
"""
#: KEYS: the log, the rooms. ARGV: the key prefix, the first id to keep ('' to drop nothing).
#: Drops the entries below it, then every room index's entries and every room below the oldest
#: entry left. How many entries were dropped.
_TRIM = """
local dropped = 0
if ARGV[2] ~= '' then dropped = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[2] .. '-0') end
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
local below = first and ('(' .. string.match(first[1], '^(%d+)')) or '+inf'
for _, room in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  redis.call('ZREMRANGEBYSCORE', ARGV[1] .. 'room:' .. room, '-inf', below)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', below)
return dropped
"""
#: How many changes or links one call of a tidying script forgets at most.
_TIDY_BATCH = 1000


class RedisStore(Store):
    """Everything a hub keeps, in one Redis that every node shares (``[engine] url``)."""

    shared = True

    def __init__(self, engine: RedisEngine) -> None:
        super().__init__()
        self.engine = engine
        self.redis_engine = engine
        self.state = RedisState(engine)
        self.files = RedisFiles(engine)
        self._scripts: dict[str, Any] = {}

    # plumbing --------------------------------------------------------------
    async def _observed(self, operation: str, work: Awaitable[T]) -> T:
        observe = self.observe
        if observe is None:
            return await work
        started = time.perf_counter()
        try:
            return await work
        finally:
            observe(operation, time.perf_counter() - started)

    @property
    def _r(self) -> Any:
        """The engine's client (its replies are ``str``: it decodes them)."""
        return self.redis_engine._r

    def _key(self, name: str) -> str:
        return f"{self.redis_engine._prefix}:{name}"

    async def _script(self, what: str, source: str, keys: list[str], args: list[Any]) -> Any:
        engine = self.redis_engine
        if source not in self._scripts:
            self._scripts[source] = self._r.register_script(source)
        script = self._scripts[source]
        return await engine._call(what, lambda: script(keys=keys, args=args))

    # lifecycle -------------------------------------------------------------
    async def open(self) -> None:
        await self.redis_engine.open()
        self._last_id = max(self._last_id, await self.redis_engine.last_id())

    async def close(self) -> None:
        await self.redis_engine.close()

    async def reload_last_id(self) -> int:
        """:attr:`last_id` read again from Redis, even when lower: after a subscription's
        :class:`~.base.Reset` (the log was replaced, its ids start again); the new value."""
        self._last_id = await self.redis_engine.last_id()
        return self._last_id

    @property
    def epoch(self) -> str:
        return self.redis_engine.epoch

    async def ping(self) -> None:
        await self.redis_engine.ping()

    # the log ---------------------------------------------------------------
    async def add(self, message: Message) -> Message:
        stored = await self._observed("append", self.redis_engine.append(message))
        self.heard(stored.id)
        return stored

    async def append(self, message: Message, *, file_ids: Sequence[str] | None = None) -> None:
        """Store ``message`` under its own id (copying a log), with the links of its files
        (``file_ids``, default its attachments'); refused unless the id is above every id given."""
        await self.append_many([(message, file_ids)])

    async def append_many(self, batch: Sequence[tuple[Message, Sequence[str] | None]]) -> None:
        """:meth:`append` each message of ``batch`` (in id order), in one round trip to Redis.
        The first refused raises ``StoreError``; those before it are stored."""
        if not batch:
            return
        engine = self.redis_engine
        if APPEND_AT not in self._scripts:
            self._scripts[APPEND_AT] = self._r.register_script(APPEND_AT)
        script = self._scripts[APPEND_AT]

        async def run() -> list[Any]:
            pipe = self._r.pipeline(transaction=False)
            for message, file_ids in batch:
                await script(*self._append_at(message, file_ids), client=pipe)
            found: list[Any] = await pipe.execute()
            return found

        answers = await self._observed("append", engine._call("store the message", run))
        for (message, _), (stored, epoch, newest) in zip(batch, answers, strict=True):
            engine._epoch_seen(str(epoch))
            if not int(stored):
                raise StoreError(
                    f"message {message.id} cannot be stored under its own id: the log in Redis at "
                    f"{engine.shown_url} already has ids up to {newest}, and ids only grow; copy into an empty Redis"
                )
            self.heard(message.id)

    def _append_at(self, message: Message, file_ids: Sequence[str] | None) -> tuple[list[str], list[Any]]:
        """The keys and arguments of :data:`APPEND_AT` for ``message``."""
        engine = self.redis_engine
        files = [a.id for a in message.attachments] if file_ids is None else list(file_ids)
        keys = [engine._keys[name] for name in ("counter", "log", "epoch")]
        keys += [engine._room_key(message.room), engine._keys["rooms"]]
        args = [encode(message), engine.max_length, message.room, engine._channel, uuid.uuid4().hex]
        args += [json.dumps(files), self._key(""), str(message.id)]
        return keys, args

    async def get(self, message_id: int) -> Message | None:
        return await self._observed("read", self.state.get(message_id))

    async def since(self, after_id: int, limit: int, room: str | None = None) -> list[Message]:
        """Messages above ``after_id``, oldest first; when the log no longer keeps all of them
        (see :meth:`kept_from`), what it keeps."""
        missed = await self._observed("read", self.redis_engine.since(after_id, limit, room))
        return await self._observed("read", self.state.overlay(missed.messages))

    async def kept_from(self) -> int:
        """The oldest id the log still keeps (0 when it is empty): a reader that last saw an id
        below this one minus one missed messages the log no longer has."""
        log_key = self.redis_engine._keys["log"]
        r = self._r
        first = await self._observed(
            "read", self.redis_engine._call("read the log", lambda: r.xrange(log_key, "-", "+", 1))
        )
        return int(first[0][0].split("-", 1)[0]) if first else 0

    async def before(
        self, before_id: int | None, limit: int, room: str | None = DEFAULT_ROOM
    ) -> tuple[list[Message], bool]:
        found, more = await self._observed("read", self.redis_engine.before(before_id, limit, room))
        return await self._observed("read", self.state.overlay(found)), more

    async def rooms(self) -> list[str]:
        r, key = self._r, self.redis_engine._keys["rooms"]
        found = await self._observed("read", self.redis_engine._call("read the rooms", lambda: r.zrevrange(key, 0, -1)))
        return [str(room) for room in found]

    # changes ---------------------------------------------------------------
    async def replace(self, message: Message, previous: Message) -> None:
        await self._observed("change", self.state.replace(message, previous))

    async def react(self, message_id: int, emoji: str, user_id: str, on: bool) -> Reactions:
        return await self._observed("react", self.state.react(message_id, emoji, user_id, on))

    async def versions(self, message_id: int) -> list[str]:
        return await self._observed("read", self.state.versions(message_id))

    async def keep_versions(self, message_id: int, texts: Sequence[str]) -> None:
        """The texts a logged message had before its edits, oldest first (copying a log)."""
        change, changed = self._key(f"change:{message_id}"), self._key("changed")

        async def write() -> None:
            pipe = self._r.pipeline(transaction=True)
            pipe.hset(change, "v", json.dumps(list(texts))).zadd(changed, {str(message_id): message_id})
            await pipe.execute()

        await self._observed("change", self.redis_engine._call("keep the change", write))

    # the roster ------------------------------------------------------------
    async def list_agents(self) -> list[Agent]:
        return await self._observed("read", self.state.list_agents())

    async def get_agent(self, name: str) -> Agent | None:
        return await self._observed("read", self.state.get_agent(name))

    async def save_agent(self, agent: Agent) -> None:
        await self._observed("write", self.state.save_agent(agent))

    async def remove_agent(self, name: str) -> bool:
        return await self._observed("write", self.state.remove_agent(name))

    async def update_agent(self, name: str, **fields: Any) -> Agent | None:
        return await self._observed("write", self.state.update_agent(name, **fields))

    # the transports' id maps -----------------------------------------------
    async def map_external(self, transport: str, hub_id: int, external_id: str) -> None:
        await self._observed("write", self.state.map_external(transport, hub_id, external_id))

    async def hub_id_for(self, transport: str, external_id: str) -> int | None:
        return await self._observed("read", self.state.hub_id_for(transport, external_id))

    async def external_ids_for(self, transport: str, hub_id: int) -> list[str]:
        return await self._observed("read", self.state.external_ids_for(transport, hub_id))

    # files -----------------------------------------------------------------
    async def add_file(self, attachment: Attachment, uploaded_at: float) -> None:
        await self._observed("write", self.files.add_file(attachment, uploaded_at))

    async def get_file(self, file_id: str) -> Attachment | None:
        return await self._observed("read", self.files.get_file(file_id))

    async def touch_file(self, file_id: str, uploaded_at: float) -> Attachment | None:
        return await self._observed("write", self.files.touch_file(file_id, uploaded_at))

    async def files_total(self) -> int:
        return await self._observed("read", self.files.files_total())

    async def orphan_files(self, uploaded_before: float, limit: int = 1000) -> list[Attachment]:
        return await self._observed("read", self.files.orphan_files(uploaded_before, limit))

    async def remove_file(self, file_id: str, *, unused_since: float | None) -> Attachment | None:
        return await self._observed("write", self.files.remove_file(file_id, unused_since=unused_since))

    async def message_file_ids(self, message_id: int) -> list[str]:
        return await self._observed("read", self.files.message_file_ids(message_id))

    # state -----------------------------------------------------------------
    async def get_state(self, key: str) -> str | None:
        return await self._observed("read", self.state.get_state(key))

    async def set_state(self, key: str, value: str | None) -> None:
        await self._observed("write", self.state.set_state(key, value))

    async def set_state_fenced(self, key: str, value: str | None, lease: Lease) -> bool:
        """Set (``None``: delete) a value only while ``lease`` is still the current grant of its
        duty, in one step with that check; False, nothing written, once it is not."""
        keys = [self.redis_engine._lease_keys(lease.name)[0], self._key("state")]
        args = [f"{lease.holder}\n{lease.token}", key, "0" if value is None else "1", value or ""]
        return bool(await self._observed("write", self._script("keep the state", _FENCED, keys, args)))

    # history by age ----------------------------------------------------------
    async def trim(self, max_age: float) -> int:
        """Drop the log's messages older than ``max_age`` seconds (0: none by age), and forget
        what hangs on the messages no longer in the log, however they left it (``max_length``
        too): their room entries, their edits and reactions, their files' links (a file no
        message carries is then an orphan, for the files' sweep). How many messages were dropped."""
        cut = await self._cut(time.time() - max_age) if max_age > 0 else None
        keys = [self.redis_engine._keys["log"], self.redis_engine._keys["rooms"]]
        args = [self._key(""), "" if cut is None else str(cut)]
        dropped = int(await self._observed("trim", self._script("drop old messages", _TRIM, keys, args)))
        while await self._observed("trim", self.state.prune(_TIDY_BATCH)) >= _TIDY_BATCH:
            pass
        while await self._observed("trim", self.files.unlink_trimmed(_TIDY_BATCH)) >= _TIDY_BATCH:
            pass
        return dropped

    async def _first_at_or_after(self, message_id: int, *, newest: bool = False) -> Message | None:
        """The logged message with the lowest id from ``message_id`` on (the newest one when ``newest``)."""
        engine, log_key = self.redis_engine, self.redis_engine._keys["log"]
        if newest:
            found = await engine._call("read the log", lambda: self._r.xrevrange(log_key, "+", "-", 1))
        else:
            found = await engine._call("read the log", lambda: self._r.xrange(log_key, f"{message_id}-0", "+", 1))
        return decode(int(found[0][0].split("-", 1)[0]), found[0][1]["m"]) if found else None

    async def _cut(self, cutoff: float) -> int | None:
        """The first id to keep so that what goes was sent before ``cutoff`` (seconds since the
        epoch); None to keep everything. A binary search on ids: a few reads, whatever the log's length."""

        def old(message: Message) -> bool:
            return message.timestamp.timestamp() < cutoff

        first = await self._first_at_or_after(0)
        if first is None or not old(first):
            return None
        newest = await self._first_at_or_after(0, newest=True)
        assert newest is not None
        if old(newest):
            return newest.id + 1
        low, high = first.id, newest.id  # the entry at or after low is old, the one at high young
        while high - low > 1:
            middle = (low + high) // 2
            found = await self._first_at_or_after(middle)
            if found is not None and old(found):
                low = middle
            else:
                high = middle
        return high

    # copying a log in ----------------------------------------------------------
    async def adopt_epoch(self, epoch: str) -> None:
        """Name this log ``epoch`` (a copied log keeps its name, so its clients resume seamlessly)."""
        engine = self.redis_engine
        await engine._call("keep the epoch", lambda: self._r.set(engine._keys["epoch"], epoch))
        engine._epoch = epoch

    async def holds_chat(self) -> bool:
        """Whether this Redis has a chat already: messages, agents, state or files."""
        r, keys = self._r, self.redis_engine._keys

        async def read() -> Any:
            pipe = r.pipeline(transaction=False)
            pipe.get(keys["counter"]).scard(self._key("agents")).hlen(self._key("state")).hlen(self._key("files"))
            return await pipe.execute()

        counter, agents, state, files = await self.redis_engine._call("read the log", read)
        return bool(int(counter or 0) or agents or state or files)

    async def erase(self) -> int:
        """Delete every key of this chat (under the engine's prefix); how many. The epoch goes
        too: the next log has another name unless one is adopted."""
        r, pattern = self._r, self._key("*")

        async def work() -> int:
            count, keys = 0, []
            async for key in r.scan_iter(match=pattern, count=1000):
                keys.append(key)
                if len(keys) >= 1000:
                    count, keys = count + int(await r.unlink(*keys)), []
            return count + (int(await r.unlink(*keys)) if keys else 0)

        count = int(await self.redis_engine._call("erase the chat", work))
        self._last_id = 0
        return count


if TYPE_CHECKING:  # checked by mypy: a RedisStore is what the cluster takes a shared store to be

    def _is_shared(store: RedisStore) -> SharedStore:
        return store
