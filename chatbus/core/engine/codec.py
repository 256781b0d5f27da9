"""Messages as the text an engine keeps and publishes (JSON), and back.

The fields are the SQLite store's columns (:func:`~chatbus.core.store.schema.message_row`),
so the two engines keep a message the same way, plus its reactions and files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace

from ..message import Attachment, Message
from ..store.schema import message_row, row_message

__all__ = ["decode", "encode"]


def encode(message: Message) -> str:
    """``message`` as one line of JSON, without its id (the engine gives that)."""
    row = list(message_row(replace(message, id=0)))
    attachments = [asdict(attachment) for attachment in message.attachments]
    return json.dumps([row, message.reactions, attachments], separators=(",", ":"))


def decode(message_id: int, text: str) -> Message:
    """The message ``encode`` made, with its id."""
    row, reactions, attachments = json.loads(text)
    row[0] = message_id
    return row_message(
        row,
        tuple((emoji, tuple(users)) for emoji, users in reactions),
        tuple(Attachment(**fields) for fields in attachments),
    )
