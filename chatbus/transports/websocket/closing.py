"""How the WebSocket transport closes its clients when chatbus stops or restarts.

Stopping goes in steps so that nothing the chat accepted is lost: the
transport first takes no new connection or message
(:meth:`~chatbus.transports.websocket.WebSocketTransport.stop_accepting`),
the hub then delivers what it accepted, and only then is every connection
closed, each after the messages written to it. PROTOCOL.md has no frame
that announces a restart, so the close itself says it: 1012 (service
restart) with the reason ``service restart; reconnect in N s``, where N
is the base of the client's backoff. A stop that is not a restart closes
with 1001 (going away).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from websockets.asyncio.server import Server
from websockets.frames import CloseCode

from .broadcast import Broadcaster
from .connection import ChatConnection

__all__ = ["Closing", "close_all"]

log = logging.getLogger("chatbus.transports.websocket")


@dataclass(frozen=True, slots=True)
class Closing:
    """How the clients are told the chat is stopping: the close code and reason,
    and the error text a message gets while the last ones are delivered."""

    code: int
    reason: str
    refusal: str

    @classmethod
    def after(cls, restart_in: float | None) -> Closing:
        """A restart when ``restart_in`` (seconds until clients should reconnect) is given, else a stop."""
        if restart_in is None:
            return cls(
                CloseCode.GOING_AWAY,
                "chatbus is stopping",
                "The chat server is stopping and did not take this message; send it again when it is back.",
            )
        return cls(
            CloseCode.SERVICE_RESTART,
            f"service restart; reconnect in {restart_in:g} s",  # far below the 123 bytes a close allows
            "The chat server is restarting and did not take this message; "
            f"send it again once reconnected, in about {restart_in:g} s.",
        )


async def close_all(server: Server, fan_out: Broadcaster, last_id: int, closing: Closing, timeout: float) -> int:
    """Close every connection of ``server`` with ``closing``'s code and reason,
    once the messages up to ``last_id`` are written to them; how many were closed.

    Each waits at most ``timeout`` seconds: a message that is still not handed
    out is found by ``lastSeenId`` after the reconnect, and a client that does
    not read its close frame is dropped (the frames queued before it would
    keep the close waiting).
    """
    if fan_out.live and last_id > fan_out.last_delivered:
        await fan_out.delivered_through(last_id)
    fan_out.live.clear()
    connections = [c for c in server.connections if isinstance(c, ChatConnection)]
    await asyncio.gather(*(c.close_within(closing.code, closing.reason, timeout) for c in connections))
    try:
        async with asyncio.timeout(timeout + 1):
            await server.wait_closed()
    except TimeoutError:
        log.warning("some connections did not finish closing within %g s", timeout + 1)
    await fan_out.aclose()
    return len(connections)
