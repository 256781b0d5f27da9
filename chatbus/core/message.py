"""The value types that flow through the hub: messages, identities, events."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

__all__ = [
    "DEFAULT_ROOM",
    "INLINE_IMAGES",
    "MANAGER_ROLE",
    "QUALIFIED_ID",
    "SYSTEM_SENDER",
    "TEAM",
    "USER_ID_PATTERN",
    "Agent",
    "AgentStatus",
    "AgentStatusName",
    "Attachment",
    "Change",
    "Credentials",
    "Event",
    "Identity",
    "Incoming",
    "Kind",
    "Message",
    "MessageDeleted",
    "MessageEdited",
    "Notice",
    "Parsed",
    "Presence",
    "RateDecision",
    "Reaction",
    "Typing",
    "name_key",
    "utcnow",
    "valid_name",
    "valid_user_id",
]

Kind = Literal["human", "agent", "system"]
AgentStatusName = Literal["idle", "working", "stuck", "completed"]

DEFAULT_ROOM = "general"
SYSTEM_SENDER = "system"
#: The name that mentions everyone; nobody may take it.
TEAM = "team"
#: The role that may change anyone's messages and hire and fire agents.
MANAGER_ROLE = "manager"

#: User ids, agent names and room names: 1-64 letters, digits, ``_``, ``-``, ``.``.
USER_ID_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def valid_name(value: object) -> bool:
    """True when ``value`` is a string usable as a user id, agent name or room:
    1-64 letters, digits, ``_``, ``-``, ``.``, with at least one letter or digit
    (``..`` would be a path, not a name)."""
    return isinstance(value, str) and USER_ID_PATTERN.fullmatch(value) is not None and not _NO_ALNUM.fullmatch(value)


_NO_ALNUM = re.compile(r"[_.\-]+")

#: A transport-qualified user id: ``tg:12345`` is Telegram user 12345.
QUALIFIED_ID = re.compile(r"([a-z][a-z0-9]{0,15}):([A-Za-z0-9_.\-]{1,64})")


def valid_user_id(value: object) -> bool:
    """A person's id: a name (:func:`valid_name`), or a transport-qualified id
    (``tg:12345``) that only the transport vouching for that person gives."""
    return valid_name(value) or (isinstance(value, str) and QUALIFIED_ID.fullmatch(value) is not None)


#: Look-alike letters of other scripts, as the Latin letter they pass for (Cyrillic and Greek).
_CONFUSABLES = str.maketrans(
    {
        # Cyrillic
        "\u0430": "a", "\u0435": "e", "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0443": "y",
        "\u0445": "x", "\u0456": "i", "\u0458": "j", "\u0455": "s", "\u0501": "d", "\u051b": "q",
        "\u051d": "w", "\u043a": "k", "\u043c": "m", "\u043d": "h", "\u0442": "t", "\u0432": "b",
        "\u0454": "e", "\u04cf": "l", "\u0491": "r",
        # Greek
        "\u03b1": "a", "\u03bf": "o", "\u03c1": "p", "\u03c4": "t", "\u03c5": "u", "\u03bd": "v",
        "\u03ba": "k", "\u03b9": "i", "\u03b5": "e", "\u03c7": "x", "\u03b7": "n",
    }
)  # fmt: skip


def name_key(name: str) -> str:
    """What two names are compared by when one may pose as the other: Unicode
    normalised (NFKC), case folded, and look-alike Cyrillic and Greek letters
    read as the Latin ones they resemble. ``ALICE``, ``Alice`` and a Cyrillic
    ``аlice`` all give ``alice``."""
    return unicodedata.normalize("NFKC", name).casefold().translate(_CONFUSABLES)


def utcnow() -> datetime:
    """The current time in UTC, with its offset."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is speaking: a person, an agent or the system."""

    user_id: str
    role: str = "user"
    kind: Kind = "human"
    display_name: str | None = None
    #: The transport that vouched for this person (``extra={"verified": True}``),
    #: None when ``on_auth`` checked them itself (a token, or open sign-in).
    vouched_by: str | None = None

    @property
    def is_human(self) -> bool:
        return self.kind == "human"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a connecting user presented, before any plugin has accepted it.

    ``user_id`` and ``role`` are exactly what the client sent and may have any
    type; ``on_auth`` implementations validate them.
    """

    user_id: Any
    role: Any = None
    token: Any = None
    transport: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Parsed:
    """What ``parse_message`` found in a text."""

    mentions: tuple[str, ...] = ()
    command: str | None = None
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The answer of a ``rate_limit`` implementation."""

    allowed: bool
    retry_after: float = 0.0

    @classmethod
    def allow(cls) -> RateDecision:
        return _ALLOW

    @classmethod
    def refuse(cls, retry_after: float) -> RateDecision:
        return cls(False, max(0.0, retry_after))


_ALLOW = RateDecision(True)


#: Image types a browser shows inline (and of which a thumbnail is made).
INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


@dataclass(frozen=True, slots=True)
class Attachment:
    """A stored file as messages carry it. ``id`` names the bytes (the first 32
    hex digits of their SHA-256): the same bytes are one file, stored once."""

    id: str
    #: A safe file name: no path parts, no control characters, at most 255 characters.
    name: str
    size: int
    content_type: str
    #: Images only: their size in pixels.
    width: int | None = None
    height: int | None = None
    #: Who uploaded it first (a user id), when known.
    uploader: str | None = None

    @property
    def url(self) -> str:
        """Where it is downloaded, relative to the chat's address: ``/files/<id>/<name>``."""
        return f"/files/{self.id}/{quote(self.name, safe='')}"

    @property
    def is_image(self) -> bool:
        """An image a browser shows inline (PNG, JPEG, GIF, WebP)."""
        return self.content_type in INLINE_IMAGES

    @property
    def thumbnail_url(self) -> str | None:
        """A small version of an image (:attr:`is_image`), None for other files."""
        return f"{self.url}?thumb=1" if self.is_image else None


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message from a person as a transport hands it to the hub, before it
    is checked, parsed, numbered and stored."""

    identity: Identity
    text: str
    room: str = DEFAULT_ROOM
    reply_to: int | None = None
    transport: str | None = None
    client_id: str | None = None
    mentions: tuple[str, ...] = ()
    #: Files that go with the message (their ids were checked).
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class Message:
    """A stored chat message. ``id`` is unique across all transports and
    strictly increasing in the order messages were accepted."""

    id: int
    text: str
    sender: str
    timestamp: datetime
    room: str = DEFAULT_ROOM
    kind: Kind = "human"
    sender_role: str = "user"
    mentions: tuple[str, ...] = ()
    command: str | None = None
    command_args: tuple[str, ...] = ()
    reply_to: int | None = None
    transport: str | None = None
    client_id: str | None = None
    #: What to show for the sender (a Telegram user's name); None: the sender id.
    display_name: str | None = None
    #: When and by whom the text was last changed (None: never).
    edited_at: datetime | None = None
    edited_by: str | None = None
    #: A deleted message keeps its id and place, with empty text.
    deleted_at: datetime | None = None
    deleted_by: str | None = None
    #: An agent's answer still being written: later edits complete it.
    streaming: bool = False
    #: Who reacted with what: ``((emoji, (user id, ...)), ...)``, in order of first use.
    reactions: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: Files sent with the message, in the order the sender gave them (none once deleted).
    attachments: tuple[Attachment, ...] = ()

    @property
    def is_command(self) -> bool:
        return self.command is not None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def reaction_counts(self) -> dict[str, int]:
        """``{emoji: how many reacted with it}``."""
        return {emoji: len(users) for emoji, users in self.reactions}

    @property
    def from_human(self) -> bool:
        return self.kind == "human"


@dataclass(frozen=True, slots=True)
class Presence:
    """Someone came online (first connection) or went offline (last one)."""

    user_id: str
    role: str
    kind: Kind
    status: Literal["online", "offline"]
    #: What to show for them (None: the id), and the transport they came through.
    display_name: str | None = None
    transport: str | None = None


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """An agent's work status changed."""

    user_id: str
    status: AgentStatusName
    current_task: str | None = None
    progress: int | None = None


@dataclass(frozen=True, slots=True)
class Typing:
    """Someone is typing in a room."""

    user_id: str
    room: str = DEFAULT_ROOM
    transport: str | None = None
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class MessageEdited:
    """A message's text changed (or an answer being written grew); ``message`` is its new state."""

    message: Message


@dataclass(frozen=True, slots=True)
class MessageDeleted:
    """A message was deleted; ``message`` is its tombstone (empty text, ``deleted_at`` set)."""

    message: Message


@dataclass(frozen=True, slots=True)
class Reaction:
    """Someone added (``on``) or removed a reaction; ``message`` carries every reaction after it."""

    message: Message
    emoji: str
    user_id: str
    on: bool


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the system tells one person only (a link code): not stored,
    given to the transports that can reach one person (``tell``)."""

    user_id: str
    text: str
    room: str = DEFAULT_ROOM


#: A change to a stored message, handed to the transports that take changes
#: (``changed``, see :class:`~chatbus.core.transport.ChangeAware`), in order with the messages.
Change = MessageEdited | MessageDeleted | Reaction

Event = Presence | AgentStatus | Typing


@dataclass(frozen=True, slots=True)
class Agent:
    """An agent in the roster."""

    name: str
    role: str
    command: tuple[str, ...] | None = None
    status: AgentStatusName = "idle"
    current_task: str | None = None
    progress: int | None = None
    #: The ``llm`` model that answers questions and conversation as this agent (None: the built-in texts).
    model: str | None = None
    #: Replies to its running task reach the worker on standard input (else the task is run again).
    stdin: bool = False
    #: Who may give it work: roles and/or user ids (None: the ``agents.allow_roles`` setting).
    allow: tuple[str, ...] | None = None

    @property
    def identity(self) -> Identity:
        return Identity(self.name, self.role, "agent")
