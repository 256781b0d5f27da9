"""A chatbus transport for the terminal that runs the server.

Each line typed is a message from the configured user; every message in the
chat is printed as ``[HH:MM:SS] sender: text``.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import IO, Any

from chatbus import BaseTransport, ChatbusError, Credentials, Identity, Message, TransportSettings

__all__ = ["ConsoleSettings", "ConsoleTransport"]


class ConsoleSettings(TransportSettings):
    """The ``[console]`` section of the chatbus settings."""

    user: str = "console"
    role: str = "user"
    room: str = "general"


class ConsoleTransport(BaseTransport):
    """Lines typed on stdin become messages; deliveries are printed on stdout."""

    name = "console"
    settings_model = ConsoleSettings
    settings: ConsoleSettings

    def __init__(
        self,
        settings: ConsoleSettings | dict[str, Any] | None = None,
        *,
        stdin: IO[str] | None = None,
        stdout: IO[str] | None = None,
    ) -> None:
        super().__init__(settings)
        self._stdin = stdin if stdin is not None else sys.stdin
        self._stdout = stdout if stdout is not None else sys.stdout
        self._identity: Identity | None = None
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None

    async def start(self, hub: Any) -> None:
        await super().start(hub)
        self._identity = await hub.authenticate(
            Credentials(
                user_id=self.settings.user,
                role=self.settings.role,
                transport=self.name,
                extra={"verified": True},  # the person at the server's own terminal
            )
        )
        await hub.connect(self._identity, self.name)
        loop = asyncio.get_running_loop()
        # A daemon thread: a blocking readline must never keep the server from exiting.
        threading.Thread(target=self._read_lines, args=(loop,), name="chatbus-console-stdin", daemon=True).start()
        self._pump = loop.create_task(self._send_lines())
        self._print(f"* you are {self._identity.user_id}; type a message and press Enter")

    def _read_lines(self, loop: asyncio.AbstractEventLoop) -> None:
        for line in self._stdin:
            loop.call_soon_threadsafe(self._lines.put_nowait, line.rstrip("\n"))
        loop.call_soon_threadsafe(self._lines.put_nowait, None)

    async def _send_lines(self) -> None:
        while (line := await self._lines.get()) is not None:
            if not line.strip() or self.hub is None or self._identity is None:
                continue
            try:
                await self.hub.receive(self._identity, line, room=self.settings.room, transport=self.name)
            except ChatbusError as refused:
                self._print(f"! {refused}")

    async def stop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
            self._pump = None
        if self.hub is not None and self._identity is not None:
            await self.hub.disconnect(self._identity, self.name)
        await super().stop()

    async def deliver(self, message: Message) -> None:
        self._print(f"[{message.timestamp:%H:%M:%S}] {message.sender}: {message.text}")

    def _print(self, line: str) -> None:
        self._stdout.write(line + "\n")
        self._stdout.flush()
