"""Debian's redis-server, started by a test on a free loopback port and stopped after it.

Nothing is saved (``--save ''``, no AOF), so each server starts empty, unless
it is made with ``appendonly=True``: then every write goes to the append-only
file in its folder (``appendfsync everysec``, what chatbus's README asks of a
deployment), and a restart in the same folder finds everything again. Redis
takes no ``--port 0``: a port is picked free with a bound socket, and when
another program takes it before Redis binds it, Redis is started on another.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.support import free_port, require_program

REDIS_SERVER = Path("/usr/bin/redis-server")


def require_redis_server() -> None:
    """Skip without Debian's redis-server; in CI (``CI=true``, where .ci/run installs it) fail instead."""
    require_program(REDIS_SERVER, "redis-server")


class RedisServer:
    """One redis-server in the foreground, its files in ``folder``; ``url`` once started."""

    def __init__(self, folder: Path, *, appendonly: bool = False) -> None:
        require_redis_server()
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.appendonly = appendonly
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> Self:
        self.start()
        return self

    def start(self) -> None:
        """Start it, on the same port when it ran before (a restart), else on a free one."""
        for _ in range(3):
            port = self.port or free_port()
            if self._start(port):
                self.port = port
                return
            if self.port:
                break
        raise AssertionError(f"redis-server did not start:\n{self.errors()}")

    def _start(self, port: int) -> bool:
        log = self.folder / "redis.log"
        log.write_text("")
        self.process = subprocess.Popen(
            [str(REDIS_SERVER), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "everysec",
             "--dir", str(self.folder), "--logfile", str(log), "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self._answers(port):
            if self.process.poll() is not None:
                return False
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"redis-server did not answer PING within 10 s:\n{self.errors()}")
            time.sleep(0.02)
        return True

    @staticmethod
    def _answers(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    async def emptied(self) -> Self:
        """This server, running (started again if a test stopped it) and with nothing in it."""
        from redis import asyncio as aioredis

        if self.process is None:
            self.start()
        async with aioredis.Redis.from_url(self.url) as admin:
            await admin.flushall()
        return self

    def errors(self) -> str:
        log = self.folder / "redis.log"
        return log.read_text() if log.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Stop it at once, as a crash would (SIGKILL)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
