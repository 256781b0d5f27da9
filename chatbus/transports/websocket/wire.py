"""Reading what clients send (PROTOCOL.md version 1): frames in, typed values out.

Every function here is pure: it takes the decoded JSON a client sent and
returns a frozen dataclass, or raises :class:`ProtocolViolation` with the
wire error code and a message written for the person whose client sent it.
Nothing here knows about connections or the hub, so every refusal can be
tested without a server. Building what the server sends is
:mod:`chatbus.transports.websocket.frames`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from chatbus.core.message import DEFAULT_ROOM, valid_name

__all__ = [
    "ERROR_CODES",
    "HISTORY_DEFAULT",
    "HISTORY_MAX",
    "MAX_ATTACHMENTS",
    "MAX_CLIENT_ID",
    "MAX_EPOCH",
    "MAX_ID",
    "MAX_ROOMS",
    "AuthFrame",
    "ChangeFrame",
    "HistoryFrame",
    "MessageFrame",
    "ProtocolViolation",
    "TypingFrame",
    "decode_frame",
    "parse_auth",
    "parse_delete",
    "parse_edit",
    "parse_history",
    "parse_message",
    "parse_react",
    "parse_typing",
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
    "FORBIDDEN",
    "NOT_FOUND",
)
#: Longest client message id (``id`` of a ``message`` frame), in characters.
MAX_CLIENT_ID: Final = 128
#: Most messages one ``history`` request may ask for, and how many it gets without ``limit``.
HISTORY_MAX: Final = 200
HISTORY_DEFAULT: Final = 50
#: The largest message id a client may name (``replyTo``, ``lastSeenId``,
#: ``history.before``): JavaScript's ``Number.MAX_SAFE_INTEGER``, 2**53 - 1,
#: the largest whole number every JSON client reads exactly. Anything larger
#: (or a float, or ``true``) is refused here, so it never reaches the store.
MAX_ID: Final = 2**53 - 1
#: Longest ``epoch`` an ``auth`` frame may carry, in characters.
MAX_EPOCH: Final = 128
#: Most rooms an ``auth`` frame may ask to resume.
MAX_ROOMS: Final = 64
#: Most entries the ``attachments`` of a ``message`` frame may have (the hub's own limit is lower).
MAX_ATTACHMENTS: Final = 100


class ProtocolViolation(Exception):
    """A frame the protocol does not allow; ``code`` is the wire error code and
    the text is written for the person whose client sent it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class AuthFrame:
    """``auth``: who signs in, and from which message on they want what they missed."""

    user_id: str
    role: str | None = None
    token: str | None = None
    #: The last message id the client saw; None when it does not resume.
    last_seen_id: int | None = None
    #: The epoch of the log ``last_seen_id`` belongs to, as the server told it; None when unknown.
    epoch: str | None = None
    #: The rooms whose missed messages the client wants; None: only the default room.
    rooms: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class MessageFrame:
    """``message``: text for a room, with the client's own id for its echo."""

    text: str
    room: str = DEFAULT_ROOM
    #: The client's own id for the message (a number is taken as its digits).
    client_id: str | None = None
    #: Advisory only: the server finds mentions in the text itself.
    mentions: tuple[str, ...] = ()
    reply_to: int | None = None
    #: Ids of files uploaded with ``POST /files`` that go with the message.
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TypingFrame:
    """``typing``: the client's person is typing in ``room``."""

    room: str = DEFAULT_ROOM


@dataclass(frozen=True, slots=True)
class HistoryFrame:
    """``history``: up to ``limit`` messages of ``room`` before message ``before`` (the newest when None)."""

    room: str = DEFAULT_ROOM
    before: int | None = None
    limit: int = HISTORY_DEFAULT


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


def parse_auth(data: Mapping[str, Any]) -> AuthFrame:
    """The ``data`` of an ``auth`` frame; ``MISSING_USER_ID`` without a user id."""
    user_id = data.get("userId")
    if user_id is None or user_id == "":
        raise ProtocolViolation(
            "MISSING_USER_ID", 'Say who you are: {"type": "auth", "data": {"userId": "your-name"}}.'
        )
    if not isinstance(user_id, str):
        raise _invalid("userId must be a string.")
    role = _optional_str(data, "role")
    token = _optional_str(data, "token")
    last_seen = _whole(data, "lastSeenId", 0, "the id of the last message you saw, or 0 for all")
    epoch = _optional_str(data, "epoch")
    if epoch is not None and (len(epoch) > MAX_EPOCH or not _encodable(epoch)):
        raise _invalid(f"epoch must be the epoch this server sent in auth_response (at most {MAX_EPOCH} characters).")
    return AuthFrame(user_id=user_id, role=role, token=token, last_seen_id=last_seen, epoch=epoch, rooms=_rooms(data))


def parse_message(data: Mapping[str, Any]) -> MessageFrame:
    """The ``data`` of a ``message`` frame. Whether the text is empty or too
    long, and whether the files exist, is the hub's to say (it knows the limits)."""
    attachments = _attachments(data)
    text = data.get("text")
    if text is None and attachments:
        text = ""
    if text is None:
        raise _invalid('A message needs text: {"type": "message", "data": {"text": "hello"}}.')
    if not isinstance(text, str):
        raise _invalid("text must be a string.")
    if not text.isascii() and not _encodable(text):
        raise _invalid("text contains characters that are not valid Unicode.")
    client_id = data.get("id")
    if client_id is not None:
        if _is_int(client_id):
            client_id = str(client_id)
        if not isinstance(client_id, str) or len(client_id) > MAX_CLIENT_ID or not _encodable(client_id):
            raise _invalid(f"id must be a string of at most {MAX_CLIENT_ID} characters.")
    mentions = data.get("mentions")
    if mentions is not None and (not isinstance(mentions, list) or not all(isinstance(m, str) for m in mentions)):
        raise _invalid("mentions must be a list of user ids.")
    reply_to = _whole(data, "replyTo", 1, "the id of a message")
    return MessageFrame(
        text=text,
        room=_room(data),
        client_id=client_id,
        mentions=tuple(mentions or ()),
        reply_to=reply_to,
        attachments=attachments,
    )


def _attachments(data: Mapping[str, Any]) -> tuple[str, ...]:
    """``attachments`` of a ``message`` frame: a list of file ids (32 hex digits), or nothing."""
    value = data.get("attachments")
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_ATTACHMENTS:
        raise _invalid("attachments must be a list of file ids, as POST /files answered them.")
    for one in value:
        if not isinstance(one, str) or len(one) != 32 or not all(ch in "0123456789abcdef" for ch in one):
            raise _invalid("attachments must be a list of file ids (32 hex digits), as POST /files answered them.")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class ChangeFrame:
    """``edit``, ``delete`` or ``react``: which message, and what to do to it."""

    message_id: int
    #: ``edit``: the new text.
    text: str = ""
    #: ``react``: the reaction, and whether it is added (True) or removed.
    emoji: str = ""
    on: bool = True


def _message_id(data: Mapping[str, Any]) -> int:
    message_id = _whole(data, "id", 1, "the id of a message")
    if message_id is None:
        raise _invalid('Say which message: {"id": 42, ...}.')
    return message_id


def parse_edit(data: Mapping[str, Any]) -> ChangeFrame:
    """The ``data`` of an ``edit`` frame: ``id`` and the new ``text``."""
    text = data.get("text")
    if not isinstance(text, str):
        raise _invalid('An edit needs the new text: {"type": "edit", "data": {"id": 42, "text": "fixed"}}.')
    if not text.isascii() and not _encodable(text):
        raise _invalid("text contains characters that are not valid Unicode.")
    return ChangeFrame(_message_id(data), text=text)


def parse_delete(data: Mapping[str, Any]) -> ChangeFrame:
    """The ``data`` of a ``delete`` frame: ``id``."""
    return ChangeFrame(_message_id(data))


def parse_react(data: Mapping[str, Any]) -> ChangeFrame:
    """The ``data`` of a ``react`` frame: ``id``, ``emoji`` and ``on`` (default true)."""
    emoji = data.get("emoji")
    if not isinstance(emoji, str) or not _encodable(emoji):
        raise _invalid('A reaction needs an emoji: {"type": "react", "data": {"id": 42, "emoji": "👍", "on": true}}.')
    on = data.get("on", True)
    if not isinstance(on, bool):
        raise _invalid("on must be true (add the reaction) or false (remove it).")
    return ChangeFrame(_message_id(data), emoji=emoji, on=on)


def parse_typing(data: Mapping[str, Any]) -> TypingFrame:
    """The ``data`` of a ``typing`` frame."""
    return TypingFrame(room=_room(data))


def parse_history(data: Mapping[str, Any]) -> HistoryFrame:
    """The ``data`` of a ``history`` frame."""
    before = _whole(data, "before", 1, "a message id")
    limit = data.get("limit", HISTORY_DEFAULT)
    if limit is None:
        limit = HISTORY_DEFAULT
    if not _is_int(limit) or not 1 <= limit <= HISTORY_MAX:
        raise _invalid(f"limit must be a whole number from 1 to {HISTORY_MAX}.")
    return HistoryFrame(room=_room(data), before=before, limit=limit)


def _invalid(problem: str) -> ProtocolViolation:
    return ProtocolViolation("INVALID_MESSAGE", problem)


def _whole(data: Mapping[str, Any], key: str, least: int, meaning: str) -> int | None:
    """An optional message id field: a JSON whole number from ``least`` to :data:`MAX_ID`, or None."""
    value = data.get(key)
    if value is None:
        return None
    if not _is_int(value) or not least <= value <= MAX_ID:
        raise _invalid(f"{key} must be {meaning} (a whole number from {least} to {MAX_ID}).")
    return int(value)


def _rooms(data: Mapping[str, Any]) -> tuple[str, ...] | None:
    """``rooms`` of an ``auth`` frame: 1 to :data:`MAX_ROOMS` room names, each once, or None."""
    rooms = data.get("rooms")
    if rooms is None:
        return None
    if not isinstance(rooms, list) or not 1 <= len(rooms) <= MAX_ROOMS:
        raise _invalid(f"rooms must be a list of 1 to {MAX_ROOMS} room names.")
    for room in rooms:
        if not isinstance(room, str) or not valid_name(room):
            raise _invalid("rooms must be a list of room names, each 1-64 letters, digits, '_', '-' or '.'.")
    return tuple(dict.fromkeys(rooms))


def _is_int(value: object) -> bool:
    """A JSON whole number: ``true`` and ``false`` are not numbers here."""
    return isinstance(value, int) and not isinstance(value, bool)


def _encodable(text: str) -> bool:
    """False for strings with lone surrogates (JSON ``\\ud800``), which no UTF-8 client can receive."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise _invalid(f"{key} must be a string.")
    return value


def _room(data: Mapping[str, Any]) -> str:
    room = data.get("room")
    if room is None or room == "":
        return DEFAULT_ROOM
    if not valid_name(room):
        raise _invalid("room must be 1-64 letters, digits, '_', '-' or '.'.")
    return str(room)


def _shown(kind: str) -> str:
    """A type name safe to repeat back: short and printable."""
    return repr(kind[:32]) if kind.isprintable() else "this"
