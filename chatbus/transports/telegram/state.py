"""What the Telegram transport remembers: its chats, the update offset, the
last relayed message, and groups that moved to a new id.

The offset, the last relayed id and migrations are kept in the hub's store
(``get_state``/``set_state``) under these keys, so a restart neither replays
nor loses anything:

``telegram:<bot id>:offset``
    JSON ``{"next": <update id>, "at": <unix time>}``: the first update not yet
    handled. Ignored when older than six days (Telegram forgets update ids
    after a week without updates and starts again lower).
``telegram:delivered``
    The id of the last hub message relayed to Telegram.
``telegram:migrated:<old chat id>``
    The new id of a group that became a supergroup.

The offset and the last relayed id are written through a :class:`Writer`:
the store itself on one node, the session's fenced writer on a cluster
(``session.py``), so a node that lost the duty to run the transport cannot
move them after the node that took over did.

Other parts keep theirs beside these: ``telegram:name:<user id>`` (what a
Telegram person is called, ``people.py``), ``telegram:topics`` (forum topics
learned as rooms, ``topics.py``), ``telegram:gone:<chat>:<message>``
(parts of a long message deleted by an edit, ``changes.py``),
``telegram:backlog`` (updates waiting for a file to be fetched,
``backlog.py``) and ``telegram:media:<chat>:<message>`` (the bot's photo or
file messages, and which one holds the caption, ``files_out.py``); where
each hub message went is the store's id map (``merge.py``).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Protocol

from chatbus.core.store import Store

from .settings import ChatKey, TelegramSettings

__all__ = ["DELIVERED_KEY", "RelayState", "Writer"]

log = logging.getLogger("chatbus.telegram")

#: Store key of the last relayed hub message id.
DELIVERED_KEY = "telegram:delivered"
#: Telegram forgets update ids after a week without updates and starts again lower.
_OFFSET_MAX_AGE = 6 * 24 * 3600


class Writer(Protocol):
    """Where the relay's progress is written: the store, or a write only the duty's holder may make."""

    async def set_state(self, key: str, value: str | None) -> None: ...


class RelayState:
    """The configured chats and how far the relay got in each direction."""

    def __init__(self, settings: TelegramSettings) -> None:
        #: Configured chat -> hub room.
        self.rooms: dict[ChatKey, str] = dict(settings.chat_ids)
        #: Old group id -> its supergroup's id.
        self.migrated: dict[int, int] = {}
        #: ``@username`` -> the chat's numeric id, once known.
        self.resolved: dict[str, int] = {}
        #: The first Telegram update not yet handled (None: whatever Telegram has).
        self.offset: int | None = None
        #: The id of the last hub message relayed to Telegram.
        self.delivered = 0
        self._offset_key = f"telegram:{settings.token.get_secret_value().partition(':')[0]}:offset"

    async def load(self, store: Store, writer: Writer | None = None) -> None:
        """Read the saved offset, last relayed id and migrations; on a first start, relay from now on.

        Each start reads them again: on a cluster another node may have moved them since this one ran.
        """
        self.offset = None
        raw = await store.get_state(self._offset_key)
        if raw:
            try:
                saved = json.loads(raw)
                if time.time() - float(saved["at"]) < _OFFSET_MAX_AGE:
                    self.offset = int(saved["next"])
            except (ValueError, KeyError, TypeError):
                log.warning("telegram: ignoring an unreadable saved update offset")
        delivered = await store.get_state(DELIVERED_KEY)
        if delivered is None or not delivered.isdigit():
            # First start: relay from now on, not the whole history.
            self.delivered = store.last_id
            await (writer or store).set_state(DELIVERED_KEY, str(self.delivered))
        else:
            self.delivered = int(delivered)
        for chat in list(self.rooms):
            if isinstance(chat, int):
                moved = await store.get_state(f"telegram:migrated:{chat}")
                if moved and moved.lstrip("-").isdigit():
                    self.migrated[chat] = int(moved)

    async def save_offset(self, writer: Writer, next_offset: int) -> None:
        """Remember that every update before ``next_offset`` is handled."""
        self.offset = next_offset
        await writer.set_state(self._offset_key, json.dumps({"next": next_offset, "at": time.time()}))

    async def mark_delivered(self, writer: Writer, message_id: int) -> None:
        """Remember that hub messages up to ``message_id`` are relayed (never goes back)."""
        if message_id <= self.delivered:
            return
        self.delivered = message_id
        await writer.set_state(DELIVERED_KEY, str(message_id))

    async def record_migration(self, store: Store, old: int, new: int) -> None:
        """Follow group ``old`` to its supergroup ``new`` from now on, across restarts too."""
        if self.migrated.get(old) == new:
            return
        self.migrated[old] = new
        log.warning(
            "telegram: group %s became supergroup %s; chatbus follows it, but put %s in telegram.chat_ids",
            old,
            new,
            new,
        )
        await store.set_state(f"telegram:migrated:{old}", str(new))

    def current(self, chat: ChatKey) -> ChatKey:
        """The id to send to: a group that became a supergroup has a new one, and
        an ``@username`` is its numeric id once known."""
        if isinstance(chat, str):
            return self.resolved.get(chat, chat)
        return self.migrated.get(chat, chat)

    def names(self, chat: ChatKey) -> set[str]:
        """Every spelling of ``chat`` in an external id (``<chat id>:<message id>``)."""
        return {str(chat), str(self.current(chat))}

    def room_of(self, chat_id: int, username: str | None) -> tuple[ChatKey, str] | None:
        """The configured chat a Telegram chat is, and its room; None when it is not relayed."""
        for key, room in self.rooms.items():
            if key == chat_id or self.current(key) == chat_id:
                return key, room
            if isinstance(key, str) and username and key[1:].lower() == username.lower():
                return key, room
        return None
