"""From the hub to Telegram: relaying stored messages and their changes.

Every hub message goes, in id order, to each chat (and forum topic) of its
room except the one it came from, as ``sender: text`` in HTML, split into
parts when long (``formatting.py``), the sender shown by their display name;
a message with files goes as photos, documents or albums (``files_out.py``).
A reply to a message is a Telegram reply to that message's first part in the
same chat. ``deliver`` and ``changed`` only queue the work in the lane of
each chat (``lanes.py``) and return, so the hub never waits for Telegram.

The id of the last message relayed to every chat is kept in the store: after
a restart, what was stored meanwhile (at most ``telegram.catch_up``
messages) is relayed first, and a message cut short by a crash sends only
its missing parts. Edits, deletions and reactions are applied by
``changes.py`` where the message went.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Literal

from chatbus.core.errors import StoreError
from chatbus.core.message import Change, Message, MessageDeleted, MessageEdited

from .calls import Calls
from .changes import ChangeRelay
from .errors import Backoff, Fatal, Stopped
from .files_out import FileSender
from .formatting import MAX_MESSAGE_LENGTH, Rendered, render, telegram_mentions
from .lanes import Change as LaneChange
from .lanes import Lane, Post
from .merge import external_id, merged, parse_external
from .people import People
from .session import NAME, Session
from .settings import ChatKey
from .topics import Topics

__all__ = ["Outbound"]

log = logging.getLogger("chatbus.telegram")

#: How many hub messages' Telegram ids are kept in memory for replies (the store has them all).
_REPLY_CACHE = 2048


class Outbound:
    """Relays hub messages to Telegram, once each, in order, across restarts."""

    def __init__(self, session: Session, calls: Calls, people: People, topics: Topics) -> None:
        self._session = session
        self._calls = calls
        self._people = people
        self._topics = topics
        self._changes = ChangeRelay(session, calls, self)
        self.files = FileSender(session, calls, self)
        self._ready = asyncio.Event()
        self._warned_fatal = False
        self._lanes: dict[ChatKey, Lane] = {}
        #: Hub ids still on their way, with how many chats have yet to get them.
        self._pending: OrderedDict[int, int] = OrderedDict()
        self._queued_up_to = 0
        # hub message id -> {Telegram chat id: Telegram message id of its first part}
        self._replies: OrderedDict[int, dict[int | str, int]] = OrderedDict()

    def reset(self) -> None:
        """A new run: hold new messages back until what was missed is queued."""
        self._ready = asyncio.Event()
        self._warned_fatal = False
        self._lanes.clear()
        self._pending.clear()
        self._queued_up_to = 0

    # queueing -------------------------------------------------------------------------
    async def deliver(self, message: Message) -> None:
        """Queue one stored hub message for the chats of its room (called in id order)."""
        if self._session.hub is None or self._session.stopping.is_set():
            return
        try:
            await self._session.wait_for(self._ready)
            await self._enqueue(message, resume=False)
        except (Stopped, Fatal):
            return

    async def changed(self, change: Change) -> None:
        """Queue an edit, deletion or reaction for the chats its message went to."""
        if self._session.hub is None or self._session.stopping.is_set() or self._session.condition.fatal:
            return
        try:
            await self._session.wait_for(self._ready)  # after the messages caught up, like ``deliver``
        except Stopped:
            return
        kind: Literal["edit", "delete", "react"] = (
            "edit" if isinstance(change, MessageEdited) else "delete" if isinstance(change, MessageDeleted) else "react"
        )
        message = change.message
        chats = [chat for chat, _ in self._destinations(message)]
        origin = self._origin_key(message)
        if origin is not None:
            chats.append(origin)
        for chat in dict.fromkeys(chats):
            await self._lane(chat).change(LaneChange(message, kind))

    async def _enqueue(self, message: Message, *, resume: bool) -> None:
        state = self._session.state
        if message.id <= max(state.delivered, self._queued_up_to):
            return
        if self._session.condition.fatal:
            if not self._warned_fatal:
                self._warned_fatal = True
                log.error("telegram: not relaying messages from %d on: %s", message.id, self._session.condition.fatal)
            raise Fatal
        targets = [] if message.deleted else self._destinations(message)
        self._queued_up_to = message.id
        if not targets:
            self._pending[message.id] = 0
            await self.done(message.id)
            return
        self._pending[message.id] = len(targets)
        for chat, thread in targets:
            self._lane(chat).post(Post(message, thread, resume))

    def _destinations(self, message: Message) -> list[tuple[ChatKey, int | None]]:
        """The chats (and forum topics) of the message's room, the one it came from left out."""
        state = self._session.state
        origin = _origin_chat(message)

        def elsewhere(chat: ChatKey) -> bool:
            return origin is None or (origin != chat and origin != state.current(chat))

        out: list[tuple[ChatKey, int | None]] = [
            (chat, None) for chat, room in state.rooms.items() if room == message.room and elsewhere(chat)
        ]
        for chat_id, topic in self._topics.destinations(message.room):
            found = state.room_of(chat_id, None)
            if found is not None and elsewhere(found[0]):
                out.append((found[0], topic))
        return out

    def _origin_key(self, message: Message) -> ChatKey | None:
        origin = _origin_chat(message)
        found = self._session.state.room_of(origin, None) if origin is not None else None
        return found[0] if found is not None else None

    def _lane(self, chat: ChatKey) -> Lane:
        lane = self._lanes.get(chat)
        if lane is None:
            lane = self._lanes[chat] = Lane(chat, self._session, self, lambda: self._calls.held_back(chat))
            self._session.spawn(lane.run(), f"lane-{chat}")
        return lane

    async def flush(self, timeout: float) -> None:
        """Give the lanes up to ``timeout`` seconds to do what they hold (a stop)."""
        lanes = [lane.wait_idle() for lane in self._lanes.values()]
        if lanes:
            try:
                await asyncio.wait_for(asyncio.gather(*lanes), timeout)
            except TimeoutError:
                waiting = sum(len(lane) for lane in self._lanes.values())
                log.warning(
                    "telegram: %d item(s) not relayed at the stop; messages are relayed after a restart", waiting
                )

    async def done(self, message_id: int) -> None:
        """One chat has ``message_id``; once every chat has every message up to an id, remember it."""
        left = self._pending.get(message_id)
        if left is None:
            return
        if left > 1:
            self._pending[message_id] = left - 1
            return
        del self._pending[message_id]
        upto = next(iter(self._pending)) - 1 if self._pending else self._queued_up_to
        try:
            await self._session.state.mark_delivered(self._session.fenced, upto)
        except StoreError as exc:  # written with the next message relayed; the lane goes on meanwhile
            log.warning("telegram: cannot note that messages up to %d are relayed: %s", upto, exc)

    # catching up ------------------------------------------------------------------------
    async def catch_up(self) -> None:
        """Queue what was stored while this transport could not relay it (down, stopped, Telegram away,
        another node running it), before any newer message; tried again while the store cannot answer."""
        s = self._session.settings
        backoff = Backoff(s.retry_initial_delay, s.retry_max_delay)
        try:
            while True:
                try:
                    await self._catch_up()
                    return
                except StoreError as exc:
                    delay = backoff.next()
                    log.warning("telegram: cannot read what to catch up (%s); trying again in %g s", exc, delay)
                    await self._session.sleep(delay)
        except (Stopped, Fatal):
            return
        finally:
            self._ready.set()

    async def _catch_up(self) -> None:
        state, limit = self._session.state, self._session.settings.catch_up
        store = self._session.store()
        last = store.last_id
        if last > state.delivered:
            start = state.delivered
            if limit == 0 or last - start > limit:
                start = await self._skip_old(start, last, limit)
            missed = await store.since(start, max(limit, 1), None) if limit else []
            if missed:
                log.info("telegram: relaying %d message(s) stored since the last one relayed", len(missed))
            for message in missed:
                if message.id > last:
                    break
                await self._enqueue(message, resume=True)

    async def _skip_old(self, start: int, last: int, limit: int) -> int:
        """Give up on what is too old to catch up: all but the last ``limit`` messages."""
        skipped_to = max(start, last - limit)
        if skipped_to > start:
            log.warning(
                "telegram: messages %d-%d were never relayed and are too old to catch up (telegram.catch_up = %d)",
                start + 1,
                skipped_to,
                limit,
            )
        await self._session.state.mark_delivered(self._session.fenced, skipped_to)
        return skipped_to

    # the lanes' work ---------------------------------------------------------------------
    async def render(
        self, message: Message, *, text: str | None = None, limit: int = MAX_MESSAGE_LENGTH
    ) -> list[Rendered]:
        """``message`` (or ``text`` in its name) as Telegram messages of at most ``limit`` characters:
        its sender's display name, ``@tg:123`` as real mentions."""
        text = message.text if text is None else text
        names: dict[int, str] = {}
        for user in telegram_mentions(text):
            names[user] = await self._people.name_of(user) or f"tg:{user}"
        return self._render(message, names, text=text, limit=limit)

    def _render(
        self, message: Message, names: dict[int, str] | None = None, *, text: str | None = None,
        limit: int = MAX_MESSAGE_LENGTH,
    ) -> list[Rendered]:  # fmt: skip
        s = self._session.settings
        shown = message.display_name or message.sender
        body = message.text if text is None else text
        return render(s.format, sender=shown, text=body, room=message.room, names=names, limit=limit)

    def single(self, post: Post) -> Rendered | None:
        """A plain message that fits one Telegram message can be merged with others."""
        message = post.message
        if message.reply_to or message.streaming or message.attachments or telegram_mentions(message.text):
            return None
        parts = self._render(message)
        return parts[0] if len(parts) == 1 else None

    async def post(self, chat: ChatKey, posts: list[Post]) -> None:
        """Post one message, or several merged into one, and remember where each went."""
        store = self._session.store()
        if len(posts) > 1:
            posts = [p for p in posts if not (p.resume and await self._sent_parts(p.message.id, chat))]
        if len(posts) == 1:
            await self._post_one(chat, posts[0])
            return
        parts = [part for post in posts for part in self._render(post.message)]
        sent = await self._calls.send(chat, merged(parts), None, posts[0].thread) if parts else None
        for position, post in enumerate(posts, start=1):
            if sent is not None:
                self.remember(post.message.id, sent.chat.id, sent.message_id)
                await store.map_external(NAME, post.message.id, external_id(sent.chat.id, sent.message_id, position))
            await self.done(post.message.id)

    async def _post_one(self, chat: ChatKey, post: Post) -> None:
        message, store = post.message, self._session.store()
        skip = await self._sent_parts(message.id, chat) if post.resume else 0
        reply_mid = await self.reply_target(message.reply_to, chat) if message.reply_to else None
        if message.attachments:
            if not skip:  # after a crash, a message with files that got partly out is not sent twice
                await self.files.post(chat, message, post.thread, reply_mid)
            await self.done(message.id)
            return
        parts = await self.render(message)
        for index, part in enumerate(parts[skip:], start=skip):
            sent = await self._calls.send(chat, part, reply_mid if index == 0 else None, post.thread)
            if sent is None:
                break
            self.remember(message.id, sent.chat.id, sent.message_id)
            await store.map_external(NAME, message.id, external_id(sent.chat.id, sent.message_id))
        await self.done(message.id)

    async def _sent_parts(self, hub_id: int, chat: ChatKey) -> int:
        """How many Telegram messages in ``chat`` hub message ``hub_id`` already is (after a crash)."""
        names = self._session.state.names(chat)
        found = [parse_external(ext) for ext in await self._session.store().external_ids_for(NAME, hub_id)]
        return sum(1 for ext in found if ext is not None and ext.chat in names)

    async def change(self, chat: ChatKey, change: LaneChange) -> None:
        """Apply an edit, deletion or reaction where the message went in ``chat``."""
        await self._changes.apply(chat, change)

    def remember(self, hub_id: int, chat_id: int, message_id: int) -> None:
        """Hub message ``hub_id`` is Telegram message ``message_id`` in ``chat_id`` (the first one counts)."""
        entry = self._replies.setdefault(hub_id, {})
        entry.setdefault(chat_id, message_id)
        self._replies.move_to_end(hub_id)
        while len(self._replies) > _REPLY_CACHE:
            self._replies.popitem(last=False)

    async def reply_target(self, hub_id: int, chat: ChatKey) -> int | None:
        """The Telegram message in ``chat`` that hub message ``hub_id`` is (its first part)."""
        targets = self._session.state.names(chat)
        cached = self._replies.get(hub_id)
        if cached:
            for chat_id, message_id in cached.items():
                if str(chat_id) in targets:
                    return message_id
        store = self._session.store()
        for external in await store.external_ids_for(NAME, hub_id):
            found = parse_external(external)
            if found is not None and found.chat in targets:
                return found.message_id
        original = await store.get(hub_id)
        if original is not None and original.transport == NAME and original.client_id:
            found = parse_external(original.client_id)
            if found is not None and found.chat in targets:
                return found.message_id
        return None

    async def send_quietly(self, chat: ChatKey, part: Rendered, reply_mid: int, thread: int | None = None) -> None:
        """Send ``part`` if the transport can; a notice is not worth an error of its own."""
        try:
            await self._calls.send(chat, part, reply_mid, thread)
        except (Stopped, Fatal):
            return


def _origin_chat(message: Message) -> int | None:
    """The Telegram chat a hub message came from, if it came from Telegram."""
    if message.transport != NAME or not message.client_id:
        return None
    found = parse_external(message.client_id)
    try:
        return int(found.chat) if found is not None else None
    except ValueError:
        return None
