"""Updates that wait for a file to be fetched, one queue per chat, kept in the store until done.

Fetching a file from Telegram can take seconds (a 20 MB video, a slow or
failing download tried again). Updates are otherwise handled one after the
other, so a download there would hold up every chat. Instead, a message
with a file, and whatever comes after it from the same chat while it is
fetched (messages, edits, reactions), goes to that chat's queue here and is
handled in order by a task of its own; other chats go on at once. The
messages of an album (several photos or files sent at once, one update
each) are handled together, as one hub message.

Such an update is written to the store (``telegram:backlog``, the updates as
Telegram sent them) before it counts as handled, so Telegram can be told it
is done (the offset moves on, the webhook is answered) without it being
lost: one that was not finished when chatbus stopped or crashed is handled
after the restart. Handling it twice does no harm: a message already in the
hub is not taken again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update

from chatbus.core.errors import StoreError

from .errors import Fatal, Stopped
from .session import Session

__all__ = ["BACKLOG_KEY", "Backlog", "chat_of"]

log = logging.getLogger("chatbus.telegram")

#: Store key of the updates still to be handled: JSON ``{update id: update}``.
BACKLOG_KEY = "telegram:backlog"
#: How long the rest of an album is waited for, in steps of; and the most files an album holds.
_ALBUM_WAIT = 1.0
_ALBUM_STEP = 0.05
_ALBUM_MOST = 10


class Backlog:
    """Per-chat queues of updates handled off the main update loop, in order."""

    def __init__(self, session: Session, handle: Callable[[list[Update]], Awaitable[None]]) -> None:
        self._session = session
        #: Handles one update, or the updates of one album together.
        self._handle = handle
        self._queues: dict[int, deque[Update]] = {}
        #: Chat id -> the task working its queue, while there is one.
        self._workers: dict[int, asyncio.Task[Any]] = {}
        #: Update id -> the update as Telegram sent it, until it is handled.
        self._saved: dict[int, dict[str, Any]] = {}
        self._writing = asyncio.Lock()

    def reset(self) -> None:
        """A new run: nothing queued yet (what the store holds is replayed by :meth:`replay`)."""
        self._queues.clear()
        self._workers.clear()
        self._saved.clear()
        self._writing = asyncio.Lock()

    def busy(self, chat_id: int) -> bool:
        """Whether updates of ``chat_id`` are still queued (a new one must queue behind them)."""
        worker = self._workers.get(chat_id)
        return worker is not None and not worker.done()

    async def add(self, update: Update, chat_id: int) -> None:
        """Keep ``update`` in the store, then handle it after the chat's earlier ones."""
        self._saved[update.update_id] = update.to_dict()
        await self._write()
        self._queue(update, chat_id)

    async def replay(self) -> None:
        """Queue again what a previous run kept but did not finish."""
        raw = await self._session.store().get_state(BACKLOG_KEY)
        if not raw:
            return
        try:
            saved = {int(key): value for key, value in json.loads(raw).items()}
        except (ValueError, AttributeError, TypeError):
            log.error("telegram: the kept updates cannot be read; they are dropped")
            await self._session.fenced.set_state(BACKLOG_KEY, None)
            return
        bot = self._session.live_bot()
        log.info("telegram: handling %d update(s) kept from before the restart", len(saved))
        for update_id in sorted(saved):
            try:
                update = Update.de_json(saved[update_id], bot)
            except (TypeError, ValueError, KeyError, AttributeError):
                log.error("telegram: kept update %s cannot be read by this version of python-telegram-bot; "
                          "it is skipped", update_id)  # fmt: skip
                continue
            chat = chat_of(update)
            if chat is None:
                continue
            self._saved[update_id] = saved[update_id]
            self._queue(update, chat)

    def _queue(self, update: Update, chat_id: int) -> None:
        self._queues.setdefault(chat_id, deque()).append(update)
        if not self.busy(chat_id):
            self._workers[chat_id] = self._session.spawn(self._work(chat_id), f"backlog-{chat_id}")

    async def _work(self, chat_id: int) -> None:
        """Handle the chat's queued updates in order, an album's together, until none is left."""
        queue = self._queues[chat_id]
        try:
            while queue:
                try:
                    batch = await self._next(queue)
                except Stopped:
                    return  # stopping: what is left is kept, and handled after a restart
                if not await self._run(batch):
                    return
        finally:
            if not queue:
                self._queues.pop(chat_id, None)

    async def _next(self, queue: deque[Update]) -> list[Update]:
        """The next update, with the rest of its album: Telegram sends an album's messages one
        after the other, so those not read yet are waited for a moment."""
        batch = [queue.popleft()]
        album = _album_of(batch[0])
        if album is None:
            return batch
        waited = 0.0
        while len(batch) < _ALBUM_MOST:
            if queue and _album_of(queue[0]) == album:
                batch.append(queue.popleft())
            elif queue or waited >= _ALBUM_WAIT:
                break
            else:
                await self._session.sleep(_ALBUM_STEP)
                waited += _ALBUM_STEP
        return batch

    async def _run(self, batch: list[Update]) -> bool:
        """Handle one update (or album); False when the transport stops meanwhile."""
        session = self._session
        while True:
            try:
                await self._handle(batch)
            except (Stopped, Fatal):
                return False  # kept: handled after a restart
            except StoreError as exc:
                log.error("telegram: update %s could not be stored (%s); trying again", batch[0].update_id, exc)
                try:
                    await session.sleep(session.settings.retry_initial_delay)
                except Stopped:
                    return False
                continue
            except Exception:
                log.exception("telegram: update %s could not be handled; skipping it", batch[0].update_id)
            break
        for update in batch:
            self._saved.pop(update.update_id, None)
        try:
            await self._write()
        except (StoreError, Stopped) as exc:
            log.error("telegram: cannot note that update %s is done: %s", batch[0].update_id, exc or "stopping")
        return True

    async def _write(self) -> None:
        """Write what is kept, one write at a time, so an older one never lands after a newer one."""
        async with self._writing:
            value = json.dumps({str(key): value for key, value in self._saved.items()}) if self._saved else None
            await self._session.fenced.set_state(BACKLOG_KEY, value)


def _album_of(update: Update) -> str | None:
    """The album (``media_group_id``) a new message belongs to, None for any other update."""
    message = update.message or update.channel_post
    return message.media_group_id if message is not None else None


def chat_of(update: Update) -> int | None:
    """The chat an update is about (for its order among that chat's updates), None for none."""
    message = update.message or update.channel_post or update.edited_message or update.edited_channel_post
    if message is not None:
        return message.chat.id
    if update.message_reaction is not None:
        return update.message_reaction.chat.id
    return None
