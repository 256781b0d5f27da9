"""Backing up the database while chatbus runs, and restoring it, as the README says.

The README's command is ``sqlite3 chatbus.db ".backup backup.db"``. Where the
sqlite3 program is missing, the test makes the copy with Python's
``sqlite3.Connection.backup``: the same online-backup API of SQLite that the
program's ``.backup`` uses.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from tests.support import ChatbusProcess

TIMEOUT = 10.0
LISTENING = re.compile(r"listening on ws://127\.0\.0\.1:(\d+)/")


def online_backup(database: Path, copy: Path) -> None:
    program = shutil.which("sqlite3")
    if program is not None:
        subprocess.run([program, str(database), f".backup {copy}"], check=True, timeout=30, capture_output=True)
        return
    with sqlite3.connect(database) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    source.close()
    target.close()


def chat(port: int, *texts: str, last_seen: int | None = None) -> dict[str, Any]:
    """Sign in as alice, say ``texts`` (each echoed back), and return the auth_response."""
    with connect(f"ws://127.0.0.1:{port}/", open_timeout=TIMEOUT) as ws:
        auth: dict[str, Any] = {"userId": "alice"}
        if last_seen is not None:
            auth["lastSeenId"] = last_seen
        ws.send(json.dumps({"type": "auth", "data": auth}))
        answer = _next(ws, "auth_response")
        for text in texts:
            ws.send(json.dumps({"type": "message", "data": {"text": text}}))
            while _next(ws, "message")["text"] != text:
                pass
        return answer


def _next(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        frame = json.loads(ws.recv(timeout=TIMEOUT))
        assert frame["type"] != "error", frame
        if frame["type"] == kind:
            return frame["data"]  # type: ignore[no-any-return]


def serve(folder: Path) -> tuple[ChatbusProcess, int]:
    server = ChatbusProcess("serve", "--port", "0", "--db", "chatbus.db", cwd=folder)
    match = LISTENING.search(server.stderr.wait_for("listening on", 30))
    assert match is not None
    return server, int(match.group(1))


def test_a_backup_taken_while_chatbus_runs_restores_what_was_said_before_it(tmp_path: Path) -> None:
    database, copy = tmp_path / "chatbus.db", tmp_path / "backup.db"
    server, port = serve(tmp_path)
    with server:
        chat(port, "first", "second", "third")
        online_backup(database, copy)
        chat(port, "after the backup")
        assert server.terminate() == 0
    with sqlite3.connect(copy) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    check.close()

    # Restore: chatbus stopped, the backup in place of the file (and no stale -wal or -shm beside it).
    for leftover in (database, database.with_name("chatbus.db-wal"), database.with_name("chatbus.db-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copy(copy, database)
    server, port = serve(tmp_path)
    with server:
        answer = chat(port, last_seen=0)
        assert [frame["data"]["text"] for frame in answer["missed"]] == ["first", "second", "third"]
        assert server.terminate() == 0
