"""Starting a real chat server on loopback and talking to it with real clients.

Every wait has a timeout, so a broken server fails a test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Self

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from chatbus import Hub, MemoryStore, Settings, Store
from chatbus.testing import FakeClock
from chatbus.transports.websocket import WebSocketTransport

__all__ = [
    "NOISE",
    "Client",
    "Server",
    "http_get",
    "running",
    "wait_until",
    "warnings_about",
]

TIMEOUT = 5.0
#: Frames that may arrive at any time and that most tests do not look at.
NOISE = frozenset({"presence", "typing", "agent_status"})


@dataclass
class Server:
    """A running hub with one WebSocket transport on a free loopback port."""

    hub: Hub
    transport: WebSocketTransport

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.transport.port}/"

    @property
    def port(self) -> int:
        return self.transport.port

    async def client(self, user: str | None = None, **auth: Any) -> Client:
        """A connected client, signed in as ``user`` when given (its auth_response is in ``.auth``)."""
        client = await Client.open(self.url)
        if user is not None:
            await client.sign_in(user, **auth)
        return client


@asynccontextmanager
async def running(
    *,
    plugins: Iterable[object] = (),
    store: Store | None = None,
    clock: Callable[[], float] | None = None,
    settings: Settings | None = None,
    **options: Any,
) -> AsyncIterator[Server]:
    """Start a hub whose only transport is a WebSocketTransport on 127.0.0.1, port 0.

    ``options`` are WebSocket settings (``max_backlog_bytes=...``).
    """
    transport = WebSocketTransport({"host": "127.0.0.1", "port": 0, **options})
    hub = Hub(
        settings if settings is not None else Settings.isolated(db=":memory:"),
        store=store if store is not None else MemoryStore(),
        transports=[transport],
        plugins=plugins,
        load_entrypoints=False,
        clock=clock if clock is not None else FakeClock(),
    )
    async with asyncio.timeout(TIMEOUT):
        await hub.start()
    try:
        yield Server(hub, transport)
    finally:
        async with asyncio.timeout(15):
            await hub.stop()


class Client:
    """A real ``websockets`` client that speaks chatbus frames."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.auth: dict[str, Any] = {}
        self.received: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, url: str, **options: Any) -> Client:
        options.setdefault("open_timeout", TIMEOUT)
        options.setdefault("close_timeout", 2)
        return cls(await connect(url, **options))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close cleanly, reading (and dropping) frames still queued so the
        server's close frame behind them is seen at once."""

        async def drain() -> None:
            try:
                async for _ in self.ws:
                    pass
            except ConnectionClosed:
                pass

        async with asyncio.timeout(TIMEOUT):
            reader = asyncio.create_task(drain())
            await self.ws.close()
            await reader

    async def send(self, kind: str, data: dict[str, Any] | None = None) -> None:
        frame: dict[str, Any] = {"type": kind}
        if data is not None:
            frame["data"] = data
        await self.ws.send(json.dumps(frame))

    async def send_raw(self, payload: str | bytes) -> None:
        await self.ws.send(payload)

    async def say(self, text: str, **data: Any) -> None:
        await self.send("message", {"text": text, **data})

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        frame = json.loads(raw)
        assert isinstance(frame, dict) and isinstance(frame.get("type"), str), frame
        self.received.append(frame)
        return frame

    async def expect(self, kind: str, timeout: float = TIMEOUT, skip: frozenset[str] = NOISE) -> dict[str, Any]:
        """The ``data`` of the next frame of type ``kind``; frames of other
        types than ``skip`` fail the test."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if frame["type"] == kind:
                    return frame.get("data", {})
                assert frame["type"] in skip, f"expected {kind}, got {frame}"

    async def presence(self, user: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next ``presence`` frame about ``user`` (others are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                data = await self.expect("presence", timeout)
                if data["userId"] == user:
                    return data

    async def sign_in(self, user: str, **auth: Any) -> dict[str, Any]:
        await self.send("auth", {"userId": user, **auth})
        self.auth = await self.expect("auth_response")
        return self.auth

    async def chat(self, count: int, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """The next ``count`` chat messages (``message`` or ``agent_response`` frames), whole."""
        out: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while len(out) < count:
                frame = await self.recv(timeout)
                if frame["type"] in ("message", "agent_response"):
                    out.append(frame)
                else:
                    assert frame["type"] in NOISE, f"expected a chat message, got {frame}"
        return out

    async def error(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        return await self.expect("error", timeout)

    async def closed(self, timeout: float = TIMEOUT) -> tuple[int | None, str | None]:
        """Read until the server closes; the close code and reason it sent."""
        async with asyncio.timeout(timeout):
            try:
                while True:
                    await self.ws.recv()
            except ConnectionClosed:
                pass
        rcvd = self.ws.protocol.close_rcvd
        return (rcvd.code, rcvd.reason) if rcvd is not None else (None, None)

    async def still_works(self, room: str = "general") -> None:
        """A ping is still answered: the connection survived."""
        await self.send("ping")
        data = await self.expect("pong", skip=NOISE | {"message", "agent_response"})
        assert "timestamp" in data


async def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT, interval: float = 0.01) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(interval)


async def http_get(
    port: int, path: str, headers: dict[str, str] | None = None, *, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """A raw HTTP/1.1 request to 127.0.0.1: status, headers (lower-case names), body."""
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
            lines += [f"{key}: {value}" for key, value in (headers or {}).items()]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        parsed[key.strip().lower()] = value.strip()
    return int(status_line.split()[1]), parsed, body


def warnings_about(caplog: pytest.LogCaptureFixture, text: str = "") -> list[logging.LogRecord]:
    """WARNING records of the WebSocket transport whose message contains ``text``."""
    return [
        record
        for record in caplog.records
        if record.name == "chatbus.transports.websocket"
        and record.levelno == logging.WARNING
        and text in record.getMessage()
    ]
