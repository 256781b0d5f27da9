"""The message log, the agents' roster and transports' id maps.

:class:`SQLiteStore` (``sqlite.py``) is the default: one file, WAL mode, a
versioned schema, commits in batches on a thread of its own.
:class:`MemoryStore` (``memory.py``) keeps everything in memory for tests.
:class:`Store` (``base.py``) is what both promise the hub and plugins.
:func:`open_engine_store` gives the Redis engine's store
(:class:`~chatbus.core.engine.redis_store.RedisStore`) instead when ``[engine] url`` is set.

Ids are allocated by the store in memory (strictly increasing, never reused:
a restart continues after the highest stored id) and a message is handed to
transports only after ``append`` has returned, that is after it is committed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from .base import Page, Store
from .memory import MemoryStore
from .sqlite import MIGRATIONS, SQLiteStore

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["MIGRATIONS", "MemoryStore", "Page", "SQLiteStore", "Store", "open_engine_store", "open_store"]


def open_store(db: str, *, create: bool = True) -> Store:
    """The store for a ``db`` setting: ``:memory:`` or a SQLite file path
    (``create=False``: a file that does not exist yet is an error)."""
    return MemoryStore() if db == ":memory:" else SQLiteStore(db, create=create)


def open_engine_store(settings: Settings) -> Store:
    """The store ``settings`` name: the Redis engine's, shared by every node, when ``[engine] url``
    is set (``ConfigError`` when its client is not installed), else :func:`open_store` of ``db``."""
    engine, url = settings.engine, settings.engine.url
    if not url:
        return open_store(settings.db)
    try:
        from ..engine.redis import RedisEngine
        from ..engine.redis_store import RedisStore
    except ImportError as exc:
        raise ConfigError(f"the engine url {url} needs the Redis client: pip install 'chatbus[redis]'") from exc
    return RedisStore(RedisEngine(url, prefix=engine.prefix, max_length=engine.max_length))
