"""Settings of the WebSocket transport: the ``websocket`` section.

Every field can be set in ``chatbus.toml`` under ``[websocket]`` or in the
environment as ``CHATBUS_WEBSOCKET__<FIELD>`` (``CHATBUS_WEBSOCKET__PORT=9000``);
the earlier ``WEBSOCKET_HOST``/``WEBSOCKET_PORT`` names still work. The
longest message text is the hub-wide ``max_text_length`` setting.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from typing import Any, Literal

from pydantic import Field, field_validator

from chatbus.core.settings import split_names
from chatbus.core.transport import TransportSettings

__all__ = ["WebSocketSettings"]

_OFF = {"", "none", "off", "null", "false", "0"}
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


class WebSocketSettings(TransportSettings):
    """Address, limits and browser origins of the WebSocket transport."""

    host: str = Field("127.0.0.1", min_length=1, description="address to listen on")
    port: int = Field(8081, ge=0, le=65535, description="TCP port; 0 picks a free one")
    allowed_origins: list[str] = Field(
        default_factory=list,
        description=(
            "browser origins (scheme://host[:port]) allowed to open chat connections besides the "
            "page's own origin and clients that send no Origin; '*' allows any"
        ),
    )
    max_frame_bytes: int = Field(64 * 1024, ge=256, description="largest frame a client may send (close 1009 above)")
    auth_timeout: float = Field(10.0, gt=0, description="seconds a new connection has to authenticate (close 1008)")
    ping_interval: float | None = Field(20.0, gt=0, description="seconds between keepalive pings; none disables")
    ping_timeout: float | None = Field(20.0, gt=0, description="seconds to wait for a pong before closing")
    close_timeout: float = Field(5.0, gt=0, description="seconds to wait for a clean close before dropping")
    max_connections: int = Field(1000, ge=1, description="open connections at most (close 1013 beyond)")
    max_backlog_bytes: int = Field(
        1024 * 1024, ge=1024, description="unsent bytes a client may fall behind by before it is cut off (close 1013)"
    )
    replay_limit: int = Field(500, ge=1, le=100_000, description="most frames returned in auth_response.missed")
    replay_max_bytes: int = Field(
        512 * 1024,
        ge=16 * 1024,
        description="largest total size of the frames in auth_response.missed or a history answer; the oldest are left out",
    )
    compression: Literal["deflate"] | None = Field(None, description="'deflate' (permessage-deflate) or none")
    presence_limit: int = Field(
        250,
        ge=0,
        description=(
            "while more people than this are connected, their arrivals and departures are not broadcast one by "
            "one and auth_response.users lists only this many of them (agents always); agents lists everyone"
        ),
    )
    typing_interval: float = Field(
        1.0, ge=0, description="least seconds between two relayed typing frames of a connection"
    )

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        """Accept ``a,b``, a JSON list, or a list (environment variables are strings)."""
        return split_names(value)

    @field_validator("allowed_origins")
    @classmethod
    def _strip_slash(cls, value: list[str]) -> list[str]:
        return [origin.rstrip("/") for origin in value]

    @field_validator("ping_interval", "ping_timeout", "compression", mode="before")
    @classmethod
    def _off(cls, value: Any) -> Any:
        """``none``/``off``/``0`` switch keepalive or compression off."""
        if isinstance(value, str) and value.strip().lower() in _OFF:
            return None
        if value == 0:
            return None
        return value

    def listens_publicly(self) -> bool:
        """True when ``host`` is not loopback (anyone on the network can connect)."""
        host = self.host.strip("[]")
        if host.lower() in _LOOPBACK_NAMES:
            return False
        try:
            return not ipaddress.ip_address(host).is_loopback
        except ValueError:
            return True  # a host name or a wildcard: assume it can be reached from outside

    def bind_failure(self, exc: OSError) -> str:
        """Why ``host`` and ``port`` could not be listened on, and which setting to change."""
        host, port = self.host, self.port
        if exc.errno == errno.EADDRINUSE:
            return (
                f"port {port} on {host} is already in use; stop the program using it "
                "or choose another port with --port (CHATBUS_WEBSOCKET__PORT)"
            )
        reason = "unknown address"
        if exc.errno and not isinstance(exc, socket.gaierror):
            reason = os.strerror(exc.errno).lower()
        return f"cannot listen on {host}:{port} ({reason}); choose another address with --host and --port"
