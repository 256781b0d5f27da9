"""``chatbus status`` and ``chatbus send``: talking to a running server.

Both speak http/ws, or https/wss to a server with TLS (``--url https://...``,
or by default when the settings give ``websocket.certfile``). The server's
certificate is checked against the system's authorities, ``SSL_CERT_FILE``
when set, or only the one ``--cafile`` names (a self-made certificate).
"""

from __future__ import annotations

import argparse
import json
import ssl
from typing import Any

from ..core.errors import ChatbusError
from ..core.settings import Settings
from .common import print_table
from .uploads import LocalFile, check_files, upload

__all__ = ["cmd_send", "cmd_status"]


def _server_url(args: argparse.Namespace) -> str:
    """The running server's http address: ``--url``, else the websocket settings."""
    if args.url:
        url = str(args.url).strip()
        if url.startswith(("ws://", "wss://")):
            url = "http" + url[2:]
        elif "://" not in url:
            url = f"http://{url}"
    else:
        section = Settings.load(args.config).section("websocket")
        host = str(section.get("host") or "127.0.0.1")
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        host = f"[{host}]" if ":" in host else host
        scheme = "https" if section.get("certfile") else "http"
        url = f"{scheme}://{host}:{section.get('port') or 8081}"
    return url


def _tls_context(args: argparse.Namespace, url: str) -> ssl.SSLContext | None:
    """The context that checks an https server's certificate; None for plain http."""
    if not url.startswith("https://"):
        return None
    try:
        return ssl.create_default_context(cafile=args.cafile)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or "not a PEM certificate"
        raise ChatbusError(f"cannot use --cafile {args.cafile} ({str(reason).lower()}); give a PEM file") from None


def _tls_failure(exc: BaseException, url: str) -> ChatbusError | None:
    """A clear line for a TLS problem talking to ``url``, or None when it is not one."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ChatbusError(
            f"the certificate of {url} is not trusted ({exc.verify_message}); give its authority with "
            "--cafile PATH (or SSL_CERT_FILE), or use the address the certificate was made for"
        )
    if isinstance(exc, ssl.SSLError):
        return ChatbusError(
            f"no TLS conversation with {url} ({exc.reason or 'handshake failed'}); "
            "does the server use certfile and keyfile? Without them, use http://"
        )
    return None


def _status_url(args: argparse.Namespace) -> str:
    """The ``/ws-info`` address of the server."""
    url = _server_url(args)
    rest = url.partition("://")[2]
    if "/" not in rest or rest.endswith("/"):
        url = url.rstrip("/") + "/ws-info"
    return url


def cmd_send(args: argparse.Namespace) -> int:
    """Post one message to a running server over its WebSocket, as a person,
    with the files of ``--file`` uploaded first and attached."""
    import uuid

    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    files = check_files(args.files)
    if not files and not args.text:
        raise ChatbusError("nothing to send: give the message text, or a file with --file PATH")
    url = _server_url(args)
    scheme, _, rest = url.partition("://")
    base = f"{scheme}://{rest.split('/', 1)[0]}"
    ws_url = ("wss" if scheme == "https" else "ws") + "://" + rest.split("/", 1)[0] + "/"
    context = _tls_context(args, url)
    client_id = f"cli-{uuid.uuid4().hex[:12]}"
    auth: dict[str, Any] = {"userId": args.user, "role": args.role}
    if args.token:
        auth["token"] = args.token
    message: dict[str, Any] = {"text": args.text, "id": client_id, "room": args.room}
    if args.reply_to is not None:
        message["replyTo"] = args.reply_to
    if files:
        message["attachments"] = _upload_all(args, base, files, context)
    try:
        with connect(ws_url, open_timeout=args.timeout, close_timeout=2, max_size=None, ssl=context) as ws:
            ws.send(json.dumps({"type": "auth", "data": auth}))
            _await_frame(ws, "auth_response", args.timeout)
            ws.send(json.dumps({"type": "message", "data": message}))
            echo = _await_frame(ws, "message", args.timeout, lambda data: data.get("clientId") == client_id)
    except (OSError, TimeoutError, WebSocketException) as exc:
        tls = _tls_failure(exc, ws_url)
        if tls is not None:
            raise tls from None
        reason = (
            type(exc).__name__
            if isinstance(exc, WebSocketException)
            else (getattr(exc, "strerror", None) or "no answer")
        )
        raise ChatbusError(
            f"could not talk to a chatbus server at {ws_url} ({reason}); is chatbus serve running there?"
        ) from None
    count = len(echo.get("attachments") or ())  # a file given twice is attached once
    attached = f" with {count} file{'s' if count != 1 else ''}" if count else ""
    print(f"sent message {echo.get('id')} to #{echo.get('room', args.room)}{attached}")
    return 0


def _upload_all(
    args: argparse.Namespace, base: str, files: list[LocalFile], context: ssl.SSLContext | None
) -> list[str]:
    """Upload every file to the server's ``POST /files``; their ids, in order."""
    ids = []
    for file in files:
        try:
            stored = upload(base, file, user=args.user, token=args.token, timeout=args.timeout, context=context)
        except ssl.SSLError as exc:
            raise (_tls_failure(exc, base) or ChatbusError(f"no TLS conversation with {base}")) from None
        ids.append(str(stored["id"]))
    return ids


def _await_frame(ws: Any, kind: str, timeout: float, accept: Any = None) -> dict[str, Any]:
    """The data of the next frame of ``kind`` (an ``error`` frame is raised as the server's words)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        frame = json.loads(ws.recv(timeout=left))
        data = frame.get("data") or {}
        if frame.get("type") == "error":
            raise ChatbusError(f"the server refused: {data.get('message', data.get('code', 'no reason given'))}")
        if frame.get("type") == kind and (accept is None or accept(data)):
            return data


def cmd_status(args: argparse.Namespace) -> int:
    """Print the server's liveness, readiness and each transport's health; exit 0
    when it is live, ready and every transport is healthy, 1 otherwise."""
    url = _status_url(args)
    context = _tls_context(args, url)
    info = _ws_info(url, args.timeout, context)
    health = info.get("health") if isinstance(info, dict) else None
    if not isinstance(health, dict):
        raise ChatbusError(f"{url} does not report transport health; is that a chatbus server?")
    base = url.rsplit("/", 1)[0]
    probes = {path: _probe(f"{base}{path}", args.timeout, context) for path in ("/healthz", "/readyz")}
    if args.json:
        info["healthz"], info["readyz"] = (
            {"status": status, "answer": answer} for status, answer in (probes["/healthz"], probes["/readyz"])
        )
        print(json.dumps(info, indent=2))
    else:
        state = "running" if info.get("running") else "stopping"
        print(f"chatbus at {url}: {state}, {info.get('connected_users', 0)} people connected")
        engine = info.get("engine")
        if isinstance(engine, dict) and engine.get("kind") != "embedded":
            print(f"engine: {engine.get('kind')} at {engine.get('url')}, this node: {engine.get('node')}")
        for path, (status, answer) in probes.items():
            print(f"{path}: {status} {answer}")
        rows = [("TRANSPORT", "HEALTH", "DETAIL")]
        for name, status in sorted(health.items()):
            ok = isinstance(status, dict) and status.get("healthy") is True
            detail = str(status.get("detail", "")) if isinstance(status, dict) else ""
            rows.append((name, "healthy" if ok else "UNHEALTHY", detail))
        print_table(rows)
    healthy = all(isinstance(s, dict) and s.get("healthy") is True for s in health.values())
    probes_ok = all(status == 200 for status, _ in probes.values())
    return 0 if healthy and probes_ok and info.get("running") else 1


def _ws_info(url: str, timeout: float, context: Any) -> Any:
    """The JSON of ``/ws-info``; a ``ChatbusError`` saying what to check when it cannot be read."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as answer:
            return json.loads(answer.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise ChatbusError(
            f"{url} answered {exc.code}; is that a chatbus server (with the websocket transport)?"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        tls = _tls_failure(reason if isinstance(reason, BaseException) else exc, url)
        if tls is not None:
            raise tls from None
        raise ChatbusError(f"no chatbus server answers at {url} ({reason}); is chatbus serve running there?") from None
    except ValueError:
        raise ChatbusError(f"{url} did not answer with JSON; is that a chatbus server?") from None


def _probe(url: str, timeout: float, context: Any) -> tuple[int, str]:
    """The status and one-line answer of ``/healthz`` or ``/readyz`` (0 when nothing answered)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as answer:
            return answer.status, answer.read().decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace").strip()
    except (urllib.error.URLError, OSError) as exc:
        return 0, f"no answer ({getattr(exc, 'reason', exc)})"
