"""Settings of the WebSocket transport: the ``websocket`` section.

Every field can be set in ``chatbus.toml`` under ``[websocket]`` or in the
environment as ``CHATBUS_WEBSOCKET__<FIELD>`` (``CHATBUS_WEBSOCKET__PORT=9000``);
the earlier ``WEBSOCKET_HOST``/``WEBSOCKET_PORT`` names still work. The
longest message text is the hub-wide ``max_text_length`` setting.

Two groups of settings are for running chatbus where the public can reach it:
``certfile``/``keyfile`` serve the page over https and the chat over wss on
the same port, and ``trusted_proxies`` names the reverse proxies whose
``X-Forwarded-For`` header says who the client is.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import socket
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from chatbus.core.settings import split_names
from chatbus.core.transport import TransportSettings

__all__ = ["WebSocketSettings"]

_OFF = {"", "none", "off", "null", "false", "0"}
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class WebSocketSettings(TransportSettings):
    """Address, limits and browser origins of the WebSocket transport."""

    host: str = Field("127.0.0.1", min_length=1, description="address to listen on")
    port: int = Field(8081, ge=0, le=65535, description="TCP port; 0 picks a free one")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "names this server is reached by (the Host header of every request); loopback names and "
            "addresses and the host setting, when it is one name or address, are always allowed; "
            "'.example.org' allows that name and every name under it, '*' any. Listening on 0.0.0.0 or ::, "
            "or behind a reverse proxy, list the public names here"
        ),
    )
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
    compression: Literal["deflate"] | None = Field(
        "deflate",
        description=(
            "'deflate' (permessage-deflate; each message is compressed once for every connection that "
            "negotiated the same window) or none"
        ),
    )
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
    max_connections_per_address: int = Field(
        100,
        ge=1,
        description=(
            "open connections from one client address at most (close 1013 beyond); behind a reverse proxy, "
            "list it in trusted_proxies or every client shares its address"
        ),
    )
    max_signing_in: int = Field(
        200, ge=1, description="connections open but not yet signed in, at most (close 1013 beyond)"
    )
    control_burst: int = Field(
        20, ge=1, description="pings, typing and history requests of each kind a connection may send at once"
    )
    control_per_second: float = Field(
        5.0, gt=0, description="of each of those kinds, per second after the burst; faster ones are read more slowly"
    )
    history_burst: int = Field(
        5, ge=1, description="history requests a connection may send at once (each reads the store)"
    )
    history_per_second: float = Field(
        1.0, gt=0, description="history requests per second after the burst; faster ones are read more slowly"
    )
    refused_burst: int = Field(20, ge=1, description="frames answered with an error that a connection may send at once")
    refused_per_second: float = Field(
        2.0, gt=0, description="such frames per second after the burst; faster ones are read more slowly"
    )
    refused_before_close: int = Field(
        10, ge=1, description="such frames beyond that allowance after which the connection is closed (1008)"
    )
    auth_failures_before_close: int = Field(
        5, ge=1, description="failed sign-ins (AUTH_FAILED) on one connection after which it is closed (1008)"
    )
    auth_failure_delay: float = Field(
        1.0,
        ge=0,
        description="seconds before the frame after a second failed sign-in is read; doubles with each further one",
    )
    auth_failures_per_address: int = Field(
        30,
        ge=1,
        description=(
            "failed sign-ins one client address may make in 10 minutes; beyond that its connections are "
            "closed (1008) until enough time has passed"
        ),
    )
    file_idle_timeout: float = Field(
        30.0,
        gt=0,
        description=(
            "seconds an upload (POST /files) or a download may go without a byte moving before it is dropped; "
            "a transfer may take as long as it needs while bytes move"
        ),
    )
    max_uploads_per_address: int = Field(
        4, ge=1, description="uploads from one client address at the same time, at most (429 beyond)"
    )
    max_downloads_per_address: int = Field(
        32,
        ge=1,
        description="downloads (files and thumbnails) to one client address at the same time, at most (429 beyond)",
    )
    certfile: Path | None = Field(
        None, description="PEM certificate chain (the server's certificate first); with keyfile, serve https and wss"
    )
    keyfile: Path | None = Field(
        None, validate_default=True, description="PEM private key of certfile; set both or neither"
    )
    keyfile_password: SecretStr | None = Field(None, description="password of an encrypted keyfile")
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(
        default_factory=list,
        description=(
            "addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For names the client; "
            "from any other peer the header is ignored"
        ),
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, value: list[str]) -> list[str]:
        """Lower-case names without a trailing dot or brackets; a scheme, port or path is a mistake."""
        names = []
        for item in value:
            name = item.strip().lower().rstrip(".")
            name = name[1:-1] if name.startswith("[") and name.endswith("]") else name
            if name != "*" and not _HOST_NAME.fullmatch(name.removeprefix(".")) and not _is_address(name):
                raise ValueError(
                    f"{item!r} is not a host name; list names or addresses as the browser's address bar "
                    "shows them, without scheme or port (chat.example.org, 192.0.2.7, .example.org)"
                )
            names.append(str(ipaddress.ip_address(name)) if _is_address(name) else name)
        return names

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        """Accept ``a,b``, a JSON list, or a list (environment variables are strings)."""
        return split_names(value)

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

    @field_validator("certfile", "keyfile", "keyfile_password", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        """An empty value (``CHATBUS_WEBSOCKET__CERTFILE=``) means not set."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("keyfile")
    @classmethod
    def _both_or_neither(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        """TLS needs the certificate and its key; one without the other is a mistake, not plain HTTP."""
        if "certfile" not in info.data:
            return value  # certfile itself was invalid and is reported
        certfile = info.data["certfile"]
        if value is None and certfile is not None:
            raise ValueError("certfile is set but keyfile is not; TLS needs both (or neither, for plain HTTP)")
        if value is not None and certfile is None:
            raise ValueError("keyfile is set but certfile is not; TLS needs both (or neither, for plain HTTP)")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: Any) -> Any:
        """``127.0.0.1, 10.0.0.0/8``, a JSON list or a list; each an address or a network."""
        value = split_names(value)
        if not isinstance(value, list):
            return value
        networks: list[IPv4Network | IPv6Network] = []
        for item in value:
            if isinstance(item, IPv4Network | IPv6Network):
                networks.append(item)
                continue
            try:
                networks.append(ipaddress.ip_network(str(item).strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network; list proxies by address "
                    "(127.0.0.1, ::1) or network (10.0.0.0/8), not by name"
                ) from None
        return networks

    @property
    def tls(self) -> bool:
        """Whether the page and the chat are served over TLS (https and wss)."""
        return self.certfile is not None

    def listens_publicly(self) -> bool:
        """True when ``host`` is not loopback (anyone on the network can connect)."""
        host = self.host.strip("[]")
        if host.lower() in _LOOPBACK_NAMES:
            return False
        try:
            return not ipaddress.ip_address(host).is_loopback
        except ValueError:
            return True  # a host name or a wildcard: assume it can be reached from outside

    def host_names(self) -> tuple[str, ...]:
        """The names a request's Host header may carry besides loopback ones:
        ``allowed_hosts``, and ``host`` when it is one name or address (not 0.0.0.0 or ::)."""
        bind = self.host.strip().strip("[]").lower().rstrip(".")
        if not bind or (_is_address(bind) and ipaddress.ip_address(bind).is_unspecified):
            return tuple(self.allowed_hosts)
        return (*self.allowed_hosts, str(ipaddress.ip_address(bind)) if _is_address(bind) else bind)

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
