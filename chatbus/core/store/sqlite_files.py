"""The SQLite store's part for files: their metadata and the messages carrying them.

Tables ``files`` and ``message_files`` (schema 3). A message's links are
written in the same transaction as the message, so a committed message never
lacks its files' links and a sweep never removes a file a message carries.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..message import Attachment, Message

__all__ = ["FILE_COLUMNS", "SQLiteFiles", "link_rows", "read_attachments", "row_attachment"]

T = TypeVar("T")

FILE_COLUMNS = "id, name, size, content_type, width, height, uploader"


def row_attachment(row: Sequence[Any]) -> Attachment:
    return Attachment(row[0], row[1], int(row[2]), row[3], row[4], row[5], row[6])


def link_rows(messages: Sequence[Message]) -> list[tuple[int, int, str]]:
    """``(message_id, position, file_id)`` for every file of ``messages``."""
    return [(m.id, n, a.id) for m in messages for n, a in enumerate(m.attachments)]


def read_attachments(db: sqlite3.Connection, ids: Sequence[int]) -> dict[int, tuple[Attachment, ...]]:
    """The files of the messages ``ids``, in the order each was sent with them."""
    marks = ",".join("?" * len(ids))
    rows = db.execute(
        f"SELECT mf.message_id, f.id, f.name, f.size, f.content_type, f.width, f.height, f.uploader "
        f"FROM message_files mf JOIN files f ON f.id = mf.file_id "
        f"WHERE mf.message_id IN ({marks}) ORDER BY mf.message_id, mf.position",
        tuple(ids),
    ).fetchall()
    found: dict[int, list[Attachment]] = {}
    for row in rows:
        found.setdefault(row[0], []).append(row_attachment(row[1:]))
    return {mid: tuple(files) for mid, files in found.items()}


class SQLiteFiles:
    """Mixed into :class:`~chatbus.core.store.sqlite.SQLiteStore`: the file methods of ``Store``."""

    _run: Callable[..., Any]
    _conn: Callable[[], sqlite3.Connection]

    async def add_file(self, attachment: Attachment, uploaded_at: float) -> None:
        a = attachment
        await self._run(
            self._files_write,
            f"INSERT OR IGNORE INTO files ({FILE_COLUMNS}, uploaded_at) VALUES (?,?,?,?,?,?,?,?)",
            (a.id, a.name, a.size, a.content_type, a.width, a.height, a.uploader, uploaded_at),
        )

    async def get_file(self, file_id: str) -> Attachment | None:
        rows = await self._run(self._files_read, f"SELECT {FILE_COLUMNS} FROM files WHERE id = ?", (file_id,))
        return row_attachment(rows[0]) if rows else None

    async def touch_file(self, file_id: str, uploaded_at: float) -> Attachment | None:
        found: Attachment | None = await self._run(self._touch, file_id, uploaded_at)
        return found

    async def files_total(self) -> int:
        rows = await self._run(self._files_read, "SELECT COALESCE(SUM(size), 0) FROM files", ())
        return int(rows[0][0])

    async def orphan_files(self, uploaded_before: float, limit: int = 1000) -> list[Attachment]:
        rows = await self._run(
            self._files_read,
            f"SELECT {FILE_COLUMNS} FROM files WHERE uploaded_at < ? AND NOT EXISTS "
            "(SELECT 1 FROM message_files WHERE file_id = files.id) ORDER BY uploaded_at LIMIT ?",
            (uploaded_before, limit),
        )
        return [row_attachment(row) for row in rows]

    async def remove_file(self, file_id: str, *, unused_since: float | None) -> Attachment | None:
        found: Attachment | None = await self._run(self._remove_file, file_id, unused_since)
        return found

    async def message_file_ids(self, message_id: int) -> list[str]:
        rows = await self._run(
            self._files_read, "SELECT file_id FROM message_files WHERE message_id = ? ORDER BY position", (message_id,)
        )
        return [row[0] for row in rows]

    # on the store's thread --------------------------------------------------
    def _files_read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return self._conn().execute(sql, params).fetchall()

    def _files_write(self, sql: str, params: tuple[Any, ...]) -> None:
        self._conn().execute(sql, params)

    def _touch(self, file_id: str, uploaded_at: float) -> Attachment | None:
        db = self._conn()
        db.execute("UPDATE files SET uploaded_at = MAX(uploaded_at, ?) WHERE id = ?", (uploaded_at, file_id))
        row = db.execute(f"SELECT {FILE_COLUMNS} FROM files WHERE id = ?", (file_id,)).fetchone()
        return row_attachment(row) if row is not None else None

    def _remove_file(self, file_id: str, unused_since: float | None) -> Attachment | None:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            found = self._removable(db, file_id, unused_since)
            if found is not None:
                db.execute("DELETE FROM message_files WHERE file_id = ?", (file_id,))
                db.execute("DELETE FROM files WHERE id = ?", (file_id,))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return found

    @staticmethod
    def _removable(db: sqlite3.Connection, file_id: str, unused_since: float | None) -> Attachment | None:
        row = db.execute(f"SELECT {FILE_COLUMNS}, uploaded_at FROM files WHERE id = ?", (file_id,)).fetchone()
        if row is None:
            return None
        if unused_since is not None:
            if (
                row[7] >= unused_since
                or db.execute("SELECT 1 FROM message_files WHERE file_id = ? LIMIT 1", (file_id,)).fetchone()
            ):
                return None
        elif db.execute(
            "SELECT 1 FROM message_files mf JOIN messages m ON m.id = mf.message_id "
            "WHERE mf.file_id = ? AND m.deleted_at IS NULL LIMIT 1",
            (file_id,),
        ).fetchone():
            return None
        return row_attachment(row)
