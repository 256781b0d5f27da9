"""Forum topics as hub rooms.

In a forum supergroup each topic is a conversation of its own, so each maps
to a hub room: the one ``telegram.topics`` names for it (by ``"chat
id:topic id"`` or by the topic's name), else a room named after the topic
(``Release plans`` is ``Release_plans``; ``topic-42`` when its name was never
seen). The General topic is the chat's own room. Messages from a topic go to
its room; messages of that room go back to the topic (``message_thread_id``).

Topics learned this way are kept in the store under ``telegram:topics``
(``{"<chat id>:<topic id>": room}``), so a room keeps its topic across
restarts even when the topic is renamed.
"""

from __future__ import annotations

import json
import logging

from telegram import Message as TgMessage

from chatbus.core.store import Store

from .inbound import name_to_id
from .settings import TelegramSettings

__all__ = ["Topics", "topic_of"]

log = logging.getLogger("chatbus.telegram")

_STATE_KEY = "telegram:topics"


def topic_of(message: TgMessage) -> tuple[int, str | None] | None:
    """The forum topic ``message`` was written in (its id and, when Telegram says, its name);
    None outside forum topics (the General topic, or a chat without topics)."""
    if not message.is_topic_message or message.message_thread_id is None:
        return None
    created = message.forum_topic_created
    if created is None and message.reply_to_message is not None:
        created = message.reply_to_message.forum_topic_created
    return message.message_thread_id, created.name if created is not None else None


class Topics:
    """Which room each forum topic is, configured or learned."""

    def __init__(self, settings: TelegramSettings) -> None:
        self._by_id = {key: room for key, room in settings.topics.items() if _is_topic_id(key)}
        self._by_name = {key.casefold(): room for key, room in settings.topics.items() if not _is_topic_id(key)}
        self._learned: dict[str, str] = {}

    async def load(self, store: Store) -> None:
        """Read the topics learned in earlier runs."""
        raw = await store.get_state(_STATE_KEY)
        try:
            loaded = json.loads(raw) if raw else {}
            self._learned = {str(key): str(room) for key, room in dict(loaded).items()}
        except (ValueError, TypeError):
            log.warning("telegram: ignoring unreadable saved forum topics")
            self._learned = {}

    async def room_for(self, store: Store, chat_id: int, topic: int, name: str | None) -> str:
        """The room of topic ``topic`` in chat ``chat_id``, learning it when new."""
        key = f"{chat_id}:{topic}"
        room = self._by_id.get(key) or self._learned.get(key)
        if room is not None:
            return room
        room = self._by_name.get(name.casefold()) if name else None
        if room is None:
            room = (name_to_id(name) if name else None) or f"topic-{topic}"
        self._learned[key] = room
        log.info("telegram: forum topic %s (%s) of chat %s is room %s", topic, name or "unnamed", chat_id, room)
        await store.set_state(_STATE_KEY, json.dumps(self._learned))
        return room

    def destinations(self, room: str) -> list[tuple[int, int]]:
        """The (chat id, topic id) pairs whose topic is ``room``."""
        found: list[tuple[int, int]] = []
        for key, mapped in (*self._by_id.items(), *self._learned.items()):
            if mapped != room:
                continue
            chat, _, topic = key.rpartition(":")
            pair = (int(chat), int(topic))
            if pair not in found:
                found.append(pair)
        return found


def _is_topic_id(key: str) -> bool:
    chat, sep, topic = key.rpartition(":")
    return bool(sep) and chat.lstrip("-").isdigit() and topic.isdigit()
