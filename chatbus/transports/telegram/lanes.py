"""One lane per Telegram chat: what the relay still has to do there, in order.

The hub hands the transport messages and their changes in order, and
expects it to return quickly; each chat then gets them from a lane of its
own, worked by a task of its own, so a chat that Telegram holds back (its
flood limit, a network problem) delays only itself.

A lane keeps the chat's work in order and keeps it short:

- an edit of a message still waiting in the lane changes the waiting
  message instead of queueing an edit (an answer that streams in while the
  chat is held back is sent once, as it is by then); a deletion of one
  removes it; a newer edit or reaction of a message replaces a waiting one;
- the chat's messages are edited at most once every
  ``telegram.edit_interval`` seconds in all (Telegram's edit limit is per
  chat: two answers being written at once share it), the last edit of each
  always sent;
- while the chat's flood limit holds it back (no room in the group rate, or
  Telegram answered 429 in the last minute), consecutive short messages
  waiting for the same topic are merged into one Telegram message
  (``merge.py``), each line naming its sender, in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from chatbus.core.message import Message

from .errors import Fatal, Stopped
from .formatting import Rendered
from .merge import fits
from .session import Session
from .settings import ChatKey

__all__ = ["Change", "Lane", "Post", "Work"]

log = logging.getLogger("chatbus.telegram")


@dataclass(slots=True)
class Post:
    """A hub message to post in the chat (in ``thread``, a forum topic, when set)."""

    message: Message
    thread: int | None = None
    #: Relayed again after a restart: parts already in the chat are not sent twice.
    resume: bool = False


@dataclass(slots=True)
class Change:
    """A change of a hub message to apply where it went in the chat."""

    message: Message
    kind: Literal["edit", "delete", "react"]


class Work(Protocol):
    """What a lane does with its items (the outbound relay implements it)."""

    def single(self, post: Post) -> Rendered | None:
        """``post`` as one Telegram message when it can be merged with others, else None."""

    async def post(self, chat: ChatKey, posts: list[Post]) -> None:
        """Post one message, or several merged into one Telegram message."""

    async def change(self, chat: ChatKey, change: Change) -> None:
        """Apply one change where its message went in the chat."""

    async def done(self, message_id: int) -> None:
        """The message is in this chat (or never will be)."""


Item = Post | Change


class Lane:
    """The work for one chat and the task that does it."""

    def __init__(self, chat: ChatKey, session: Session, work: Work, held_back: Callable[[], bool]) -> None:
        self.chat = chat
        self._session = session
        self._work = work
        self._held_back = held_back
        self._items: deque[Item] = deque()
        self._more = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        #: When the last edit in this chat was done (None: none yet).
        self._last_edit: float | None = None

    def __len__(self) -> int:
        return len(self._items)

    def post(self, post: Post) -> None:
        """Queue a message for the chat."""
        self._items.append(post)
        self._wake()

    async def change(self, change: Change) -> None:
        """Queue a change, folded into what waits for the same message where it can be."""
        hub_id = change.message.id
        for index, item in enumerate(self._items):
            if item.message.id != hub_id:
                continue
            if isinstance(item, Post) and change.kind != "react":
                if change.kind == "delete":
                    del self._items[index]
                    await self._work.done(hub_id)
                else:
                    item.message = change.message
                return
            if isinstance(item, Change) and item.kind == change.kind:
                item.message = change.message
                return
        self._items.append(change)
        self._wake()

    def _wake(self) -> None:
        self._idle.clear()
        self._more.set()

    async def wait_idle(self) -> None:
        """Until everything queued so far is done."""
        await self._idle.wait()

    async def run(self) -> None:
        """Work the lane until the transport stops (what is left is caught up after a restart)."""
        try:
            while True:
                if not self._items:
                    self._idle.set()
                    self._more.clear()
                    await self._session.wait_for(self._more)
                    continue
                await self._next()
        except (Stopped, Fatal):
            return

    async def _next(self) -> None:
        item = self._items[0]
        if isinstance(item, Change):
            await self._pace(item)  # still queued meanwhile, so newer edits fold into it
            self._items.popleft()  # taken: a newer edit from now on queues after it
            await self._guard(self._work.change(self.chat, item))
            if item.kind == "edit":
                self._last_edit = time.monotonic()
            return
        batch = self._batch(item)
        for _ in batch:
            self._items.popleft()
        if not await self._guard(self._work.post(self.chat, batch)):
            for post in batch:  # never sent, and never will be: the relay goes on past it
                await self._work.done(post.message.id)

    def _batch(self, first: Post) -> list[Post]:
        """``first``, and the posts behind it it can be merged with while the chat is held back."""
        single = self._work.single(first)
        if single is None or len(self._items) < 2 or not self._session.settings.merge or not self._held_back():
            return [first]
        batch, parts = [first], [single]
        for item in list(self._items)[1:]:
            if not isinstance(item, Post) or item.thread != first.thread:
                break
            part = self._work.single(item)
            if part is None or not fits([*parts, part]):
                break
            batch.append(item)
            parts.append(part)
        return batch

    async def _pace(self, change: Change) -> None:
        """Edits in this chat at most every ``edit_interval`` seconds (Telegram's edit limit is
        per chat), counted from when the last one was done."""
        if change.kind == "edit" and self._last_edit is not None:
            await self._session.sleep(self._last_edit + self._session.settings.edit_interval - time.monotonic())

    async def _guard(self, work: Awaitable[None]) -> bool:
        """Run one item's work; a bug in it is logged (False), and the lane goes on."""
        try:
            await work
        except (Stopped, Fatal):
            raise
        except Exception:
            log.exception("telegram: relaying to chat %s failed; going on with the next message", self.chat)
            return False
        return True
