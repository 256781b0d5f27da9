"""Telegram messages, edits and reactions into the hub.

A new message becomes ``hub.receive`` as its sender (``people.py``), in the
room of its chat or forum topic (``topics.py``), with its text, links and
media placeholders (``content.py``), the file it carries fetched into the
hub (``files.py``: the caption is then the text, or a note stands for a file
that could not be fetched), the hub message it replies to and the people it
mentions. An edit becomes ``hub.edit`` and a reaction
``hub.react``, as that person, on the hub message the Telegram message is;
one the hub does not know is ignored (debug log). A message the hub refuses
gets a short reply in Telegram saying why, so nothing is dropped unsaid.

A group that becomes a supergroup announces it on both sides
(``migrate_to_chat_id`` in the old group, ``migrate_from_chat_id`` in the new
supergroup); either one makes the relay follow it. Messages from a
supergroup the relay does not know yet are held for a while, and taken once
a migration shows it is a relayed group's new id, so none is lost in between.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence

from telegram import Chat, MessageReactionUpdated, ReactionTypeEmoji
from telegram import Message as TgMessage

from chatbus.core.errors import AuthError, ChatbusError, MessageTooLarge, RateLimited, StoreError, TransportError

from .content import media_placeholder, message_text
from .errors import Stopped
from .files import NOTE_END, Fetcher, album_key, media_of
from .formatting import Rendered, escape
from .inbound import PREFIX, Sender, address_command, sender_of, text_mentions, user_sender, username_mentions
from .outbound import Outbound
from .people import People
from .session import NAME, Session
from .settings import ChatKey
from .topics import Topics, topic_of

__all__ = ["Receiver"]

log = logging.getLogger("chatbus.telegram")

#: Seconds between two notices to one person in one chat that they are sending too fast.
_NOTICE_INTERVAL = 30.0
#: How long, and how many, messages from an unknown supergroup are held in case it is a migrated group.
_HOLD_SECONDS = 120.0
_HOLD_COUNT = 200
#: At start, how far back in the log (messages), and how many of Telegram's, ``recall`` looks.
_RECALL_LOG = 1000
_RECALL_MOST = 50


class Receiver:
    """Puts what Telegram people write, change and react into the hub."""

    def __init__(self, session: Session, outbound: Outbound, people: People, topics: Topics) -> None:
        self._session = session
        self._outbound = outbound
        self._people = people
        self._topics = topics
        self._fetcher = Fetcher(session)
        self._warned_chats: set[int] = set()
        self._noticed: dict[tuple[int, int], float] = {}
        self._held: OrderedDict[tuple[int, int], tuple[float, TgMessage]] = OrderedDict()
        #: The store failed while a message was being taken: it may have kept it (see ``_take``).
        self._unsure = False

    # new messages ----------------------------------------------------------------------------
    async def message(self, message: TgMessage, album: Sequence[TgMessage] = ()) -> None:
        """Put one new Telegram message in the hub (with the rest of its ``album``: the other photos
        or files sent with it, as one hub message), or follow the migration it announces."""
        session, chat = self._session, message.chat
        if await self._migration(message):
            return
        found = session.state.room_of(chat.id, chat.username)
        if found is None:
            self._unknown(message)
            return
        key, room = found
        if isinstance(key, str):
            session.state.resolved[key] = chat.id
        if message.from_user is not None and message.from_user.id == session.me_id:
            return  # our own words never come back in
        sender = sender_of(message)
        hub = session.hub
        if sender is None or hub is None:
            return
        text = message_text(
            message,
            budget=hub.settings.max_text_length,
            command=lambda body: address_command(body, bot_username=session.username),
        )
        if text is None:
            return  # a service message, or a command for another bot
        topic = topic_of(message)
        if topic is not None:
            room = await self._topics.room_for(session.store(), chat.id, topic[0], topic[1])
        await self._take(message, key, room, text, sender, album)

    async def _with_files(
        self, message: TgMessage, text: str, uploader: str, album: Sequence[TgMessage]
    ) -> tuple[str, tuple[str, ...]]:
        """The text and attachments of a message with files (its own, and its album's): the
        captions and the fetched files, or the notes that stand for files before the captions."""
        if not album and media_of(message) is None:
            return text, ()
        notes: list[str] = []
        captions: list[str] = []
        ids: list[str] = []
        budget = self._session.hub.settings.max_text_length if self._session.hub is not None else 4096
        for part in (message, *album):
            body = text if part is message else message_text(part, budget=budget) or ""
            media = media_of(part)
            placeholder = media_placeholder(part) if media is not None else None
            caption = body[len(placeholder) :].lstrip() if placeholder and body.startswith(placeholder) else body
            if caption:
                captions.append(caption)
            if media is not None:
                got = await self._fetcher.fetch(media, uploader)
                if isinstance(got, str):
                    notes.append(got)
                else:
                    ids.append(got.id)
        kept = list(dict.fromkeys(ids))
        limit = self._session.hub.files.settings.max_per_message if self._session.hub is not None else len(kept)
        if len(kept) > limit:
            more = len(kept) - limit
            notes.append(f"[{more} more file{'s' if more > 1 else ''} — more than a chatbus message carries; open "
                         "the album in Telegram]")  # fmt: skip
            kept = kept[:limit]
        return " ".join([*notes, "\n".join(captions)]).strip(), tuple(kept)

    async def _take(
        self, message: TgMessage, key: ChatKey, room: str, text: str, sender: Sender, album: Sequence[TgMessage] = ()
    ) -> None:
        """Put one Telegram message in the hub as its sender's, unless it is there already.

        When the store failed the last time, it may have kept the message all the same (its answer
        was lost, or the mapping failed after it): what it has is mapped first (:meth:`recall`), so
        the update tried again is not stored twice."""
        if self._unsure:
            self._unsure = not await self.recall()
        try:
            await self._take_now(message, key, room, text, sender, album)
        except StoreError:
            self._unsure = True
            raise

    async def _take_now(
        self, message: TgMessage, key: ChatKey, room: str, text: str, sender: Sender, album: Sequence[TgMessage]
    ) -> None:
        session, chat_id = self._session, message.chat.id
        hub, store = session.hub, session.store()
        if hub is None:
            raise Stopped
        external = f"{chat_id}:{message.message_id}"
        if await store.hub_id_for(NAME, external) is not None:
            return  # already in the hub (read again after an interrupted shutdown)
        try:
            identity = await self._people.active(sender)
        except AuthError as exc:
            log.info("telegram: %s (%s) refused: %s", sender.user_id, sender.display_name, exc)
            self._notify(message, str(exc), sender.telegram_id)
            return
        reply_to = await self._reply_to(message)
        mentions = await self._people.mentions(
            username_mentions(message, bot_username=session.username), text_mentions(message)
        )
        text, attachments = await self._with_files(message, text, identity.user_id, album)
        try:
            stored = await hub.receive(
                identity, text, room=room, reply_to=reply_to, transport=NAME, client_id=external, mentions=mentions,
                attachments=attachments,
            )  # fmt: skip
        except (StoreError, TransportError):
            if not hub.running:
                raise Stopped from None
            raise
        except ChatbusError as exc:
            log.info("telegram: message from %s in chat %s refused: %s", identity.user_id, chat_id, exc)
            self._notify(message, _refusal(exc), sender.telegram_id, always=not isinstance(exc, RateLimited))
            return
        self._outbound.remember(stored.id, chat_id, message.message_id)
        session.condition.chat_ok(key)
        for part in album:  # the album's other messages are this hub message too (theirs, not the bot's)
            await store.set_state(album_key(chat_id, part.message_id), "album")
            await store.map_external(NAME, stored.id, f"{chat_id}:{part.message_id}")
        await store.map_external(NAME, stored.id, external)

    async def recall(self) -> bool:
        """Map the newest Telegram messages of the hub to where they came from, where a run stopped
        between storing one and mapping it (a crash; on a cluster, a node killed in between): the
        update is read again, here or by the node taking over, and must not be stored twice.
        False when the store cannot answer now."""
        store = self._session.store()
        try:
            recent = await store.since(max(0, store.last_id - _RECALL_LOG), _RECALL_LOG)
            ours = [m for m in reversed(recent) if m.transport == NAME and m.client_id][:_RECALL_MOST]
            for message in ours:
                assert message.client_id is not None
                if await store.hub_id_for(NAME, message.client_id) is None:
                    log.info("telegram: message %d was stored but not mapped to %s; mapping it", message.id,
                             message.client_id)  # fmt: skip
                    await store.map_external(NAME, message.id, message.client_id)
        except StoreError as exc:
            log.warning("telegram: cannot check the newest Telegram messages in the hub: %s", exc)
            return False
        return True

    async def _reply_to(self, message: TgMessage) -> int | None:
        replied = message.reply_to_message
        if replied is None or (message.is_topic_message and replied.message_id == message.message_thread_id):
            return None  # in a forum topic, Telegram names the topic's first message as the one replied to
        return await self._session.store().hub_id_for(NAME, f"{message.chat.id}:{replied.message_id}")

    # edits and reactions -----------------------------------------------------------------------
    async def edited(self, message: TgMessage) -> None:
        """A Telegram message was edited: edit the hub message it is, as its sender."""
        session = self._session
        hub, sender = session.hub, sender_of(message)
        hub_id = await session.store().hub_id_for(NAME, f"{message.chat.id}:{message.message_id}")
        if hub is None or sender is None or hub_id is None:
            log.debug("telegram: edit of message %s in chat %s, which chatbus does not know", message.message_id,
                      message.chat.id)  # fmt: skip
            return
        text = message_text(message, budget=hub.settings.max_text_length)
        if text is None:
            return
        text = await self._edited_caption(message, hub_id, text)
        try:
            identity = await self._people.active(sender)
            await hub.edit(identity, hub_id, text, transport=NAME)
        except ChatbusError as exc:
            log.info("telegram: edit of message %s by %s not taken: %s", hub_id, sender.user_id, exc)
            if isinstance(exc, MessageTooLarge):
                self._notify(message, _refusal(exc), sender.telegram_id, always=True)

    async def _edited_caption(self, message: TgMessage, hub_id: int, text: str) -> str:
        """The new text of a message with a file whose caption was edited: the caption alone when the
        hub has the file, else after the note that stands for it."""
        placeholder = media_placeholder(message) if media_of(message) is not None else None
        if not placeholder or not text.startswith(placeholder):
            return text
        caption = text[len(placeholder) :].lstrip()
        original = await self._session.store().get(hub_id)
        if original is None or original.attachments:
            return caption
        end = original.text.find(NOTE_END)
        kept = original.text[: end + len(NOTE_END)] if original.text.startswith("[") and end >= 0 else placeholder
        return f"{kept} {caption}".strip()

    async def reaction(self, update: MessageReactionUpdated) -> None:
        """Someone changed their reactions to a Telegram message: the same on the hub message."""
        session = self._session
        hub = session.hub
        who = user_sender(update.user) if update.user is not None else None
        hub_id = await session.store().hub_id_for(NAME, f"{update.chat.id}:{update.message_id}")
        if hub is None or who is None or hub_id is None:
            log.debug("telegram: reaction to message %s in chat %s, which chatbus does not know", update.message_id,
                      update.chat.id)  # fmt: skip
            return
        old, new = _emoji(update.old_reaction), _emoji(update.new_reaction)
        try:
            identity = await self._people.active(who)
            # A linked account reacts as its web person: remember it was in Telegram, for the bot not to repeat.
            made = session.reacted_in_telegram if not identity.user_id.startswith(PREFIX) else set()
            for emoji in [e for e in old if e not in new]:
                made.discard((hub_id, identity.user_id, emoji))
                await hub.react(identity, hub_id, emoji, False, transport=NAME)
            for emoji in [e for e in new if e not in old]:
                made.add((hub_id, identity.user_id, emoji))
                await hub.react(identity, hub_id, emoji, True, transport=NAME)
        except ChatbusError as exc:
            log.info("telegram: reaction of %s to message %s not taken: %s", who.user_id, hub_id, exc)

    # migrations and unknown chats --------------------------------------------------------------
    async def _migration(self, message: TgMessage) -> bool:
        """Follow a group that became a supergroup; True when ``message`` only announced that."""
        state, chat = self._session.state, message.chat
        if message.migrate_to_chat_id:
            old, new = chat.id, message.migrate_to_chat_id
        elif message.migrate_from_chat_id:
            old, new = message.migrate_from_chat_id, chat.id
        else:
            return False
        if state.room_of(old, None) is not None:
            await state.record_migration(self._session.store(), old, new)
            await self._take_held(new)
        return True

    def _unknown(self, message: TgMessage) -> None:
        """A message from a chat that is not relayed: held a while if it may be a migrated group."""
        chat = message.chat
        if chat.type == Chat.SUPERGROUP:
            now = time.monotonic()
            self._held[(chat.id, message.message_id)] = (now, message)
            while self._held and (
                len(self._held) > _HOLD_COUNT or next(iter(self._held.values()))[0] < now - _HOLD_SECONDS
            ):
                self._held.popitem(last=False)
        if chat.id not in self._warned_chats:
            self._warned_chats.add(chat.id)
            log.warning(
                "telegram: ignoring chat %s (%s): it is not in telegram.chat_ids", chat.id, chat.title or chat.type
            )

    async def _take_held(self, chat_id: int) -> None:
        """Take the messages held from ``chat_id`` now that it is known to be relayed."""
        for key in [key for key in self._held if key[0] == chat_id]:
            _, message = self._held.pop(key)
            log.info("telegram: taking message %s written in chat %s while it was migrating", key[1], chat_id)
            await self.message(message)

    # notices -------------------------------------------------------------------------------------
    def _notify(self, message: TgMessage, text: str, who: int, *, always: bool = False) -> None:
        """Tell a Telegram user why their message was not taken (as a reply, in the background).

        Being too fast is said at most once per person and chat every
        ``_NOTICE_INTERVAL`` seconds, so someone flooding the chat does not
        make the bot flood it too; any other refusal is said every time.
        """
        chat_id = message.chat.id
        hub = self._session.hub
        now = hub.clock() if hub is not None else 0.0
        last = self._noticed.get((chat_id, who))
        if not always and last is not None and now - last < _NOTICE_INTERVAL:
            return
        if not always:
            self._noticed[(chat_id, who)] = now
        part = Rendered(f"⚠️ {escape(text)}", f"⚠️ {text}")
        thread = message.message_thread_id if message.is_topic_message else None
        self._session.spawn(self._outbound.send_quietly(chat_id, part, message.message_id, thread), "notice")


def _refusal(exc: ChatbusError) -> str:
    """What a Telegram person reads when the hub refuses their message."""
    return f"Not relayed to the chatbus chat: {exc}"


def _emoji(reactions: tuple[object, ...] | list[object] | object) -> list[str]:
    """The emoji among Telegram reactions (custom emoji and paid stars are not relayed)."""
    items = reactions if isinstance(reactions, (tuple, list)) else ()
    return [item.emoji for item in items if isinstance(item, ReactionTypeEmoji)]
