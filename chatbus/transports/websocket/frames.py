"""The frames the server sends (PROTOCOL.md version 1), built and encoded.

Every frame is one JSON object ``{"type": ..., "data": {...}}``. These
functions are the one place that knows the field names of what clients
receive, so the server, the tests and any other code that speaks to
WebSocket clients (a bridge, a benchmark) build identical frames. Reading
what clients send is :mod:`chatbus.transports.websocket.wire`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chatbus.core.message import (
    AgentStatus,
    Attachment,
    Change,
    Event,
    Identity,
    Message,
    MessageDeleted,
    MessageEdited,
    Notice,
    Presence,
    Typing,
    utcnow,
)

if TYPE_CHECKING:
    from chatbus.core.hub import Hub, Member

__all__ = [
    "Roster",
    "agent_status_frame",
    "attachment_entry",
    "auth_response",
    "change_frame",
    "encode",
    "encode_with_list",
    "encode_with_raw",
    "error_frame",
    "event_frame",
    "history_frame",
    "json_list",
    "member_entry",
    "message_frame",
    "newest_within",
    "notice_frame",
    "pong_frame",
    "presence_frame",
    "timestamp",
    "typing_frame",
]

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_ascii_encoder = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False)
_MAX_RETRY_AFTER = 366 * 86400.0


def timestamp(moment: datetime | None = None) -> str:
    """ISO 8601 in UTC with microseconds and an explicit offset."""
    return (moment or utcnow()).isoformat(timespec="microseconds")


def encode(frame: Any) -> bytes:
    """A frame (or any JSON value) as compact UTF-8 JSON bytes, not ASCII-escaped."""
    text = _encoder.encode(frame)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate got in: escape it rather than fail everyone
        return _ascii_encoder.encode(frame).encode()


def message_frame(message: Message) -> dict[str, Any]:
    """A stored message as clients see it: ``message`` from a person,
    ``agent_response`` from an agent or the system."""
    return {
        "type": "message" if message.kind == "human" else "agent_response",
        "data": {
            "id": message.id,
            "clientId": message.client_id,
            "text": message.text,
            "sender": message.sender,
            "role": message.sender_role,
            "kind": message.kind,
            "timestamp": timestamp(message.timestamp),
            "mentions": list(message.mentions),
            "isCommand": message.command is not None,
            "command": message.command,
            "commandArgs": list(message.command_args),
            "replyTo": message.reply_to,
            "room": message.room,
            "transport": message.transport,
            "displayName": message.display_name or message.sender,
            "attachments": [attachment_entry(a) for a in message.attachments],
            **_current_state(message),
        },
    }


def attachment_entry(attachment: Attachment) -> dict[str, Any]:
    """A file as messages (and ``POST /files``) describe it; ``thumbnailUrl`` for images shown inline."""
    entry: dict[str, Any] = {
        "id": attachment.id,
        "name": attachment.name,
        "size": attachment.size,
        "contentType": attachment.content_type,
        "url": attachment.url,
        "width": attachment.width,
        "height": attachment.height,
    }
    if attachment.thumbnail_url is not None:
        entry["thumbnailUrl"] = attachment.thumbnail_url
    return entry


def _current_state(message: Message) -> dict[str, Any]:
    """What changed since the message was sent; nothing for one that never changed."""
    state: dict[str, Any] = {}
    if message.edited_at is not None:
        state["editedAt"] = timestamp(message.edited_at)
        state["editedBy"] = message.edited_by
    if message.deleted_at is not None:
        state["deleted"] = True
        state["deletedAt"] = timestamp(message.deleted_at)
        state["deletedBy"] = message.deleted_by
    if message.reactions:
        state["reactions"] = {emoji: list(users) for emoji, users in message.reactions}
    if message.streaming:
        state["streaming"] = True
    return state


def change_frame(change: Change) -> dict[str, Any]:
    """``message_edited``, ``message_deleted`` or ``reaction`` for a change of a stored message."""
    message = change.message
    if isinstance(change, MessageEdited):
        data: dict[str, Any] = {
            "id": message.id,
            "text": message.text,
            "mentions": list(message.mentions),
            "editedAt": timestamp(message.edited_at),
            "editedBy": message.edited_by,
            "streaming": message.streaming,
            "room": message.room,
        }
        return {"type": "message_edited", "data": data}
    if isinstance(change, MessageDeleted):
        data = {
            "id": message.id,
            "deletedAt": timestamp(message.deleted_at),
            "deletedBy": message.deleted_by,
            "room": message.room,
        }
        return {"type": "message_deleted", "data": data}
    data = {
        "id": message.id,
        "emoji": change.emoji,
        "userId": change.user_id,
        "on": change.on,
        "counts": message.reaction_counts(),
        "room": message.room,
    }
    return {"type": "reaction", "data": data}


def notice_frame(notice: Notice) -> dict[str, Any]:
    """``notice``: something the system says to one person only (a link code); not stored, no id."""
    return {"type": "notice", "data": {"text": notice.text, "room": notice.room, "timestamp": timestamp()}}


def error_frame(code: str, message: str, *, retry_after: float | None = None) -> dict[str, Any]:
    """An ``error`` frame; ``retry_after`` (seconds) goes with ``RATE_LIMITED``."""
    data: dict[str, Any] = {"code": code, "message": message, "timestamp": timestamp()}
    if retry_after is not None:
        data["retryAfter"] = round(min(max(retry_after, 0.0), _MAX_RETRY_AFTER), 3)
    return {"type": "error", "data": data}


def pong_frame() -> dict[str, Any]:
    return {"type": "pong", "data": {"timestamp": timestamp()}}


def presence_frame(event: Presence) -> dict[str, Any]:
    data: dict[str, Any] = {"userId": event.user_id, "role": event.role, "kind": event.kind, "status": event.status}
    data["displayName"] = event.display_name or event.user_id
    data["transport"] = event.transport
    return {"type": "presence", "data": data}


def agent_status_frame(event: AgentStatus) -> dict[str, Any]:
    return {
        "type": "agent_status",
        "data": {
            "userId": event.user_id,
            "status": event.status,
            "currentTask": event.current_task,
            "progress": event.progress,
        },
    }


def typing_frame(event: Typing) -> dict[str, Any]:
    data = {"userId": event.user_id, "room": event.room, "displayName": event.display_name or event.user_id}
    return {"type": "typing", "data": {**data, "transport": event.transport}}


def event_frame(event: Event) -> dict[str, Any]:
    """The frame for a presence, agent-status or typing event."""
    if isinstance(event, Presence):
        return presence_frame(event)
    if isinstance(event, AgentStatus):
        return agent_status_frame(event)
    return typing_frame(event)


def auth_response(
    identity: Identity,
    session_id: str,
    agents: bytes,
    users: bytes,
    *,
    epoch: str | None = None,
    missed: Sequence[bytes] | None = None,
    missed_has_more: bool = False,
    missed_reset: bool = False,
    rooms: Sequence[str] | None = None,
    files: Mapping[str, int] | None = None,
) -> bytes:
    """The encoded ``auth_response``: ``agents`` and ``users`` are encoded
    lists (see :class:`Roster`) and ``missed`` encoded message frames, when
    the client resumes, so a sign-in encodes none of them again.

    ``epoch`` names the message log the ids belong to; ``missed_reset`` says
    that the client's ``lastSeenId`` was of another log (see :mod:`.resume`).
    ``files`` (an extension) tells the page this chat's file limits before it
    uploads: ``{"maxPerMessage": n, "maxFileBytes": n}``.
    """
    answer: dict[str, Any] = {
        "success": True,
        "userId": identity.user_id,
        "role": identity.role,
        "sessionId": session_id,
    }
    if epoch is not None:
        answer["epoch"] = epoch
    if identity.display_name:
        answer["displayName"] = identity.display_name
    if rooms is not None:
        answer["rooms"] = list(rooms)
    if files is not None:
        answer["files"] = dict(files)
    lists = {"agents": agents, "users": users}
    if missed is not None:
        answer["missedHasMore"] = missed_has_more
        answer["missedReset"] = missed_reset
        lists["missed"] = json_list(missed)
    return encode_with_raw("auth_response", answer, lists)


def member_entry(member: Member) -> dict[str, Any]:
    """A member as an entry of ``auth_response.users``: id, role, kind and
    status; an agent also says what it is doing (``currentTask``, ``progress``), and a person of another
    transport (``tg:12345``) the name to show and where they write from (``displayName``, ``transport``)."""
    entry: dict[str, Any] = {"id": member.user_id, "role": member.role, "kind": member.kind, "status": member.status}
    if member.display_name and member.display_name != member.user_id:
        entry["displayName"] = member.display_name
    if member.transport and member.transport != "websocket":
        entry["transport"] = member.transport
    if member.kind == "agent":
        entry["currentTask"] = member.current_task
        entry["progress"] = member.progress
    return entry


def history_frame(messages: Iterable[Message], has_more: bool) -> dict[str, Any]:
    """The answer to ``history``: whole message frames, oldest first."""
    return {"type": "history", "data": {"messages": [message_frame(m) for m in messages], "hasMore": has_more}}


def newest_within(messages: Sequence[Message], budget: int) -> tuple[list[bytes], int]:
    """Encoded message frames for the newest of ``messages`` (oldest first)
    whose total size fits in ``budget`` bytes, and how many older ones were left out.

    Replays and history pages stay small enough for any client's frame-size
    limit; the client pages further back with ``history``.
    """
    kept: list[bytes] = []
    used = 0
    for message in reversed(messages):
        frame = encode(message_frame(message))
        used += len(frame) + 1
        if used > budget and kept:
            break
        kept.append(frame)
    kept.reverse()
    return kept, len(messages) - len(kept)


def json_list(items: Iterable[bytes]) -> bytes:
    """A JSON array of already-encoded JSON values."""
    return b"[" + b",".join(items) + b"]"


def encode_with_raw(kind: str, data: Mapping[str, Any], raw: Mapping[str, bytes]) -> bytes:
    """Encode ``{"type": kind, "data": {**data, **raw}}`` where the values of
    ``raw`` are already-encoded JSON, so nothing is encoded twice."""
    head = encode({"type": kind, "data": data})
    assert head.endswith(b"}}")
    parts = [head[:-2]]
    separator = b"," if data else b""
    for key, value in raw.items():
        parts += (separator, encode(key), b":", value)
        separator = b","
    parts.append(b"}}")
    return b"".join(parts)


def encode_with_list(kind: str, data: Mapping[str, Any], key: str, items: Sequence[bytes]) -> bytes:
    """Encode ``{"type": kind, "data": {**data, key: [items]}}`` where ``items``
    are already-encoded JSON values, so nothing is encoded twice."""
    return encode_with_raw(kind, data, {key: json_list(items)})


class Roster:
    """``agents`` and ``users`` of ``auth_response`` as encoded JSON lists.

    Kept until the hub's member list changes. ``agents`` names everyone;
    ``users`` describes agents and at most ``people_limit`` people (their
    entries encoded once and reused while they are unchanged), so a sign-in
    among thousands of people stays cheap.
    """

    def __init__(self, people_limit: int) -> None:
        self.people_limit = people_limit
        self._cached: tuple[object, int, bytes, bytes] | None = None
        self._entries: dict[str, tuple[Member, bytes]] = {}

    def lists(self, hub: Hub) -> tuple[bytes, bytes]:
        """``(agents, users)`` for the hub's members now."""
        version = hub.members_version
        cached = self._cached
        if cached is not None and cached[0] is hub and cached[1] == version:
            return cached[2], cached[3]
        members = hub.members()
        people = hub.people_online  # members() lists people first, then agents
        described = members[: min(people, self.people_limit)] + members[people:]
        old = self._entries
        fresh: dict[str, tuple[Member, bytes]] = {}
        for member in described:
            entry = old.get(member.user_id)
            if entry is None or entry[0] is not member:
                entry = (member, encode(member_entry(member)))
            fresh[member.user_id] = entry
        self._entries = fresh
        agents = encode([member.user_id for member in members])
        users = json_list([entry[1] for entry in fresh.values()])
        self._cached = (hub, version, agents, users)
        return agents, users
