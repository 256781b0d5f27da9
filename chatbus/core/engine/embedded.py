"""The embedded engine: one node over the SQLite (or memory) store, as chatbus runs by default.

It only wraps the store, whose behaviour it does not change: ids come from
:meth:`Store.allocate_id`, the log is the store's (which keeps everything, so
nobody is ever too far behind), fan-out stays inside the process, everyone
present is on this node, and every lease is this node's to take (there is no
other node to contend with, and no expiry is needed: the holders die with the
process).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from ..message import DEFAULT_ROOM, Message
from ..store import Store
from .base import LISTENING, Engine, Gap, Lease, Missed, Reset

__all__ = ["EmbeddedEngine"]


class EmbeddedEngine(Engine):
    """The engine of one node: ``store`` (opened and closed by it) and in-process fan-out."""

    kind = "embedded"

    def __init__(self, store: Store) -> None:
        self.store = store
        self._subscribers: list[asyncio.Queue[Message | None]] = []
        #: Appends finished out of order wait here until every lower id is done (None: failed).
        self._done: dict[int, Message | None] = {}
        self._next = 1
        self._present: dict[str, set[str]] = {}
        self._leases: dict[str, Lease] = {}
        self._tokens = 0
        self._closed = asyncio.Event()
        #: Rate limits: each key's tokens, when they were counted, and its sends of the last hour.
        self._allowances: dict[str, tuple[float, float, deque[float]]] = {}

    async def open(self) -> None:
        self._closed.clear()
        await self.store.open()
        self._next = self.store.last_id + 1

    async def close(self) -> None:
        self._closed.set()
        for queue in self._subscribers:
            queue.put_nowait(None)
        await self.store.close()

    async def ping(self) -> None:
        await self.store.ping()

    @property
    def epoch(self) -> str:
        return self.store.epoch

    # the log ---------------------------------------------------------------
    async def append(self, message: Message) -> Message:
        message = replace(message, id=self.store.allocate_id())
        stored = asyncio.ensure_future(self.store.append(message))
        stored.add_done_callback(lambda done: self._finished(message, not done.cancelled() and not done.exception()))
        await asyncio.shield(stored)
        return message

    def _finished(self, message: Message, ok: bool) -> None:
        """Publish stored messages in id order (commits may finish out of order)."""
        self._done[message.id] = message if ok else None
        while self._next in self._done:
            ready = self._done.pop(self._next)
            self._next += 1
            if ready is not None:
                for queue in self._subscribers:
                    queue.put_nowait(ready)

    async def last_id(self) -> int:
        return self.store.last_id

    async def since(self, after_id: int, limit: int, room: str | None = None) -> Missed:
        return Missed(await self.store.since(after_id, limit, room))

    async def before(
        self, before_id: int | None, limit: int, room: str | None = DEFAULT_ROOM
    ) -> tuple[list[Message], bool]:
        return await self.store.before(before_id, limit, room)

    # fan-out ---------------------------------------------------------------
    async def subscribe(self, after_id: int) -> AsyncIterator[Message | Gap | Reset]:
        queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            last = after_id
            while last + 1 < self._next:  # published before the subscription began
                missed = [m for m in await self.store.since(last, 500) if m.id < self._next]
                if not missed:
                    break
                for message in missed:
                    last = message.id
                    yield message
            while (item := await queue.get()) is not None:
                if item.id > last:
                    last = item.id
                    yield item
        finally:
            self._subscribers.remove(queue)

    async def broadcast(self, node: str, event: dict[str, Any]) -> None:
        return None  # there is no other node

    async def events(self, node: str) -> AsyncIterator[dict[str, Any]]:
        yield dict(LISTENING)  # no other node sends events: nothing else comes
        await self._closed.wait()

    async def take(self, key: str, *, burst: int, per_second: float, per_hour: int | None) -> float:
        now = time.monotonic()
        tokens, updated, recent = self._allowances.get(key, (float(burst), now, deque()))
        tokens = min(float(burst), tokens + max(0.0, now - updated) * per_second)
        while recent and recent[0] <= now - 3600:
            recent.popleft()
        wait = (1.0 - tokens) / per_second if tokens < 1.0 else 0.0
        if per_hour is not None and len(recent) >= per_hour:
            wait = max(wait, recent[0] + 3600 - now)
        if wait <= 0.0:
            tokens -= 1.0
            if per_hour is not None:
                recent.append(now)
        self._allowances[key] = (tokens, now, recent)
        return wait

    # presence --------------------------------------------------------------
    async def set_present(self, node: str, user_id: str, ttl: float) -> None:
        self._present.setdefault(user_id, set()).add(node)

    async def set_absent(self, node: str, user_id: str) -> None:
        nodes = self._present.get(user_id)
        if nodes is not None:
            nodes.discard(node)
            if not nodes:
                del self._present[user_id]

    async def present(self) -> dict[str, set[str]]:
        return {user: set(nodes) for user, nodes in self._present.items()}

    # leases ----------------------------------------------------------------
    async def acquire(self, name: str, holder: str, ttl: float) -> Lease | None:
        held = self._leases.get(name)
        if held is not None:
            return held if held.holder == holder else None
        self._tokens += 1
        lease = self._leases[name] = Lease(name, holder, self._tokens, ttl)
        return lease

    async def renew(self, lease: Lease) -> bool:
        return self._leases.get(lease.name) == lease

    async def release(self, lease: Lease) -> None:
        if self._leases.get(lease.name) == lease:
            del self._leases[lease.name]
