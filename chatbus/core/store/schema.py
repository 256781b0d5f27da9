"""The SQLite store's schema and how rows become messages and agents."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..message import Agent, Attachment, Message
from .base import EPOCH_KEY

__all__ = [
    "AGENT_COLUMNS",
    "CHANGE_COLUMNS",
    "MESSAGE_COLUMNS",
    "MESSAGE_PLACEHOLDERS",
    "MIGRATIONS",
    "agent_row",
    "change_row",
    "epoch_of",
    "group_reactions",
    "message_row",
    "row_agent",
    "row_message",
]


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
    # 2: messages that change (edits, deletions, reactions, answers being
    # written) and the name shown for a sender.
    """
    ALTER TABLE messages ADD COLUMN display_name TEXT;
    ALTER TABLE messages ADD COLUMN edited_at TEXT;
    ALTER TABLE messages ADD COLUMN edited_by TEXT;
    ALTER TABLE messages ADD COLUMN deleted_at TEXT;
    ALTER TABLE messages ADD COLUMN deleted_by TEXT;
    ALTER TABLE messages ADD COLUMN streaming INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE message_versions (
        message_id INTEGER NOT NULL,
        number INTEGER NOT NULL,
        text TEXT NOT NULL,
        replaced_at TEXT NOT NULL,
        replaced_by TEXT,
        PRIMARY KEY (message_id, number)
    );
    CREATE TABLE reactions (
        message_id INTEGER NOT NULL,
        emoji TEXT NOT NULL,
        user_id TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (message_id, emoji, user_id)
    );
    """,
    # 3: files sent with messages (their bytes are kept outside the database).
    """
    CREATE TABLE files (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        content_type TEXT NOT NULL,
        width INTEGER,
        height INTEGER,
        uploader TEXT,
        uploaded_at REAL NOT NULL
    );
    CREATE INDEX files_uploaded ON files (uploaded_at);
    CREATE TABLE message_files (
        message_id INTEGER NOT NULL,
        position INTEGER NOT NULL,
        file_id TEXT NOT NULL,
        PRIMARY KEY (message_id, position)
    );
    CREATE INDEX message_files_file ON message_files (file_id);
    """,
    # 4: the agents' roster options: the model that answers as them, replies on
    # standard input, and who may give them work.
    """
    ALTER TABLE agents ADD COLUMN model TEXT;
    ALTER TABLE agents ADD COLUMN stdin INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE agents ADD COLUMN allow TEXT;
    """,
)

#: The agents' columns, in the order of :func:`row_agent` and :func:`agent_row`.
AGENT_COLUMNS = "name, role, command, status, current_task, progress, model, stdin, allow"

MESSAGE_COLUMNS = (
    "id, room, sender, sender_role, kind, text, mentions, command, command_args,"
    " reply_to, transport, client_id, timestamp,"
    " display_name, edited_at, edited_by, deleted_at, deleted_by, streaming"
)
#: One ``?`` per column of :data:`MESSAGE_COLUMNS`.
MESSAGE_PLACEHOLDERS = ",".join("?" * len(MESSAGE_COLUMNS.split(",")))
#: The columns a change of a message may set, in the order of :func:`change_row`.
CHANGE_COLUMNS = (
    "text",
    "mentions",
    "command",
    "command_args",
    "edited_at",
    "edited_by",
    "deleted_at",
    "deleted_by",
    "streaming",
)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


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
        m.display_name,
        *change_row(m)[4:],
    )


def change_row(m: Message) -> tuple[Any, ...]:
    """The values of :data:`CHANGE_COLUMNS` for ``m``."""
    return (
        m.text,
        json.dumps(m.mentions),
        m.command,
        json.dumps(m.command_args),
        _time(m.edited_at),
        m.edited_by,
        _time(m.deleted_at),
        m.deleted_by,
        int(m.streaming),
    )


def epoch_of(db: sqlite3.Connection) -> str:
    """The log's epoch: made once, when the database is new, and kept with it."""
    row = db.execute("SELECT value FROM state WHERE key = ?", (EPOCH_KEY,)).fetchone()
    if row is not None:
        return str(row[0])
    epoch = uuid.uuid4().hex
    db.execute("INSERT INTO state (key, value) VALUES (?, ?)", (EPOCH_KEY, epoch))
    return epoch


def row_message(
    row: Sequence[Any],
    reactions: tuple[tuple[str, tuple[str, ...]], ...] = (),
    attachments: tuple[Attachment, ...] = (),
) -> Message:
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
        display_name=row[13],
        edited_at=datetime.fromisoformat(row[14]) if row[14] else None,
        edited_by=row[15],
        deleted_at=datetime.fromisoformat(row[16]) if row[16] else None,
        deleted_by=row[17],
        streaming=bool(row[18]),
        reactions=reactions,
        attachments=attachments if not row[16] else (),
    )


def row_agent(row: Sequence[Any]) -> Agent:
    return Agent(
        name=row[0],
        role=row[1],
        command=tuple(json.loads(row[2])) if row[2] else None,
        status=row[3],
        current_task=row[4],
        progress=row[5],
        model=row[6],
        stdin=bool(row[7]),
        allow=tuple(json.loads(row[8])) if row[8] is not None else None,
    )


def agent_row(agent: Agent) -> tuple[Any, ...]:
    return (
        agent.name,
        agent.role,
        json.dumps(list(agent.command)) if agent.command else None,
        agent.status,
        agent.current_task,
        agent.progress,
        agent.model,
        int(agent.stdin),
        json.dumps(list(agent.allow)) if agent.allow is not None else None,
    )


def group_reactions(rows: Sequence[Sequence[Any]]) -> dict[int, tuple[tuple[str, tuple[str, ...]], ...]]:
    """Rows of ``(message_id, emoji, user_id)`` in the order reactions were made,
    as each message's ``reactions``."""
    grouped: dict[int, dict[str, list[str]]] = {}
    for message_id, emoji, user_id in rows:
        grouped.setdefault(message_id, {}).setdefault(emoji, []).append(user_id)
    return {mid: tuple((emoji, tuple(users)) for emoji, users in by.items()) for mid, by in grouped.items()}
