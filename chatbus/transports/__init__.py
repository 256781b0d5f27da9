"""Transports that ship with chatbus, each registered by entry point.

The core never imports this package: the hub finds a transport by its name
in the ``chatbus.transports`` entry-point group (``websocket`` is
:class:`chatbus.transports.websocket.WebSocketTransport`).
"""

from __future__ import annotations

__all__: list[str] = []
