"""Reading Telegram messages: who sent them, whom they mention, what they command.

Pure functions over python-telegram-bot objects, so the rules are easy to
test and to read in one place.

Every Telegram person is ``tg:<numeric user id>`` in the hub, whatever they
call themselves: two Telegram users named "ana" stay two people, and neither
is the web chat's "ana". What they call themselves (their username, else
their full name) is only shown beside their messages.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from telegram import Chat, Message, MessageEntity, User

from chatbus.core.message import valid_name

__all__ = [
    "PREFIX",
    "Sender",
    "address_command",
    "name_to_id",
    "sender_of",
    "telegram_id",
    "text_mentions",
    "user_sender",
    "username_mentions",
]

#: Telegram people in the hub are ``tg:<numeric id>``.
PREFIX = "tg:"

_NOT_NAME = re.compile(r"[^A-Za-z0-9_.\-]+")
# "/cmd@SomeBot rest": the command, the bot it is addressed to, the rest.
_COMMAND = re.compile(r"(/[A-Za-z0-9_]{1,64})@([A-Za-z0-9_]+)(?=\s|$)")


@dataclass(frozen=True, slots=True)
class Sender:
    """A Telegram user (or a chat posting as itself) as the hub sees them."""

    #: ``tg:<numeric id>``: the hub identity, never taken from a name.
    user_id: str
    #: What to show: the username, else the full name (or the chat's title).
    display_name: str
    telegram_id: int
    username: str | None = None


def telegram_id(user_id: str) -> int | None:
    """The numeric Telegram id of ``tg:<id>``, else None."""
    if not user_id.startswith(PREFIX):
        return None
    rest = user_id[len(PREFIX) :]
    return int(rest) if rest.lstrip("-").isdigit() else None


def name_to_id(name: str) -> str | None:
    """A display name made into a chatbus name (for rooms named after forum
    topics), or None when nothing usable is left.

    Accents are dropped (``José`` -> ``Jose``), every run of other characters
    becomes ``_`` (``Ada Lovelace`` -> ``Ada_Lovelace``), and the result is cut
    to 64 characters.
    """
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    candidate = _NOT_NAME.sub("_", ascii_only).strip("_.-")[:64].strip("_.-")
    return candidate if valid_name(candidate) else None


def _shown(text: str | None) -> str | None:
    """A name fit to show: printable, at most 64 characters, or None."""
    if not text:
        return None
    cleaned = "".join(ch for ch in text if ch.isprintable()).strip()[:64].strip()
    return cleaned or None


def user_sender(user: User) -> Sender:
    """``tg:<id>``, shown by the username, else the full name, else the id."""
    display = _shown(user.username) or _shown(user.full_name) or str(user.id)
    return Sender(f"{PREFIX}{user.id}", display, user.id, user.username)


def _chat_sender(chat: Chat) -> Sender:
    display = _shown(chat.username) or _shown(chat.title) or str(chat.id)
    return Sender(f"{PREFIX}{chat.id}", display, chat.id, chat.username)


def sender_of(message: Message) -> Sender | None:
    """Who wrote ``message``; None when Telegram says nothing about the author.

    Posts made on behalf of a chat (a channel, an anonymous group admin) are
    attributed to that chat (``tg:<chat id>``).
    """
    if message.sender_chat is not None:
        return _chat_sender(message.sender_chat)
    if message.from_user is not None:
        return user_sender(message.from_user)
    return None


def _entities(message: Message, kinds: list[str | None]) -> list[tuple[MessageEntity, str]]:
    found = message.parse_entities(kinds) if message.text is not None else message.parse_caption_entities(kinds)
    return sorted(found.items(), key=lambda item: item[0].offset)


def text_mentions(message: Message) -> list[tuple[User, str]]:
    """People mentioned without a username (Telegram's ``text_mention``): each
    user with the words that mention them, in order."""
    return [
        (entity.user, words)
        for entity, words in _entities(message, [MessageEntity.TEXT_MENTION])
        if entity.user is not None
    ]


def username_mentions(message: Message, *, bot_username: str | None) -> list[str]:
    """The ``@usernames`` Telegram marked as mentions, the bot itself left out."""
    own = (bot_username or "").lower()
    names: list[str] = []
    for _entity, words in _entities(message, [MessageEntity.MENTION]):
        name = words.lstrip("@")
        if name and name.lower() != own and name not in names:
            names.append(name)
    return names


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
