"""Reading Telegram messages: who sent them, whom they mention, what they command.

Pure functions over python-telegram-bot objects, so the rules are easy to
test and to read in one place.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from telegram import Chat, Message, MessageEntity, User

from chatbus.core.message import valid_name

__all__ = ["Sender", "address_command", "entity_mentions", "name_to_id", "sender_of"]

_NOT_NAME = re.compile(r"[^A-Za-z0-9_.\-]+")
# "/cmd@SomeBot rest": the command, the bot it is addressed to, the rest.
_COMMAND = re.compile(r"(/[A-Za-z0-9_]{1,64})@([A-Za-z0-9_]+)(?=\s|$)")


@dataclass(frozen=True, slots=True)
class Sender:
    """A Telegram user as the hub sees them."""

    user_id: str
    display_name: str
    telegram_id: int


def name_to_id(name: str) -> str | None:
    """A display name made into a chatbus user id, or None when nothing usable is left.

    Accents are dropped (``José`` -> ``Jose``), every run of other characters
    becomes ``_`` (``Ada Lovelace`` -> ``Ada_Lovelace``), and the result is cut
    to 64 characters.
    """
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    candidate = _NOT_NAME.sub("_", ascii_only).strip("_.-")[:64].strip("_.-")
    return candidate if valid_name(candidate) else None


def _user_sender(user: User) -> Sender:
    display = user.full_name or user.username or str(user.id)
    if user.username and valid_name(user.username):
        return Sender(user.username, display, user.id)
    by_name = name_to_id(user.full_name) if user.full_name else None
    return Sender(by_name or str(user.id), display, user.id)


def _chat_sender(chat: Chat) -> Sender:
    display = chat.title or chat.username or str(chat.id)
    if chat.username and valid_name(chat.username):
        return Sender(chat.username, display, chat.id)
    by_name = name_to_id(chat.title) if chat.title else None
    return Sender(by_name or str(chat.id).lstrip("-"), display, chat.id)


def sender_of(message: Message) -> Sender | None:
    """Who wrote ``message``: the username, else the full name, else the user id.

    Posts made on behalf of a chat (a channel, an anonymous group admin) are
    attributed to that chat. None when Telegram says nothing about the author.
    """
    if message.sender_chat is not None:
        return _chat_sender(message.sender_chat)
    if message.from_user is not None:
        return _user_sender(message.from_user)
    return None


def entity_mentions(message: Message, *, bot_username: str | None) -> list[str]:
    """Hub ids of the people Telegram marked as mentioned (``@username`` and
    mentions of users without a username), the bot itself left out."""
    found: list[str] = []
    own = (bot_username or "").lower()
    entities = message.parse_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION])
    if not entities and message.caption:
        entities = message.parse_caption_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION])
    for entity, text in sorted(entities.items(), key=lambda item: item[0].offset):
        if entity.type == MessageEntity.TEXT_MENTION and entity.user is not None:
            name = _user_sender(entity.user).user_id
        else:
            name = text.lstrip("@")
        if name.lower() == own or not valid_name(name):
            continue
        if name not in found:
            found.append(name)
    return found


def address_command(text: str, *, bot_username: str | None) -> str | None:
    """The text to relay for a message that may be a command.

    ``/status@ThisBot args`` becomes ``/status args``; a command addressed to
    another bot returns None (it is not for this chat's relay); anything else
    comes back unchanged.
    """
    stripped = text.lstrip()
    if not stripped.startswith("/"):
        return text
    match = _COMMAND.match(stripped)
    if match is None:
        return text
    if bot_username is None or match.group(2).lower() != bot_username.lower():
        return None
    return match.group(1) + stripped[match.end() :]
