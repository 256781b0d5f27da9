"""chatbus: people and AI agents in one chat, over several transports at once."""

from __future__ import annotations

from .core.errors import (
    AuthError,
    ChatbusError,
    ConfigError,
    InvalidMessage,
    MessageTooLarge,
    PluginError,
    RateLimited,
    StoreError,
    TransportError,
)
from .core.hookspecs import hookimpl, hookspec
from .core.hub import Hub, Member
from .core.message import (
    DEFAULT_ROOM,
    SYSTEM_SENDER,
    Agent,
    AgentStatus,
    Credentials,
    Event,
    Identity,
    Incoming,
    Message,
    Parsed,
    Presence,
    RateDecision,
    Typing,
    valid_name,
)
from .core.sections import PluginSettings, TransportSettings
from .core.settings import Settings
from .core.store import MemoryStore, SQLiteStore, Store
from .core.transport import (
    BaseTransport,
    BuiltFromOptions,
    Draining,
    Health,
    Notifiable,
    Reachable,
    Reporting,
    Transport,
)

__all__ = [
    "DEFAULT_ROOM",
    "SYSTEM_SENDER",
    "Agent",
    "AgentStatus",
    "AuthError",
    "BaseTransport",
    "BuiltFromOptions",
    "ChatbusError",
    "ConfigError",
    "Credentials",
    "Draining",
    "Event",
    "Health",
    "Hub",
    "Identity",
    "Incoming",
    "InvalidMessage",
    "Member",
    "MemoryStore",
    "Message",
    "MessageTooLarge",
    "Notifiable",
    "Parsed",
    "PluginError",
    "PluginSettings",
    "Presence",
    "RateDecision",
    "RateLimited",
    "Reachable",
    "Reporting",
    "SQLiteStore",
    "Settings",
    "Store",
    "StoreError",
    "Transport",
    "TransportError",
    "TransportSettings",
    "Typing",
    "__version__",
    "hookimpl",
    "hookspec",
    "valid_name",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chatbus")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = _version()
