"""The WebSocket transport: the protocol of PROTOCOL.md, the web page and health on one port.

Registered by entry point as ``websocket``. The frame builders of
:mod:`chatbus.transports.websocket.frames` and the frame readers of
:mod:`chatbus.transports.websocket.wire` are public, so that other code that
talks to WebSocket clients sends and reads exactly the same frames.

Where things are: ``server.py`` runs the transport (listening, each
connection's frames, signing in); ``broadcast.py`` writes deliveries to every
connection; ``resume.py`` finds what a client signing in again missed;
``connection.py`` is the connection class and everything that
reaches into websockets' internals; ``wire.py`` reads client frames;
``frames.py`` builds server frames; ``http.py`` answers plain HTTP;
``tls.py`` builds the TLS context of ``certfile``/``keyfile``; ``proxies.py``
finds a client's address behind a trusted reverse proxy.
"""

from __future__ import annotations

from .connection import ChatConnection
from .frames import encode, error_frame, event_frame, history_frame, message_frame
from .server import WebSocketTransport
from .settings import WebSocketSettings
from .wire import ERROR_CODES, ProtocolViolation, decode_frame

__all__ = [
    "ERROR_CODES",
    "ChatConnection",
    "ProtocolViolation",
    "WebSocketSettings",
    "WebSocketTransport",
    "decode_frame",
    "encode",
    "error_frame",
    "event_frame",
    "history_frame",
    "message_frame",
]
