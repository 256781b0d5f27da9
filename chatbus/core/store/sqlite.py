"""The default store: one SQLite file in WAL mode, with a versioned schema.

All database work runs on one thread of its own, so the event loop never
waits on disk; appends are committed in batches (every append that arrives
while a commit is running goes into the next one), so throughput does not
cost one commit per message.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..errors import StoreError
from ..message import DEFAULT_ROOM, Agent, Message, utcnow
from .base import Store
from .schema import (
    AGENT_COLUMNS,
    CHANGE_COLUMNS,
    MESSAGE_COLUMNS,
    MESSAGE_PLACEHOLDERS,
    MIGRATIONS,
    agent_row,
    change_row,
    epoch_of,
    group_reactions,
    message_row,
    row_agent,
    row_message,
)
from .sqlite_files import SQLiteFiles, link_rows, read_attachments

__all__ = ["MIGRATIONS", "SQLiteStore"]

log = logging.getLogger("chatbus.store")

#: How each kind of work on the database thread is named in the metrics.
_OPERATIONS = {
    "_write_messages": "append",
    "_query": "read",
    "_read": "read",
    "_replace": "change",
    "_react": "react",
    "_execute": "write",
    "_connect": "open",
    "_close_db": "close",
    "_files_read": "read",
    "_files_write": "write",
    "_touch": "write",
    "_remove_file": "write",
}

T = TypeVar("T")

#: How long a statement waits for another program's lock on the file, and how
#: long the readiness check waits (it must answer within ``/readyz``'s 2 s).
_BUSY_MS = 5000
_PING_BUSY_MS = 1000


def _fail(batch: list[tuple[Message, asyncio.Future[None]]], exc: BaseException) -> None:
    log.error("could not store %d message(s): %s", len(batch), exc)
    error = StoreError("the message could not be stored; try again")
    for _, future in batch:
        if not future.done():
            future.set_exception(error)


def _succeed(batch: list[tuple[Message, asyncio.Future[None]]]) -> None:
    for _, future in batch:
        if not future.done():
            future.set_result(None)


class SQLiteStore(SQLiteFiles, Store):
    """The default store: a SQLite file in WAL mode, worked on by one thread."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL", create: bool = True) -> None:
        super().__init__()
        self.path = str(path)
        self._create = create
        self._synchronous = synchronous
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[Message, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._thread_id: int | None = None
        #: (device, inode) of the file opened, to notice it removed or replaced under us.
        self._file_id: tuple[int, int] | None = None
        #: Each room's newest id: read once (``_rooms_read``), then kept by each commit (every sign-in asks).
        self._rooms: dict[str, int] = {}
        self._rooms_read = False

    # plumbing ------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise StoreError("the message store is not open")
        loop = asyncio.get_running_loop()
        observe = self.observe
        if observe is None:
            return await loop.run_in_executor(self._executor, fn, *args)
        started = time.perf_counter()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        finally:
            observe(_OPERATIONS.get(fn.__name__, fn.__name__.strip("_")), time.perf_counter() - started)

    async def ping(self) -> None:
        """Answer only when chatbus could write now: the file it opened is still
        the one at its path, and the write lock can be taken (another program's
        transaction holds it); the lock is let go at once, nothing is written."""
        try:
            await self._run(self._ping)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot write the database {self.path} now: {_sqlite_reason(exc)}") from exc

    def _ping(self) -> None:
        if self._file_id is not None:
            try:
                found = Path(self.path).expanduser().stat()
            except FileNotFoundError:
                found = None
            if found is None or (found.st_dev, found.st_ino) != self._file_id:
                raise StoreError(
                    f"the database file {self.path} was removed or replaced while chatbus ran; "
                    "what is stored now would be lost: restart chatbus"
                )
        db = self._conn()
        db.execute(f"PRAGMA busy_timeout={_PING_BUSY_MS}")
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
        finally:
            db.execute(f"PRAGMA busy_timeout={_BUSY_MS}")

    def _conn(self) -> sqlite3.Connection:
        assert self._db is not None
        return self._db

    def _connect(self) -> int:
        self._thread_id = threading.get_ident()
        if self.path != ":memory:":
            self._check_path(Path(self.path).expanduser())
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            db.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"the database {self.path} was written by a newer chatbus "
                    f"(schema {version}); upgrade chatbus or use another --db"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")
                log.info("database %s migrated to schema %d", self.path, number)
            last = db.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0]
            self._epoch = epoch_of(db)
        except BaseException:
            db.close()
            raise
        self._db = db
        if self.path != ":memory:":
            opened = Path(self.path).expanduser().stat()
            self._file_id = (opened.st_dev, opened.st_ino)
        return int(last)

    def _check_path(self, path: Path) -> None:
        """Never create folders, and create the file only when asked to."""
        folder = path.parent
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist (chatbus creates no folders)"
            raise StoreError(f"cannot open the database {path}: {folder} {what}; create it, or choose another --db")
        if not self._create and not path.exists():
            raise StoreError(
                f"there is no database at {path}; check --db (or the db setting), or create it: chatbus serve does, and so does chatbus agents hire --create"
            )

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatbus-store")
        try:
            self._last_id = await self._run(self._connect)
        except StoreError:
            self._shutdown_executor()
            raise
        except (sqlite3.Error, OSError) as exc:
            self._shutdown_executor()
            raise StoreError(
                f"cannot open the database {self.path}: {_sqlite_reason(exc)}; "
                "check the path and its permissions, or choose another with --db"
            ) from exc

    def _shutdown_executor(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        await self._run(self._close_db)
        self._shutdown_executor()

    def _close_db(self) -> None:
        if self._db is not None:
            try:
                # Only an optimisation: another program holding the file's lock
                # must not turn a clean stop into a traceback and a failed exit.
                self._db.execute(f"PRAGMA busy_timeout={_PING_BUSY_MS}")
                self._db.execute("PRAGMA optimize")
            except sqlite3.Error as exc:
                log.warning("database %s: skipped optimizing it on close: %s", self.path, _sqlite_reason(exc))
            finally:
                self._db.close()
                self._db = None

    # messages ------------------------------------------------------------
    def append(self, message: Message) -> asyncio.Future[None]:  # type: ignore[override]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((message, future))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush(), name="chatbus-store-flush")
        return future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    messages = [m for m, _ in batch]
                    await self._run(self._write_messages, [message_row(m) for m in messages], link_rows(messages))
                except Exception as exc:  # noqa: BLE001 - each message is tried alone below
                    if len(batch) == 1:
                        _fail(batch, exc)
                    else:
                        # One bad message must not cost the others their commit.
                        for one in batch:
                            await self._write_alone(one)
                else:
                    self._active(batch)
        finally:
            self._flusher = None

    def _active(self, stored: list[tuple[Message, asyncio.Future[None]]]) -> None:
        for message, _ in stored:
            self._rooms[message.room] = max(message.id, self._rooms.get(message.room, 0))
        _succeed(stored)

    async def _write_alone(self, entry: tuple[Message, asyncio.Future[None]]) -> None:
        try:
            await self._run(self._write_messages, [message_row(entry[0])], link_rows([entry[0]]))
        except Exception as exc:  # noqa: BLE001 - reported to its sender
            _fail([entry], exc)
        else:
            self._active([entry])

    def _write_messages(self, rows: list[tuple[Any, ...]], links: list[tuple[int, int, str]]) -> None:
        db = self._conn()
        db.execute("BEGIN")
        try:
            db.executemany(f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ({MESSAGE_PLACEHOLDERS})", rows)
            if links:
                db.executemany("INSERT INTO message_files (message_id, position, file_id) VALUES (?,?,?)", links)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _query(self, sql: str, params: Iterable[Any]) -> list[tuple[Any, ...]]:
        return self._conn().execute(sql, tuple(params)).fetchall()

    def _execute(self, sql: str, params: Iterable[Any]) -> int:
        return self._conn().execute(sql, tuple(params)).rowcount

    def _read(self, sql: str, params: Iterable[Any]) -> list[Message]:
        """Messages of a query over :data:`MESSAGE_COLUMNS`, with their reactions."""
        db = self._conn()
        rows = db.execute(sql, tuple(params)).fetchall()
        if not rows:
            return []
        ids = [row[0] for row in rows]
        marks = ",".join("?" * len(ids))
        found = db.execute(
            f"SELECT message_id, emoji, user_id FROM reactions WHERE message_id IN ({marks}) ORDER BY at, rowid", ids
        ).fetchall()
        reactions = group_reactions(found)
        files = read_attachments(db, ids)
        return [row_message(row, reactions.get(row[0], ()), files.get(row[0], ())) for row in rows]

    async def get(self, message_id: int) -> Message | None:
        found = await self._run(self._read, f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,))
        return found[0] if found else None

    async def since(self, after_id: int, limit: int, room: str | None = None) -> list[Message]:
        if room is None:
            sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id > ? ORDER BY id LIMIT ?"
            params: tuple[Any, ...] = (after_id, limit)
        else:
            sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE room = ? AND id > ? ORDER BY id LIMIT ?"
            params = (room, after_id, limit)
        return await self._run(self._read, sql, params)

    async def before(
        self, before_id: int | None, limit: int, room: str | None = DEFAULT_ROOM
    ) -> tuple[list[Message], bool]:
        upper = before_id if before_id is not None else self._last_id + 1
        if room is None:
            sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id < ? ORDER BY id DESC LIMIT ?"
            params: tuple[Any, ...] = (upper, limit + 1)
        else:
            sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE room = ? AND id < ? ORDER BY id DESC LIMIT ?"
            params = (room, upper, limit + 1)
        found = await self._run(self._read, sql, params)
        has_more = len(found) > limit
        return list(reversed(found[:limit])), has_more

    async def rooms(self) -> list[str]:
        if not self._rooms_read:  # a scan of every message: 0.1 s a sign-in at a million of them
            for room, newest in await self._run(self._query, "SELECT room, MAX(id) FROM messages GROUP BY room", ()):
                self._rooms[room] = max(newest, self._rooms.get(room, 0))
            self._rooms_read = True
        return sorted(self._rooms, key=self._rooms.__getitem__, reverse=True)

    # changes -------------------------------------------------------------
    async def replace(self, message: Message, previous: Message) -> None:
        await self._run(self._replace, message, previous)

    def _replace(self, message: Message, previous: Message) -> None:
        db = self._conn()
        db.execute("BEGIN")
        try:
            if not previous.streaming and message.text != previous.text:
                when = message.deleted_at or message.edited_at
                db.execute(
                    "INSERT INTO message_versions (message_id, number, text, replaced_at, replaced_by) VALUES "
                    "(?, (SELECT COALESCE(MAX(number), 0) + 1 FROM message_versions WHERE message_id = ?), ?, ?, ?)",
                    (previous.id, previous.id, previous.text, when.isoformat() if when else "", message.edited_by),
                )
            sets = ", ".join(f"{column} = ?" for column in CHANGE_COLUMNS)
            db.execute(f"UPDATE messages SET {sets} WHERE id = ?", (*change_row(message), message.id))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    async def react(
        self, message_id: int, emoji: str, user_id: str, on: bool
    ) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return await self._run(self._react, message_id, emoji, user_id, on)

    def _react(self, message_id: int, emoji: str, user_id: str, on: bool) -> tuple[tuple[str, tuple[str, ...]], ...]:
        db = self._conn()
        if on:
            db.execute(
                "INSERT OR IGNORE INTO reactions (message_id, emoji, user_id, at) VALUES (?, ?, ?, ?)",
                (message_id, emoji, user_id, utcnow().isoformat()),
            )
        else:
            db.execute(
                "DELETE FROM reactions WHERE message_id = ? AND emoji = ? AND user_id = ?", (message_id, emoji, user_id)
            )
        rows = db.execute(
            "SELECT message_id, emoji, user_id FROM reactions WHERE message_id = ? ORDER BY at, rowid", (message_id,)
        ).fetchall()
        return group_reactions(rows).get(message_id, ())

    async def versions(self, message_id: int) -> list[str]:
        rows = await self._run(
            self._query, "SELECT text FROM message_versions WHERE message_id = ? ORDER BY number", (message_id,)
        )
        return [row[0] for row in rows]

    # roster --------------------------------------------------------------
    async def list_agents(self) -> list[Agent]:
        rows = await self._run(self._query, f"SELECT {AGENT_COLUMNS} FROM agents ORDER BY name", ())
        return [row_agent(row) for row in rows]

    async def get_agent(self, name: str) -> Agent | None:
        rows = await self._run(
            self._query,
            f"SELECT {AGENT_COLUMNS} FROM agents WHERE name = ?",
            (name,),
        )
        return row_agent(rows[0]) if rows else None

    async def save_agent(self, agent: Agent) -> None:
        await self._run(
            self._execute,
            f"INSERT OR REPLACE INTO agents ({AGENT_COLUMNS}) VALUES ({','.join('?' * len(AGENT_COLUMNS.split(',')))})",
            agent_row(agent),
        )

    async def remove_agent(self, name: str) -> bool:
        return bool(await self._run(self._execute, "DELETE FROM agents WHERE name = ?", (name,)))

    # id maps ---------------------------------------------------------------
    async def map_external(self, transport: str, hub_id: int, external_id: str) -> None:
        await self._run(
            self._execute,
            "INSERT OR REPLACE INTO external_ids (transport, external_id, hub_id) VALUES (?,?,?)",
            (transport, external_id, hub_id),
        )

    async def hub_id_for(self, transport: str, external_id: str) -> int | None:
        rows = await self._run(
            self._query,
            "SELECT hub_id FROM external_ids WHERE transport = ? AND external_id = ?",
            (transport, external_id),
        )
        return int(rows[0][0]) if rows else None

    async def external_ids_for(self, transport: str, hub_id: int) -> list[str]:
        rows = await self._run(
            self._query,
            "SELECT external_id FROM external_ids WHERE transport = ? AND hub_id = ? ORDER BY rowid",
            (transport, hub_id),
        )
        return [row[0] for row in rows]

    # state -----------------------------------------------------------------
    async def get_state(self, key: str) -> str | None:
        rows = await self._run(self._query, "SELECT value FROM state WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    async def set_state(self, key: str, value: str | None) -> None:
        if value is None:
            await self._run(self._execute, "DELETE FROM state WHERE key = ?", (key,))
        else:
            await self._run(self._execute, "INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, value))


def _sqlite_reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__
