"""chatbus: people and AI agents in one chat, over several transports at once."""

from __future__ import annotations

from .core.errors import (
    AuthError,
    ChatbusError,
    ConfigError,
    FileRefused,
    Forbidden,
    InvalidMessage,
    MessageTooLarge,
    NotFound,
    PluginError,
    RateLimited,
    StoreError,
    TransportError,
)
from .core.files import Files, FilesSettings, StoredFile
from .core.hookspecs import hookimpl, hookspec
from .core.hub import Hub, Member
from .core.message import (
    DEFAULT_ROOM,
    SYSTEM_SENDER,
    Agent,
    AgentStatus,
    Attachment,
    Change,
    Credentials,
    Event,
    Identity,
    Incoming,
    Message,
    MessageDeleted,
    MessageEdited,
    Notice,
    Parsed,
    Presence,
    RateDecision,
    Reaction,
    Typing,
    valid_name,
    valid_user_id,
)
from .core.sections import PluginSettings, TransportSettings
from .core.settings import Settings
from .core.store import MemoryStore, SQLiteStore, Store
from .core.transport import (
    BaseTransport,
    BuiltFromOptions,
    ChangeAware,
    Draining,
    Health,
    Notifiable,
    Reachable,
    Reporting,
    Telling,
    Transport,
)

__all__ = [
    "DEFAULT_ROOM",
    "SYSTEM_SENDER",
    "Agent",
    "AgentStatus",
    "Attachment",
    "AuthError",
    "BaseTransport",
    "BuiltFromOptions",
    "Change",
    "ChangeAware",
    "ChatbusError",
    "ConfigError",
    "Credentials",
    "Draining",
    "Event",
    "FileRefused",
    "Files",
    "FilesSettings",
    "Forbidden",
    "Health",
    "Hub",
    "Identity",
    "Incoming",
    "InvalidMessage",
    "Member",
    "MemoryStore",
    "Message",
    "MessageDeleted",
    "MessageEdited",
    "MessageTooLarge",
    "NotFound",
    "Notice",
    "Notifiable",
    "Parsed",
    "PluginError",
    "PluginSettings",
    "Presence",
    "RateDecision",
    "RateLimited",
    "Reachable",
    "Reaction",
    "Reporting",
    "SQLiteStore",
    "Settings",
    "Store",
    "StoreError",
    "StoredFile",
    "Telling",
    "Transport",
    "TransportError",
    "TransportSettings",
    "Typing",
    "__version__",
    "hookimpl",
    "hookspec",
    "valid_name",
    "valid_user_id",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chatbus")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = _version()
