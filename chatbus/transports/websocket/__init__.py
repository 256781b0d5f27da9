"""The WebSocket transport: the protocol of PROTOCOL.md, the web page and health on one port.

Registered by entry point as ``websocket``. The frame builders in
:mod:`chatbus.transports.websocket.wire` are public so that other code that
talks to WebSocket clients sends exactly the same frames.
"""

from __future__ import annotations

from .connection import ChatConnection
from .server import WebSocketTransport
from .settings import WebSocketSettings
from .wire import (
    ERROR_CODES,
    ProtocolViolation,
    decode_frame,
    encode,
    error_frame,
    event_frame,
    history_frame,
    message_frame,
)

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
