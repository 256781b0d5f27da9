"""Engines: what several chatbus nodes share to be one chat (see :mod:`.base`).

:class:`EmbeddedEngine` is one node over the SQLite or memory store, as
chatbus runs by default. :class:`~.redis.RedisEngine` is many nodes over one
Redis (``[engine] url``, ``CHATBUS_ENGINE__URL=redis://HOST:PORT/DB``); it
needs the ``chatbus[redis]`` extra and is imported only when asked for.
:class:`~.duty.Duty` runs work on whichever node holds a lease.
The hub uses an engine through its store: a store that is ``shared``
(:class:`~.redis_store.RedisStore`) has one, and :mod:`~chatbus.core.cluster` runs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from .base import LISTENING, Engine, Gap, Lease, Missed, Reset
from .embedded import EmbeddedEngine

if TYPE_CHECKING:
    from ..settings import EngineSettings

__all__ = ["LISTENING", "EmbeddedEngine", "Engine", "Gap", "Lease", "Missed", "Reset", "redis_engine"]


def redis_engine(settings: EngineSettings) -> Engine:
    """The Redis engine ``settings`` name; ``ConfigError`` when its client is not installed."""
    if not settings.url:
        raise ConfigError("no engine url is set: [engine] url (CHATBUS_ENGINE__URL=redis://HOST:PORT/DB)")
    try:
        from .redis import RedisEngine
    except ImportError as exc:
        raise ConfigError(
            f"the engine url {settings.url} needs the Redis client: pip install 'chatbus[redis]'"
        ) from exc
    return RedisEngine(settings.url, prefix=settings.prefix, max_length=settings.max_length)
