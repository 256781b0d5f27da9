"""Starting and stopping a hub's transports, each failure contained and said in words."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .errors import ChatbusError, TransportError
from .loader import describe_error
from .transport import Draining, Transport

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["start_all", "stop_accepting", "stop_all"]

log = logging.getLogger("chatbus.hub")


async def start_all(hub: Hub, transports: Iterable[Transport]) -> None:
    """Start each transport; when one cannot start, stop those that did."""
    started: list[Transport] = []
    for transport in transports:
        try:
            await transport.start(hub)
        except BaseException as exc:
            await stop_all(started)
            if isinstance(exc, ChatbusError) or not isinstance(exc, Exception):
                raise
            reason = exc.strerror or exc if isinstance(exc, OSError) else describe_error(exc)
            raise TransportError(f"transport {transport.name!r} could not start: {reason}") from exc
        started.append(transport)


async def stop_all(transports: Iterable[Transport]) -> None:
    for transport in transports:
        try:
            await transport.stop()
        except Exception:
            log.exception("transport %r failed to stop cleanly", transport.name)


async def stop_accepting(transports: Iterable[Transport], restart_in: float | None) -> None:
    """The first step of a stop, for the transports that take it (:class:`~.transport.Draining`)."""
    for transport in transports:
        if not isinstance(transport, Draining):
            continue
        try:
            await transport.stop_accepting(restart_in=restart_in)
        except Exception:
            log.exception("transport %r failed to stop accepting cleanly", transport.name)
