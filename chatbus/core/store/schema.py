"""The SQLite store's schema and how rows become messages and agents."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..message import Agent, Message
from .base import EPOCH_KEY

__all__ = ["MESSAGE_COLUMNS", "MIGRATIONS", "epoch_of", "message_row", "row_agent", "row_message"]


# Each entry moves the schema one version up; never edit a released one.
MIGRATIONS: Sequence[str] = (
    """
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        room TEXT NOT NULL,
        sender TEXT NOT NULL,
        sender_role TEXT NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        mentions TEXT NOT NULL,
        command TEXT,
        command_args TEXT NOT NULL,
        reply_to INTEGER,
        transport TEXT,
        client_id TEXT,
        timestamp TEXT NOT NULL
    );
    CREATE INDEX messages_room_id ON messages (room, id);
    CREATE TABLE agents (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        command TEXT,
        status TEXT NOT NULL,
        current_task TEXT,
        progress INTEGER
    );
    CREATE TABLE external_ids (
        transport TEXT NOT NULL,
        external_id TEXT NOT NULL,
        hub_id INTEGER NOT NULL,
        PRIMARY KEY (transport, external_id)
    );
    CREATE INDEX external_ids_hub ON external_ids (transport, hub_id);
    CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
)

MESSAGE_COLUMNS = (
    "id, room, sender, sender_role, kind, text, mentions, command, command_args,"
    " reply_to, transport, client_id, timestamp"
)


def message_row(m: Message) -> tuple[Any, ...]:
    return (
        m.id,
        m.room,
        m.sender,
        m.sender_role,
        m.kind,
        m.text,
        json.dumps(m.mentions),
        m.command,
        json.dumps(m.command_args),
        m.reply_to,
        m.transport,
        m.client_id,
        m.timestamp.isoformat(),
    )


def epoch_of(db: sqlite3.Connection) -> str:
    """The log's epoch: made once, when the database is new, and kept with it."""
    row = db.execute("SELECT value FROM state WHERE key = ?", (EPOCH_KEY,)).fetchone()
    if row is not None:
        return str(row[0])
    epoch = uuid.uuid4().hex
    db.execute("INSERT INTO state (key, value) VALUES (?, ?)", (EPOCH_KEY, epoch))
    return epoch


def row_message(row: Sequence[Any]) -> Message:
    return Message(
        id=row[0],
        room=row[1],
        sender=row[2],
        sender_role=row[3],
        kind=row[4],
        text=row[5],
        mentions=tuple(json.loads(row[6])),
        command=row[7],
        command_args=tuple(json.loads(row[8])),
        reply_to=row[9],
        transport=row[10],
        client_id=row[11],
        timestamp=datetime.fromisoformat(row[12]),
    )


def row_agent(row: Sequence[Any]) -> Agent:
    return Agent(
        name=row[0],
        role=row[1],
        command=tuple(json.loads(row[2])) if row[2] else None,
        status=row[3],
        current_task=row[4],
        progress=row[5],
    )
