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
from .core.hookspecs import hookimpl
from .core.hub import Hub, Member
from .core.message import (
    Agent,
    AgentStatus,
    Credentials,
    Identity,
    Incoming,
    Message,
    Parsed,
    Presence,
    RateDecision,
    Typing,
)
from .core.settings import Settings
from .core.store import MemoryStore, SQLiteStore, Store
from .core.transport import BaseTransport, Health, Transport, TransportSettings

__all__ = [
    "Agent",
    "AgentStatus",
    "AuthError",
    "BaseTransport",
    "ChatbusError",
    "ConfigError",
    "Credentials",
    "Health",
    "Hub",
    "Identity",
    "Incoming",
    "InvalidMessage",
    "Member",
    "MemoryStore",
    "Message",
    "MessageTooLarge",
    "Parsed",
    "PluginError",
    "Presence",
    "RateDecision",
    "RateLimited",
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
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chatbus")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = _version()
