"""One chat connection's frames, read in order until it closes.

The rules of reading live here: a connection that has not signed in within
``auth_timeout`` is closed (1008), a binary frame closes it (1003), and a
close the server chose because of what the client sent (a frame over
``max_frame_bytes``, a WebSocket protocol error, a keepalive timeout) is
logged once. Each text frame goes to the transport's answering function
before the next one is read, so a client's frames are handled in the order
it sent them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from .connection import ChatConnection
from .settings import WebSocketSettings

__all__ = ["Answer", "converse", "log_close"]

log = logging.getLogger("chatbus.transports.websocket")

#: Handles one text frame of a connection (its raw UTF-8 bytes).
Answer = Callable[[ChatConnection, bytes], Awaitable[None]]


async def converse(connection: ChatConnection, settings: WebSocketSettings, answer: Answer) -> None:
    """Read frames in order and hand each to ``answer`` until the connection closes."""
    deadline = asyncio.get_running_loop().time() + settings.auth_timeout
    while True:
        try:
            if connection.identity is None:
                async with asyncio.timeout_at(deadline):
                    raw = await connection.recv(decode=False)
            else:
                raw = await connection.recv(decode=False)
        except TimeoutError:
            log.warning(
                "session %s: closed, not signed in within %g s (auth_timeout)", connection.who, settings.auth_timeout
            )
            await connection.close_within(
                CloseCode.POLICY_VIOLATION,
                f"Send auth within {settings.auth_timeout:g} seconds of connecting.",
                settings.close_timeout,
            )
            return
        except ConnectionClosed:
            log_close(connection, settings)
            return
        if connection.next_is_binary():
            log.warning("session %s: closed, sent a binary frame", connection.who)
            await connection.close_within(
                CloseCode.UNSUPPORTED_DATA, "Binary frames are not supported; send JSON text.", settings.close_timeout
            )
            return
        try:
            await answer(connection, raw)
        except ConnectionClosed:
            return  # closed while answering: nothing left to tell this client


def log_close(connection: ChatConnection, settings: WebSocketSettings) -> None:
    """Log closes the server chose because of what the client sent."""
    sent = connection.close_chosen()
    if sent is None or sent.code in (CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY):
        return  # the client closed (we only echoed its code), or a normal close
    if sent.code == CloseCode.MESSAGE_TOO_BIG:
        log.warning(
            "session %s: closed (1009), sent a frame over %d bytes (max_frame_bytes)",
            connection.who,
            settings.max_frame_bytes,
        )
    elif sent.code in (CloseCode.PROTOCOL_ERROR, CloseCode.INVALID_DATA, CloseCode.INTERNAL_ERROR):
        # WebSocket protocol errors and keepalive timeouts, closed by the library.
        log.warning("session %s: closed (%d %s)", connection.who, sent.code, sent.reason or "no reason")
