"""Handing stored messages and events to the transports.

Each transport is fed from a queue of its own by a task of its own
(:class:`Feed`), so one slow or failing transport never delays another, and
every transport sees the messages in id order: commits may finish out of
order, and :class:`Deliveries` holds a message back until every lower id is
stored (or has failed to be).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import Counter

from .message import (
    AgentStatus,
    Change,
    Event,
    Message,
    MessageDeleted,
    MessageEdited,
    Notice,
    Presence,
    Reaction,
    Typing,
)
from .transport import ChangeAware, Notifiable, Telling, Transport

__all__ = ["Deliveries", "Feed"]

log = logging.getLogger("chatbus.hub")

#: What a transport's feed carries: stored messages, events, changes to messages.
Item = Message | Event | Change | Notice

_WARN_FIRST_AT = 1000


class Feed:
    """Feeds one transport from its own queue, in order, isolating failures."""

    def __init__(self, transport: Transport, sent: Counter | None = None) -> None:
        self.transport = transport
        self._sent = sent
        self._counted: dict[str, Any] = {}
        self.queue: asyncio.Queue[Item] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self._notify = transport.notify if isinstance(transport, Notifiable) else None
        self._changed = transport.changed if isinstance(transport, ChangeAware) else None
        self._tell = transport.tell if isinstance(transport, Telling) else None
        self._warned_at = _WARN_FIRST_AT

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"chatbus-feed-{self.transport.name}")

    def put(self, item: Item) -> None:
        self.queue.put_nowait(item)
        size = self.queue.qsize()
        if size >= self._warned_at:
            log.warning("transport %r is falling behind: %d items waiting", self.transport.name, size)
            self._warned_at *= 10

    async def _run(self) -> None:
        queue = self.queue
        while True:
            item = await queue.get()
            try:
                if isinstance(item, Message):
                    await self.transport.deliver(item)
                elif isinstance(item, _CHANGES):
                    if self._changed is not None:
                        await self._changed(item)
                elif isinstance(item, Notice):
                    if self._tell is not None:
                        await self._tell(item)
                elif self._notify is not None:
                    await self._notify(item)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("transport %r failed to deliver %r", self.transport.name, _describe(item))
            finally:
                queue.task_done()
            if self._sent is not None:
                self._count(item)
            if queue.empty() and self._warned_at > _WARN_FIRST_AT:
                self._warned_at = _WARN_FIRST_AT

    def _count(self, item: Item) -> None:
        """One more item of its wire type handed to this transport (for ``chatbus_messages_sent_total``)."""
        kind = _wire_type(item)
        child = self._counted.get(kind)
        if child is None:
            assert self._sent is not None
            child = self._counted[kind] = self._sent.labels(self.transport.name, kind)
        child.inc()

    async def drain(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.queue.join(), timeout)
        except TimeoutError:
            log.warning(
                "transport %r still had %d items to deliver at shutdown", self.transport.name, self.queue.qsize()
            )

    async def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None


_CHANGES = (MessageEdited, MessageDeleted, Reaction)
_TYPES: dict[type, str] = {
    Presence: "presence",
    AgentStatus: "agent_status",
    Typing: "typing",
    MessageEdited: "message_edited",
    MessageDeleted: "message_deleted",
    Reaction: "reaction",
    Notice: "notice",
}


def _wire_type(item: Item) -> str:
    if isinstance(item, Message):
        return "message" if item.kind == "human" else "agent_response"
    return _TYPES.get(type(item), type(item).__name__.lower())


def _describe(item: Item) -> str:
    return f"message {item.id}" if isinstance(item, Message) else type(item).__name__


class Deliveries:
    """Every running transport's feed, and the in-order hand-off of stored messages.

    ``on_dispatch`` is called with each message as it is handed on (the hub
    runs ``on_message`` there), in id order, once per stored message.
    """

    def __init__(self, on_dispatch: Callable[[Message], None], sent: Counter | None = None) -> None:
        self.feeds: list[Feed] = []
        self._sent = sent
        self._on_dispatch = on_dispatch
        #: Where this node's own events, changes and notices also go (the other nodes), when set.
        self.relay: Callable[[Item], None] | None = None
        self._ready: dict[int, Message | None] = {}
        #: Changes of messages not handed on yet, by message id.
        self._early: dict[int, list[Change]] = {}
        self._next = 1

    @property
    def next_id(self) -> int:
        """The id of the next message to hand on."""
        return self._next

    def resume_after(self, last_id: int) -> None:
        """The next message to hand on is ``last_id + 1`` (everything up to it was stored earlier)."""
        self._next = last_id + 1
        self._ready.clear()
        self._early.clear()

    def start(self, transports: Iterable[Transport]) -> None:
        """Feed ``transports`` from now on."""
        for transport in transports:
            self.add_feed(transport).start()

    def add_feed(self, transport: Transport) -> Feed:
        """Feed ``transport`` too, from the next item on; call :meth:`Feed.start` once it can take them."""
        feed = Feed(transport, self._sent)
        self.feeds.append(feed)
        return feed

    async def remove_feed(self, transport: Transport) -> None:
        """Stop feeding ``transport`` (what was queued for it is dropped)."""
        for feed in [feed for feed in self.feeds if feed.transport is transport]:
            self.feeds.remove(feed)
            await feed.cancel()

    def stored(self, message: Message, ok: bool) -> None:
        """``message`` is committed (or failed to be); hand on whatever is now in order."""
        self._ready[message.id] = message if ok else None
        while self._next in self._ready:
            number = self._next
            ready = self._ready.pop(number)
            self._next += 1
            if ready is not None:
                self._dispatch(ready)
            for change in self._early.pop(number, ()):
                self._put(change)

    def change(self, change: Change, *, relay: bool = True) -> None:
        """Hand a change of a stored message to every transport, after the message itself
        (``relay=False``: it came from another node, which told the others)."""
        if relay and self.relay is not None:
            self.relay(change)
        number = change.message.id
        if number >= self._next:  # stored, but not handed on yet
            self._early.setdefault(number, []).append(change)
        else:
            self._put(change)

    def tell(self, notice: Notice, *, relay: bool = True) -> None:
        """Hand a notice for one person to every transport."""
        if relay and self.relay is not None:
            self.relay(notice)
        self._put(notice)

    def _put(self, item: Item) -> None:
        for feed in self.feeds:
            feed.put(item)

    def _dispatch(self, message: Message) -> None:
        for feed in self.feeds:
            feed.put(message)
        self._on_dispatch(message)

    def notify(self, event: Event, *, relay: bool = True) -> None:
        """Hand a presence, agent-status or typing event to every transport."""
        if relay and self.relay is not None:
            self.relay(event)
        for feed in self.feeds:
            feed.put(event)

    async def drain(self, timeout: float) -> None:
        await asyncio.gather(*(feed.drain(timeout) for feed in self.feeds))

    async def stop(self) -> None:
        for feed in self.feeds:
            await feed.cancel()
        self.feeds.clear()
