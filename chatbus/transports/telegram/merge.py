"""Several hub messages in one Telegram message, and where each one went.

Telegram lets a bot post about 20 messages a minute to a group. When the web
chat and the agents say more than that, the messages queued for a chat
would fall minutes behind; instead, while the chat's limit holds them back,
consecutive ones are merged into one Telegram message, one line per hub
message, each still naming its sender, in order (``lanes.py`` decides when).

Where each hub message went is kept in the store's id map as an external id:
``<chat id>:<message id>`` for a message of its own (or each part of a long
one), and ``<chat id>:<message id>#<n>`` for the n-th hub message merged
into one Telegram message (the first has no suffix, so replies and reactions
to a merged message belong to its first hub message).
"""

from __future__ import annotations

from dataclasses import dataclass

from .formatting import MAX_MESSAGE_LENGTH, Rendered, utf16_length

__all__ = ["External", "external_id", "fits", "merged", "parse_external"]


@dataclass(frozen=True, slots=True)
class External:
    """A Telegram message a hub message is (part of)."""

    chat: str
    message_id: int
    #: 1 for a message of its own; n for the n-th hub message merged into it.
    position: int = 1


def external_id(chat_id: int | str, message_id: int, position: int = 1) -> str:
    """The external id of a hub message at ``position`` in Telegram message ``message_id``."""
    suffix = f"#{position}" if position > 1 else ""
    return f"{chat_id}:{message_id}{suffix}"


def parse_external(text: str) -> External | None:
    """``<chat>:<message>[#<n>]`` read back; None for anything else."""
    chat, sep, rest = text.rpartition(":")
    message, _, position = rest.partition("#")
    if not sep or not message.isdigit() or (position and not position.isdigit()):
        return None
    return External(chat, int(message), int(position) if position else 1)


def merged(parts: list[Rendered]) -> Rendered:
    """Rendered messages as one Telegram message, one after another on their own lines."""
    return Rendered("\n".join(part.html for part in parts), "\n".join(part.plain for part in parts))


def fits(parts: list[Rendered], limit: int = MAX_MESSAGE_LENGTH) -> bool:
    """Whether ``parts`` merged stay within one Telegram message."""
    return utf16_length(merged(parts).plain) <= limit
