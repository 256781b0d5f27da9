"""The message log, the agents' roster and transports' id maps.

:class:`SQLiteStore` (``sqlite.py``) is the default: one file, WAL mode, a
versioned schema, commits in batches on a thread of its own.
:class:`MemoryStore` (``memory.py``) keeps everything in memory for tests.
:class:`Store` (``base.py``) is what both promise the hub and plugins.

Ids are allocated by the store in memory (strictly increasing, never reused:
a restart continues after the highest stored id) and a message is handed to
transports only after ``append`` has returned, that is after it is committed.
"""

from __future__ import annotations

from .base import Page, Store
from .memory import MemoryStore
from .sqlite import MIGRATIONS, SQLiteStore

__all__ = ["MIGRATIONS", "MemoryStore", "Page", "SQLiteStore", "Store", "open_store"]


def open_store(db: str, *, create: bool = True) -> Store:
    """The store for a ``db`` setting: ``:memory:`` or a SQLite file path
    (``create=False``: a file that does not exist yet is an error)."""
    return MemoryStore() if db == ":memory:" else SQLiteStore(db, create=create)
