"""A real ``chatbus serve`` process: SIGTERM closes clients with 1012 (service restart), exits 0, and loses nothing."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from .helpers import Client

LISTENING = re.compile(r"listening on ws://127\.0\.0\.1:(\d+)/")


class Process:
    """A ``chatbus serve`` subprocess and the port it reported."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int, log: list[str]) -> None:
        self.proc = proc
        self.port = port
        self.log = log

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), 20)


@asynccontextmanager
async def chatbus_serve(db: Path) -> AsyncIterator[Process]:
    """Run ``python -m chatbus.cli serve`` on a free port with ``db`` as its store."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chatbus.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--db",
        str(db),
        "--transport",
        "websocket",
        "--log-level",
        "INFO",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stderr is not None
    log: list[str] = []
    try:
        async with asyncio.timeout(20):
            while True:
                line = (await proc.stderr.readline()).decode()
                assert line, "chatbus serve exited before listening:\n" + "".join(log)
                log.append(line)
                match = LISTENING.search(line)
                if match:
                    break

        async def keep_reading() -> None:
            assert proc.stderr is not None
            async for raw in proc.stderr:
                log.append(raw.decode())

        reader = asyncio.create_task(keep_reading())
        yield Process(proc, int(match.group(1)), log)
        await asyncio.wait_for(reader, 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_sigterm_closes_with_1012_and_a_restart_returns_everything(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    sent: list[tuple[int, str, str]] = []
    async with chatbus_serve(db) as server:
        alice, bob = await Client.open(server.url), await Client.open(server.url)
        await alice.sign_in("alice")
        await bob.sign_in("bob")
        for i in range(3):
            await alice.say(f"alice {i}")
            await bob.say(f"bob {i}")
        # Acknowledged: each client has seen the echo of all six.
        frames = await alice.chat(6)
        await bob.chat(6)
        sent = [(f["data"]["id"], f["data"]["sender"], f["data"]["text"]) for f in frames]
        status = await server.terminate()
        for client in (alice, bob):
            code, _ = await client.closed()
            assert code == 1012
        assert status == 0, "".join(server.log)
    assert [s[0] for s in sent] == [1, 2, 3, 4, 5, 6]

    async with chatbus_serve(db) as server:
        everything = await Client.open(server.url)
        auth = await everything.sign_in("carol", lastSeenId=0)
        assert [(f["data"]["id"], f["data"]["sender"], f["data"]["text"]) for f in auth["missed"]] == sent
        partly = await Client.open(server.url)
        auth = await partly.sign_in("alice", lastSeenId=3)
        assert [f["data"]["id"] for f in auth["missed"]] == [4, 5, 6]
        # Numbering continues after the restart.
        await partly.say("after the restart")
        [frame] = await everything.chat(1)
        assert frame["data"]["id"] == 7
        await everything.close()
        await partly.close()
        assert await server.terminate() == 0
