"""Plain HTTP on the chat port: the web page, health, info, and the Host and Origin checks.

The websockets server hands every request to ``process_request`` before the
opening handshake, and the transport passes it to :func:`route`. Every
request must name this server in its Host header (``allowed_hosts``; loopback
names always), so a web page whose own name was made to resolve to this
machine (DNS rebinding) can neither read the chat nor join it. Requests
that ask for a WebSocket upgrade go on to the handshake (on any path) once
their Origin is allowed; everything else is answered here and the
connection closed:

==================  =======================================================
``GET /``           the bundled web chat page (``/index.html`` too)
``GET /static/…``   the page's files, from the package's ``static`` folder
``GET /healthz``    ``200 ok`` while the hub runs, ``503 stopping`` after
``GET /ws-info``    JSON about the transports, the address and who is here
``GET /readyz``     ``200 ready`` when this node can take connections, else
                    ``503`` with the reason (the store does not answer, ...)
``GET /metrics``    the hub's Prometheus metrics (unless turned off)
``/files…``         uploads and downloads: never reach this module, they are
                    taken before websockets parses them (:mod:`.fileserver`)
anything else       ``404``; a method other than GET and HEAD is ``405``
==================  =======================================================

Every answer carries the security headers of :data:`SECURITY_HEADERS`: the
page's Content-Security-Policy (as a header too, with ``frame-ancestors``,
which a meta tag cannot carry), no framing, no referrer, no sniffing.
"""

from __future__ import annotations

import asyncio
import http
import ipaddress
import json
import logging
import mimetypes
import re
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from email.utils import formatdate
from pathlib import Path, PurePosixPath
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from websockets.datastructures import Headers, MultipleValuesError
from websockets.http11 import Request, Response

from chatbus.core.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

__all__ = [
    "PAGE_POLICY",
    "SECURITY_HEADERS",
    "STATIC_ROOT",
    "content_type",
    "file_response",
    "host_allowed",
    "json_response",
    "origin_allowed",
    "request_path",
    "resolve_static",
    "route",
    "text_response",
    "wants_websocket",
]

#: The web chat page and its assets, shipped inside the package.
STATIC_ROOT: Final = Path(__file__).with_name("static")

_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}

#: The Content-Security-Policy of the bundled page: its meta tag's policy, and
#: ``frame-ancestors 'none'`` (no other site may frame the chat to trick clicks).
PAGE_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
#: Sent with every answer on the chat port.
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": PAGE_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
#: A Host header: a name or IPv4 address, or an IPv6 address in brackets, and an optional port.
_HOST: Final = re.compile(r"(?:\[(?P<ip6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+))(?::[0-9]{1,5})?")

log = logging.getLogger("chatbus.transports.websocket")


def wants_websocket(request: Request) -> bool:
    """True when the request asks for a WebSocket upgrade."""
    values = request.headers.get_all("Upgrade")
    return any("websocket" in value.lower() for value in values)


def _single(headers: Headers, name: str) -> str | None:
    try:
        return headers.get(name)
    except MultipleValuesError:
        raise ValueError(f"several {name} headers") from None


def _authority(scheme: str, netloc: str) -> tuple[str, int | None] | None:
    """``(host, port)`` of a netloc, with the scheme's default port filled in."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if not host:
        return None
    return host, port if port is not None else _DEFAULT_PORTS.get(scheme)


def origin_allowed(headers: Headers, allowed: Iterable[str]) -> bool:
    """Whether a browser page with this Origin may open a chat connection.

    Allowed: clients that send no Origin (scripts, old clients), the page's own
    origin (Origin host and port equal to the Host header, so the bundled page
    works on whatever address it is served from), and the configured origins
    (``*`` allows any).
    """
    try:
        origin = _single(headers, "Origin")
        host = _single(headers, "Host")
    except ValueError:
        return False
    if origin is None:
        return True
    origin = origin.strip().rstrip("/")
    allowed = set(allowed)
    if "*" in allowed or origin in allowed:
        return True
    if host is None:
        return False
    scheme, sep, netloc = origin.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return False
    own = _authority(scheme.lower(), netloc)
    served = _authority(scheme.lower(), host.strip())
    return own is not None and own == served


def host_allowed(host: str, allowed: Collection[str]) -> bool:
    """Whether a request whose Host header is ``host`` is for this server.

    Allowed: the names in ``allowed`` (``*`` allows any, ``.example.org``
    that name and every name under it), and always loopback names and
    addresses (``localhost``, ``*.localhost``, ``127.0.0.1``, ``::1``): a
    browser sends those only for a page on its own machine.
    """
    name = _host_name(host)
    if name is None:
        return False
    if "*" in allowed or name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        if ipaddress.ip_address(name).is_loopback:
            return True
    except ValueError:
        pass
    return any(
        name == entry or (entry.startswith(".") and (name.endswith(entry) or name == entry[1:])) for entry in allowed
    )


def _host_name(host: str) -> str | None:
    """The lower-case name (or address) of a Host header, without port or
    brackets; None when it is not a well-formed host."""
    match = _HOST.fullmatch(host.strip())
    if match is None:
        return None
    ip6 = match.group("ip6")
    if ip6 is not None:
        try:
            return str(ipaddress.IPv6Address(ip6))
        except ValueError:
            return None
    return match.group("name").lower().rstrip(".") or None


def resolve_static(name: str, root: Path = STATIC_ROOT) -> Path | None:
    """The file under ``root`` for a URL path below ``/static/``, or None.

    Refuses anything that could leave the folder: ``..``, hidden names,
    backslashes, NUL, absolute paths, and symlinks pointing outside.
    """
    if not name or "\\" in name or "\x00" in name:
        return None
    parts = PurePosixPath(name).parts
    if not parts or any(part in ("", ".", "..", "/") or part.startswith(".") for part in parts):
        return None
    candidate = root.joinpath(*parts)
    try:
        resolved = candidate.resolve(strict=True)
        base = root.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not resolved.is_relative_to(base) or not resolved.is_file():
        return None
    return resolved


def content_type(path: Path) -> str:
    """The Content-Type of a static file, from its suffix."""
    known = _TYPES.get(path.suffix.lower())
    if known is not None:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def _response(
    status: http.HTTPStatus,
    body: bytes,
    content_type: str,
    *,
    head: bool = False,
    extra: Mapping[str, str] | None = None,
) -> Response:
    headers = Headers(
        [
            ("Date", formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
            *SECURITY_HEADERS.items(),
        ]
    )
    for key, value in (extra or {}).items():
        if key in headers:
            del headers[key]
        headers[key] = value
    return Response(status.value, status.phrase, headers, b"" if head else body)


def text_response(status: http.HTTPStatus, text: str, *, head: bool = False, **extra: str) -> Response:
    """A short plain-text answer."""
    return _response(status, text.encode(), "text/plain; charset=utf-8", head=head, extra=extra)


def json_response(payload: Any, *, head: bool = False) -> Response:
    """A ``200`` JSON answer."""
    body = json.dumps(payload, ensure_ascii=False, indent=2).encode()
    return _response(http.HTTPStatus.OK, body, "application/json", head=head)


def file_response(path: Path, body: bytes, *, head: bool = False) -> Response:
    """A ``200`` answer with a static file's bytes."""
    return _response(http.HTTPStatus.OK, body, content_type(path), head=head)


def request_path(request: Request) -> str:
    """The decoded path of a request, without its query string."""
    return unquote(urlsplit(request.path).path) or "/"


async def route(
    request: Request,
    *,
    allowed_hosts: Collection[str] = (),
    allowed_origins: Sequence[str],
    running: bool,
    info: Callable[[], Mapping[str, Any]],
    readiness: Callable[[], Awaitable[tuple[bool, str]]] | None = None,
    metrics: Callable[[], bytes] | None = None,
    root: Path = STATIC_ROOT,
) -> Response | None:
    """The answer to one request on the chat port, or None to let an allowed
    WebSocket handshake go on.

    ``allowed_hosts`` are the names a Host header may carry besides
    loopback ones (see :func:`host_allowed`); ``running`` is whether the hub runs (``/healthz``); ``info`` is called
    for the JSON of ``/ws-info``; ``readiness`` answers ``/readyz`` (None: not
    ready, no hub); ``metrics`` gives ``/metrics`` (None: not served); static
    files come from ``root``.
    """
    misdirected = _check_host(request, allowed_hosts)
    if misdirected is not None:
        return misdirected
    if wants_websocket(request):
        return _check_origin(request, allowed_origins)
    head = request.method == "HEAD"
    if request.method not in ("GET", "HEAD"):
        return text_response(http.HTTPStatus.METHOD_NOT_ALLOWED, "Only GET is supported.\n", Allow="GET, HEAD")
    path = request_path(request)
    if path == "/healthz":
        if running:
            return text_response(http.HTTPStatus.OK, "ok\n", head=head)
        return text_response(http.HTTPStatus.SERVICE_UNAVAILABLE, "stopping\n", head=head)
    if path == "/ws-info":
        return json_response(info(), head=head)
    if path == "/readyz":
        ready, reason = await readiness() if readiness is not None else (False, "chatbus is not running")
        if ready:
            return text_response(http.HTTPStatus.OK, "ready\n", head=head)
        return text_response(http.HTTPStatus.SERVICE_UNAVAILABLE, f"not ready: {reason}\n", head=head)
    if path == "/metrics" and metrics is not None:
        return _response(http.HTTPStatus.OK, metrics(), METRICS_CONTENT_TYPE, head=head)
    name = _static_name(path)
    found = resolve_static(name, root) if name else None
    if found is None:
        return text_response(http.HTTPStatus.NOT_FOUND, "Not found.\n", head=head)
    body = await asyncio.to_thread(found.read_bytes)
    return file_response(found, body, head=head)


def _check_host(request: Request, allowed: Collection[str]) -> Response | None:
    """None when the request names this server in its Host header, else the answer refusing it.

    A request without Host is let through: browsers, the only clients a
    rebound name can steer, always send one.
    """
    try:
        host = _single(request.headers, "Host")
    except ValueError:
        return text_response(http.HTTPStatus.BAD_REQUEST, "Send one Host header.\n")
    if host is None or host_allowed(host, allowed):
        return None
    shown = _host_name(host)
    log.warning(
        "refused a request for host %r (allowed: loopback, %s); if that is this server's name, "
        "add it to allowed_hosts (CHATBUS_WEBSOCKET__ALLOWED_HOSTS)",
        host[:100],
        ", ".join(allowed) or "nothing else",
    )
    if shown is None:
        return text_response(http.HTTPStatus.BAD_REQUEST, "The Host header is not a host name.\n")
    return text_response(
        http.HTTPStatus.MISDIRECTED_REQUEST,
        f"This chat server does not answer to the name {shown}. If it should, its operator adds the name "
        "to allowed_hosts in the [websocket] settings (CHATBUS_WEBSOCKET__ALLOWED_HOSTS).\n",
    )


def _check_origin(request: Request, allowed: Sequence[str]) -> Response | None:
    """None when a page from this request's Origin may open a chat connection, else a ``403``."""
    if origin_allowed(request.headers, allowed):
        return None
    log.warning(
        "refused a WebSocket handshake from origin %r (allowed: same origin, no origin, %s)",
        request.headers.get_all("Origin")[:1],
        ", ".join(allowed) or "nothing else",
    )
    return text_response(
        http.HTTPStatus.FORBIDDEN,
        "This page's origin may not open a chat connection here. "
        "The chat's operator can allow it with CHATBUS_WEBSOCKET__ALLOWED_ORIGINS.\n",
    )


def _static_name(path: str) -> str | None:
    """The file name under the static folder that a URL path asks for, if any."""
    if path == "/" or path == "/index.html":
        return "index.html"
    if path.startswith("/static/"):
        return path[len("/static/") :]
    return None
