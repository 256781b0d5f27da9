"""One chat connection's frames, read in order until it closes.

The rules of reading live here: a connection that has not signed in within
``auth_timeout`` is closed (1008), a binary frame closes it (1003), and a
close the server chose because of what the client sent (a frame over
``max_frame_bytes``, a WebSocket protocol error, a keepalive timeout) is
logged once. Each text frame goes to the transport's answering function
before the next one is read, so a client's frames are handled in the order
it sent them.

No connection holds the event loop for long, however fast it sends: the
loop gets a turn between two of its frames (frames already received are
otherwise handled back to back, and everyone else waits), one socket read
takes at most :data:`READ_CHUNK` bytes (the library parses a whole read
before anything else runs), and the connection's
:class:`~chatbus.transports.websocket.guard.Throttle` says how long to wait
before reading the next frame, or closes it (1008) when it keeps sending
frames that are refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.protocol import State

from chatbus.core.logs import Repeats

from .connection import ChatConnection
from .guard import Guard, Outcome
from .settings import WebSocketSettings

__all__ = ["READ_CHUNK", "Answer", "converse", "log_close"]

log = logging.getLogger("chatbus.transports.websocket")

_OPEN = State.OPEN

#: Handles one text frame of a connection (its raw UTF-8 bytes) and says
#: what it turned out to be (:data:`~chatbus.transports.websocket.guard.Outcome`).
Answer = Callable[[ChatConnection, bytes], Awaitable[Outcome]]

#: Most bytes taken from one connection's socket in one read: a read full of
#: tiny frames costs about 10 µs a frame to parse, all before anyone else runs.
READ_CHUNK: Final = 4096


async def converse(
    connection: ChatConnection,
    settings: WebSocketSettings,
    answer: Answer,
    guard: Guard,
    clock: Callable[[], float],
) -> None:
    """Read frames in order and hand each to ``answer`` until the connection closes.

    ``guard`` took the connection and is told when it signs in; ``clock`` is
    the hub's, on which the connection's budgets are counted.
    """
    deadline = asyncio.get_running_loop().time() + settings.auth_timeout
    throttle = guard.throttle(connection, clock)
    connection.read_at_most(READ_CHUNK)
    signing_in = True
    while True:
        raw = await _receive(connection, settings, deadline, guard.repeats)
        if raw is None:
            return
        if connection.state is not _OPEN:
            # Closing: no answer can be sent any more, and frames left unread
            # would keep the client's close frame from being read.
            continue
        try:
            outcome = await answer(connection, raw)
        except ConnectionClosed:
            return  # closed while answering: nothing left to tell this client
        if signing_in and connection.identity is not None:
            signing_in = False
            guard.signed_in(connection)
        verdict = throttle.after(outcome)
        if verdict.close is not None:
            guard.repeats.warning(
                log, "closed, flooding", "session %s: closed (1008), %s", connection.who, verdict.close
            )
            await connection.close_within(CloseCode.POLICY_VIOLATION, verdict.close, settings.close_timeout)
            return
        if verdict.wait <= 0:
            await asyncio.sleep(0)  # the loop's turn: everyone else's frames and deliveries
            continue
        try:  # throttled: read nothing more for a while, unless it closes meanwhile
            async with asyncio.timeout(verdict.wait):
                await connection.wait_closed()
        except TimeoutError:
            pass


async def _receive(
    connection: ChatConnection, settings: WebSocketSettings, deadline: float, repeats: Repeats
) -> bytes | None:
    """The next text frame, or None once the connection is closed (closing it
    first when it did not sign in in time or sent a binary frame)."""
    try:
        if connection.identity is None:
            async with asyncio.timeout_at(deadline):
                raw = await connection.recv(decode=False)
        else:
            raw = await connection.recv(decode=False)
    except TimeoutError:
        repeats.warning(
            log,
            "closed, auth_timeout",
            "session %s: closed, not signed in within %g s (auth_timeout)",
            connection.who,
            settings.auth_timeout,
        )
        await connection.close_within(
            CloseCode.POLICY_VIOLATION,
            f"Send auth within {settings.auth_timeout:g} seconds of connecting.",
            settings.close_timeout,
        )
        return None
    except ConnectionClosed:
        log_close(connection, settings, repeats)
        return None
    if connection.next_is_binary():
        repeats.warning(log, "closed, binary", "session %s: closed, sent a binary frame", connection.who)
        await connection.close_within(
            CloseCode.UNSUPPORTED_DATA, "Binary frames are not supported; send JSON text.", settings.close_timeout
        )
        return None
    return raw


def log_close(connection: ChatConnection, settings: WebSocketSettings, repeats: Repeats | None = None) -> None:
    """Log closes the server chose because of what the client sent (through ``repeats`` when given)."""
    warning = repeats.warning if repeats is not None else _warning
    sent = connection.close_chosen()
    if sent is None or sent.code in (CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY):
        return  # the client closed (we only echoed its code), or a normal close
    if sent.code == CloseCode.MESSAGE_TOO_BIG:
        warning(
            log,
            "closed, 1009",
            "session %s: closed (1009), sent a frame over %d bytes (max_frame_bytes)",
            connection.who,
            settings.max_frame_bytes,
        )
    elif sent.code in (CloseCode.PROTOCOL_ERROR, CloseCode.INVALID_DATA, CloseCode.INTERNAL_ERROR):
        # WebSocket protocol errors and keepalive timeouts, closed by the library.
        reason = sent.reason or "no reason"
        warning(log, "closed, protocol", "session %s: closed (%d %s)", connection.who, sent.code, reason)


def _warning(logger: logging.Logger, kind: str, msg: str, *args: Any) -> None:
    logger.warning(msg, *args)
