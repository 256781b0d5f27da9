"""The wire format of PROTOCOL.md version 1: building and reading frames.

Every frame is one JSON object ``{"type": ..., "data": {...}}``. These
functions are the one place that knows the field names, so the server, the
tests and any other code that speaks to WebSocket clients (a bridge, a
benchmark) build identical frames.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from chatbus.core.message import AgentStatus, Event, Message, Presence, Typing, utcnow

__all__ = [
    "ERROR_CODES",
    "ProtocolViolation",
    "agent_status_frame",
    "decode_frame",
    "encode",
    "encode_with_list",
    "encode_with_raw",
    "error_frame",
    "event_frame",
    "history_frame",
    "json_list",
    "message_frame",
    "newest_within",
    "pong_frame",
    "presence_frame",
    "timestamp",
    "typing_frame",
]

#: The error codes of the protocol, in the order PROTOCOL.md lists them.
ERROR_CODES: Final = (
    "INVALID_JSON",
    "INVALID_MESSAGE",
    "UNKNOWN_TYPE",
    "MISSING_USER_ID",
    "AUTH_FAILED",
    "NOT_AUTHENTICATED",
    "RATE_LIMITED",
    "MESSAGE_TOO_LARGE",
    "INTERNAL_ERROR",
)

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_ascii_encoder = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False)
_MAX_RETRY_AFTER = 366 * 86400.0


class ProtocolViolation(Exception):
    """A frame the protocol does not allow; ``code`` is the wire error code and
    the text is written for the person whose client sent it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


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
        },
    }


def error_frame(code: str, message: str, *, retry_after: float | None = None) -> dict[str, Any]:
    """An ``error`` frame; ``retry_after`` (seconds) goes with ``RATE_LIMITED``."""
    data: dict[str, Any] = {"code": code, "message": message, "timestamp": timestamp()}
    if retry_after is not None:
        data["retryAfter"] = round(min(max(retry_after, 0.0), _MAX_RETRY_AFTER), 3)
    return {"type": "error", "data": data}


def pong_frame() -> dict[str, Any]:
    return {"type": "pong", "data": {"timestamp": timestamp()}}


def presence_frame(event: Presence) -> dict[str, Any]:
    return {
        "type": "presence",
        "data": {"userId": event.user_id, "role": event.role, "kind": event.kind, "status": event.status},
    }


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
    return {"type": "typing", "data": {"userId": event.user_id, "room": event.room}}


def event_frame(event: Event) -> dict[str, Any]:
    """The frame for a presence, agent-status or typing event."""
    if isinstance(event, Presence):
        return presence_frame(event)
    if isinstance(event, AgentStatus):
        return agent_status_frame(event)
    return typing_frame(event)


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


def decode_frame(raw: bytes) -> tuple[str, dict[str, Any]]:
    """Read one client frame into ``(type, data)``.

    Raises :class:`ProtocolViolation` with ``INVALID_JSON`` when the bytes are
    not UTF-8 JSON, and ``INVALID_MESSAGE`` when the JSON is not an object
    with a string ``type`` and an object (or absent) ``data``.
    """
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ProtocolViolation(
            "INVALID_JSON", 'Frames must be UTF-8 JSON text like {"type": "message", "data": {"text": "hi"}}.'
        ) from None
    if not isinstance(parsed, dict):
        raise ProtocolViolation(
            "INVALID_MESSAGE", 'Frames must be JSON objects like {"type": "message", "data": {"text": "hi"}}.'
        )
    kind = parsed.get("type")
    if not isinstance(kind, str) or not kind:
        raise ProtocolViolation("INVALID_MESSAGE", 'Frames need a "type" string, such as "auth", "message" or "ping".')
    data = parsed.get("data")
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        raise ProtocolViolation("INVALID_MESSAGE", f'The "data" of a {_shown(kind)} frame must be a JSON object.')
    return kind, data


def _shown(kind: str) -> str:
    """A type name safe to repeat back: short and printable."""
    return repr(kind[:32]) if kind.isprintable() else "this"
