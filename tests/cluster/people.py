"""People in a cluster's chat: real ``websockets`` clients speaking PROTOCOL.md.

Each person reads every frame as it comes, on a task of its own, so a test
can wait for what it expects on several nodes at once; every wait has a
timeout and says what did not come, with what came instead.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .nodes import Node

__all__ = ["TIMEOUT", "Person"]

TIMEOUT = 10.0
CHAT = ("message", "agent_response")
_numbers = itertools.count(1)


class Person:
    """One client signed in on one node; ``frames`` holds everything received since ``auth_response``."""

    def __init__(self, name: str, node: Node, ws: ClientConnection) -> None:
        self.name = name
        self.node = node
        self.ws = ws
        self.auth: dict[str, Any] = {}
        self.frames: list[dict[str, Any]] = []
        self.closed = False
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def join(cls, node: Node, name: str, **auth: Any) -> Person:
        """Connect to ``node`` and sign in as ``name`` (``lastSeenId=...``, ``epoch=...`` to resume)."""
        ws = await connect(node.url, open_timeout=TIMEOUT, close_timeout=2, max_size=2**24)
        person = cls(name, node, ws)
        await person.send("auth", {"userId": name, **auth})
        async with asyncio.timeout(TIMEOUT):
            while True:
                frame = json.loads(await ws.recv())
                if frame["type"] == "auth_response":
                    break
                assert frame["type"] in ("presence", "typing", "agent_status"), f"{name} got {frame} before signing in"
        person.auth = frame["data"]
        person._reader = asyncio.create_task(person._read(), name=f"reader of {name}")
        return person

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                async with self._changed:
                    self.frames.append(frame)
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            async with self._changed:
                self.closed = True
                self._changed.notify_all()

    async def leave(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, TIMEOUT)

    # sending -------------------------------------------------------------------
    async def send(self, kind: str, data: dict[str, Any] | None = None) -> None:
        frame: dict[str, Any] = {"type": kind}
        if data is not None:
            frame["data"] = data
        await self.ws.send(json.dumps(frame))

    async def say(self, text: str, client_id: str | None = None) -> str:
        """Send ``text`` without waiting; its client id, for finding the echo."""
        client_id = client_id or f"{self.name}-{next(_numbers)}"
        await self.send("message", {"text": text, "id": client_id})
        return client_id

    async def attempt(self, text: str, timeout: float = TIMEOUT) -> tuple[str, dict[str, Any]]:
        """Send ``text``; ``("sent", echo)`` once stored and echoed, or ``("refused", error)``."""
        errors_before = len(self.errors)
        client_id = await self.say(text)
        await self.until(
            lambda: self.echo(client_id) is not None or len(self.errors) > errors_before,
            f"the echo of {text!r} or an error",
            timeout,
        )
        echo = self.echo(client_id)
        return ("sent", echo) if echo is not None else ("refused", self.errors[errors_before])

    async def sent(self, text: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """Send ``text`` and return its echo (the message as stored, with its id)."""
        outcome, data = await self.attempt(text, timeout)
        assert outcome == "sent", f"{self.name} on node {self.node.name} could not send {text!r}: {data}"
        return data

    # what arrived --------------------------------------------------------------
    async def until(self, condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(condition)
        except TimeoutError:
            last = [f["type"] + ":" + json.dumps(f.get("data", {}))[:160] for f in self.frames[-8:]]
            raise AssertionError(
                f"{self.name} (node {self.node.name}) did not see {what} within {timeout:g} s; "
                f"connection {'closed' if self.closed else 'open'}; last frames: {last}"
            ) from None

    @property
    def close(self) -> tuple[int | None, str | None]:
        """The close code and reason the server sent (None, None while open or when it sent none)."""
        received = self.ws.protocol.close_rcvd
        return (received.code, received.reason) if received is not None else (None, None)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [frame.get("data", {}) for frame in self.frames if frame["type"] == kind]

    @property
    def chat(self) -> list[dict[str, Any]]:
        """Chat messages that arrived live, in arrival order."""
        return [frame["data"] for frame in self.frames if frame["type"] in CHAT]

    @property
    def missed(self) -> list[dict[str, Any]]:
        """The messages ``auth_response`` brought (those missed after ``lastSeenId``)."""
        return [frame["data"] for frame in self.auth.get("missed", [])]

    @property
    def seen(self) -> list[dict[str, Any]]:
        """Everything this connection showed: missed, then live."""
        return self.missed + self.chat

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.of_type("error")

    def echo(self, client_id: str) -> dict[str, Any] | None:
        return next((m for m in self.chat if m.get("clientId") == client_id and m["sender"] == self.name), None)

    def texts(self, prefix: str = "") -> list[str]:
        return [m["text"] for m in self.seen if m["text"].startswith(prefix)]

    def presence_of(self, user: str) -> list[str]:
        """The statuses ``presence`` frames gave for ``user``, in order."""
        return [p["status"] for p in self.of_type("presence") if p["userId"] == user]

    def online(self) -> set[str]:
        """Who ``auth_response`` said was online."""
        return {str(u) for u in self.auth.get("agents", [])}
