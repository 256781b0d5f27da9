"""chatbus behind nginx, as examples/deploy/ sets it up, tested for real.

``chatbus serve --config examples/deploy/chatbus.toml`` (only the port, the
database and the agents' folder moved into the test's folder, tokens given
as the example says, through the environment) behind Debian's nginx running
examples/deploy/nginx.conf (see :mod:`tests.deploy.nginx` for what is
substituted). People reach nginx by the example's name, chat.example.org
(in Host, TLS's server name and Origin; the connection itself goes to
127.0.0.1, and Chromium is told the same), as they would on the internet.
They come from other loopback addresses than nginx's 127.0.0.1, so the
address chatbus logs tells whether it believed nginx's X-Forwarded-For, and
nobody else's.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.certificates import Certificates, make_certificates
from tests.support import ChatbusProcess, chatbus_env, require_program
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, join, message_items, send

from .nginx import EXAMPLE, Nginx, free_port, require_nginx, site_config

EXAMPLE_TOML = EXAMPLE.with_name("chatbus.toml")
TIMEOUT = 20.0
TOKENS = {"alice-token": {"userId": "alice"}, "bob-token": {"userId": "bob"}}
#: The example's server_name, which people use to reach the chat.
NAME = "chat.example.org"
LISTENING = re.compile(r"listening on ws://127\.0\.0\.1:(\d+)/")


@pytest.fixture
def certs(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path / "tls", NAME)


@contextmanager
def deployed(
    tmp_path: Path, certs: Certificates, name: str, *, timeouts: str | None = None, **env: str
) -> Iterator[tuple[ChatbusProcess, int, int]]:
    """chatbus with the example settings behind nginx with the example site: (chatbus, its port, nginx's https port)."""
    require_nginx()
    folder = tmp_path / name
    folder.mkdir()
    variables = {"CHATBUS_AUTH__TOKENS": json.dumps(TOKENS), "CHATBUS_AGENTS__WORKDIR": str(folder / "agents"), **env}
    command = ["serve", "--config", str(EXAMPLE_TOML), "--port", "0", "--db", str(folder / "chat.db")]
    with ChatbusProcess(*command, env=chatbus_env(variables), cwd=folder) as server:
        match = LISTENING.search(server.stderr.wait_for("listening on", 30))
        assert match is not None, server.stderr.lines
        port = int(match.group(1))

        def site(https_port: int, http_port: int) -> str:
            return site_config(
                https_port=https_port, http_port=http_port, chatbus_port=port, certs=certs, timeouts=timeouts
            )

        with Nginx(folder / "nginx", site) as nginx:
            try:
                yield server, port, nginx.https_port
            except BaseException:
                # What both servers said, for whoever reads the failure.
                print("chatbus:", *server.stderr.drain(0.5), sep="\n")
                print("nginx:", nginx.errors(), sep="\n")
                raise
        assert server.terminate() == 0


def dial(url: str, source: str) -> socket.socket:
    """A TCP connection from ``source`` to 127.0.0.1 at ``url``'s port, whatever name ``url`` has."""
    return socket.create_connection(("127.0.0.1", urlsplit(url).port or 443), TIMEOUT, (source, 0))


def open_chat(url: str, source: str, **options: Any) -> ClientConnection:
    """A websockets client for ``url`` (its name in Host and TLS) over :func:`dial`."""
    if url.startswith("wss://"):
        options["server_hostname"] = urlsplit(url).hostname
    options.setdefault("open_timeout", TIMEOUT)
    return connect(url, sock=dial(url, source), close_timeout=2, legacy=True, **options)


def https_get(port: int, path: str, certs: Certificates) -> tuple[int, bytes]:
    """GET ``https://chat.example.org:port/path`` from nginx; status and body."""
    browser = http.client.HTTPSConnection("127.0.0.1", port, context=certs.client_context(), timeout=TIMEOUT)
    try:
        browser.request("GET", path, headers={"Host": f"{NAME}:{port}"})
        answer = browser.getresponse()
        return answer.status, answer.read()
    finally:
        browser.close()


class Person:
    """A real websockets client, signed in with a token."""

    def __init__(self, url: str, token: str, source: str, **options: Any) -> None:
        self.ws = open_chat(url, source, **options)
        user = TOKENS[token]["userId"]
        self.ws.send(json.dumps({"type": "auth", "data": {"userId": user, "token": token}}))
        self.auth = self.expect("auth_response")

    def say(self, text: str) -> None:
        self.ws.send(json.dumps({"type": "message", "data": {"text": text}}))

    def expect(self, kind: str, text: str | None = None, timeout: float = TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            frame = json.loads(self.ws.recv(timeout=left))
            assert frame["type"] != "error", frame
            if frame["type"] == kind and (text is None or frame["data"].get("text") == text):
                return frame["data"]  # type: ignore[no-any-return]
        raise AssertionError(f"no {kind} frame came")


def signed_in_from(server: ChatbusProcess) -> dict[str, str]:
    """Who signed in from where, as chatbus logged it."""
    found = {}
    for line in server.stderr.drain(0.5):
        match = re.search(r"session \w+ \((\w+)\): signed in from (\S+)$", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def test_through_nginx_the_page_loads_and_people_chat_with_direct_clients(tmp_path: Path, certs: Certificates) -> None:
    trusted = certs.client_context()
    with deployed(tmp_path, certs, "main") as (server, port, https_port):
        page = f"https://{NAME}:{https_port}"
        status, body = https_get(https_port, "/", certs)
        assert status == 200 and b"<title>chatbus</title>" in body
        assert https_get(https_port, "/healthz", certs) == (200, b"ok\n")
        assert https_get(https_port, "/metrics", certs)[0] == 404

        # A browser on the page nginx serves, with a forged X-Forwarded-For of its own.
        alice = Person(
            f"wss://{NAME}:{https_port}/",
            "alice-token",
            "127.0.0.2",
            ssl=trusted,
            origin=page,
            additional_headers={"X-Forwarded-For": "203.0.113.66"},
        )
        # A script on the server's network that bypasses nginx, and forges the header too.
        bob = Person(
            f"ws://127.0.0.1:{port}/", "bob-token", "127.0.0.3", additional_headers={"X-Forwarded-For": "203.0.113.77"}
        )
        alice.say("hello from behind nginx")
        assert bob.expect("message", "hello from behind nginx")["sender"] == "alice"
        bob.say("hello from next door")
        assert alice.expect("message", "hello from next door")["sender"] == "bob"

        # Another site's page may not open the chat through the proxy either.
        with pytest.raises(InvalidStatus) as refused:
            open_chat(f"wss://{NAME}:{https_port}/", "127.0.0.2", ssl=trusted, origin="https://elsewhere.example")
        assert refused.value.response.status_code == 403
        alice.ws.close()
        bob.ws.close()
    assert signed_in_from(server) == {"alice": "127.0.0.2", "bob": "127.0.0.3"}
    assert not [line for line in server.stderr.lines if "203.0.113." in line or "Traceback" in line]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium through Playwright, as tests/web uses it (skipped without it, failing in CI)."""
    require_program(CHROMIUM, "chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # The example's name leads to this machine, for this browser only.
        rules = f"--host-resolver-rules=MAP {NAME} 127.0.0.1"
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, rules])
        try:
            yield launched
        finally:
            launched.close()


def test_the_web_page_works_through_nginx(tmp_path: Path, certs: Certificates, browser: Any) -> None:
    """The bundled page, loaded over https from nginx, opens its wss connection through nginx too."""
    from playwright.sync_api import expect

    with deployed(tmp_path, certs, "browser") as (_, port, https_port):
        # The browser does not know the test's authority; everything else is as for a person.
        context = browser.new_context(ignore_https_errors=True)
        context.set_default_timeout(WAIT_MS)
        errors: list[str] = []
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"https://{NAME}:{https_port}/")
        join(page, "alice", token="alice-token")
        bob = Person(f"ws://127.0.0.1:{port}/", "bob-token", "127.0.0.3")
        send(page, "typed in the browser")
        assert bob.expect("message", "typed in the browser")["sender"] == "alice"
        bob.say("seen in the browser")
        expect(message_items(page, "seen in the browser")).to_have_count(1)
        bob.ws.close()
        context.close()
        assert errors == []


def test_plain_http_is_sent_to_https(tmp_path: Path, certs: Certificates) -> None:
    def site(https_port: int, http_port: int) -> str:
        return site_config(https_port=https_port, http_port=http_port, chatbus_port=free_port(), certs=certs)

    with Nginx(tmp_path / "nginx", site) as nginx:
        plain = http.client.HTTPConnection("127.0.0.1", nginx.http_port, timeout=TIMEOUT)
        plain.request("GET", "/?room=dev", headers={"Host": "chat.example.org"})
        answer = plain.getresponse()
        assert (answer.status, answer.getheader("Location")) == (301, "https://chat.example.org/?room=dev")
        plain.close()


def test_without_trusted_proxies_chatbus_sees_only_nginx(tmp_path: Path, certs: Certificates) -> None:
    untrusting = {"CHATBUS_WEBSOCKET__TRUSTED_PROXIES": "[]"}
    with deployed(tmp_path, certs, "untrusting", **untrusting) as (server, _, https_port):
        alice = Person(f"wss://{NAME}:{https_port}/", "alice-token", "127.0.0.2", ssl=certs.client_context())
        alice.ws.close()
    assert signed_in_from(server) == {"alice": "127.0.0.1"}


def _seconds(value: str) -> float:
    """An nginx time (``90``, ``90s``, ``10m``, ``1h``, ``1d``) in seconds."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value)
    assert match is not None, value
    unit = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return int(match.group(1)) * unit


def test_the_example_keeps_idle_chat_connections_for_long() -> None:
    text = EXAMPLE.read_text()
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        values = re.findall(rf"^\s*{directive}\s+(\S+);", text, re.MULTILINE)
        assert len(values) == 1, directive
        # Far beyond nginx's default of 60 s and chatbus's ping interval of 20 s.
        assert _seconds(values[0]) >= 600, f"{directive} {values[0]}"
    assert re.search(r"^\s*proxy_buffering off;", text, re.MULTILINE)


def test_pings_keep_an_idle_connection_open_past_the_proxy_timeout(tmp_path: Path, certs: Certificates) -> None:
    """The same site with 2 s timeouts, and a client that never pings: chatbus's own
    pings (every 0.5 s) keep the connection, and without them nginx closes it."""
    idle = 4.0
    with deployed(tmp_path, certs, "pinging", timeouts="2s", CHATBUS_WEBSOCKET__PING_INTERVAL="0.5") as running:
        _, port, https_port = running
        alice = Person(
            f"wss://{NAME}:{https_port}/", "alice-token", "127.0.0.2", ssl=certs.client_context(), ping_interval=None
        )
        bob = Person(f"ws://127.0.0.1:{port}/", "bob-token", "127.0.0.3")
        time.sleep(idle)
        bob.say("still there?")
        assert alice.expect("message", "still there?")["sender"] == "bob"
        alice.say("yes")
        assert bob.expect("message", "yes")["sender"] == "alice"
        alice.ws.close()
        bob.ws.close()
    with deployed(tmp_path, certs, "silent", timeouts="2s", CHATBUS_WEBSOCKET__PING_INTERVAL="none") as running:
        _, _, https_port = running
        alice = Person(
            f"wss://{NAME}:{https_port}/", "alice-token", "127.0.0.2", ssl=certs.client_context(), ping_interval=None
        )
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            alice.expect("message", timeout=idle)
        assert 1.5 < time.monotonic() - started < idle


def test_the_proxy_sends_what_chatbus_needs(tmp_path: Path, certs: Certificates) -> None:
    """The headers nginx adds, as chatbus receives them (a bare listening socket stands in for it)."""
    with socket.socket() as upstream:
        upstream.bind(("127.0.0.1", 0))
        upstream.listen()
        upstream.settimeout(TIMEOUT)
        chatbus_port = upstream.getsockname()[1]

        def site(https_port: int, http_port: int) -> str:
            return site_config(https_port=https_port, http_port=http_port, chatbus_port=chatbus_port, certs=certs)

        with Nginx(tmp_path / "nginx", site) as nginx:
            https_port = nginx.https_port
            browser = http.client.HTTPSConnection(
                "127.0.0.1", https_port, context=certs.client_context(), timeout=TIMEOUT
            )
            browser.request(
                "GET",
                "/",
                headers={
                    "Host": f"{NAME}:{https_port}",
                    "Upgrade": "websocket",
                    "Connection": "Upgrade",
                    "X-Forwarded-For": "203.0.113.66",
                },
            )
            peer, _ = upstream.accept()
            with peer:
                peer.settimeout(TIMEOUT)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = peer.recv(4096)
                    assert chunk, head
                    head += chunk
            browser.close()
    request_line, *lines = head.decode("latin-1").split("\r\n\r\n")[0].split("\r\n")
    headers = {key.lower(): value.strip() for key, _, value in (line.partition(":") for line in lines)}
    assert request_line == "GET / HTTP/1.1"
    # The name and port the browser used: checked against allowed_hosts, and the page's Origin against it.
    assert headers["host"] == f"{NAME}:{https_port}"
    assert (headers["upgrade"], headers["connection"]) == ("websocket", "upgrade")
    assert headers["x-forwarded-for"] == "203.0.113.66, 127.0.0.1"  # chatbus takes the right-most
    assert headers["x-forwarded-proto"] == "https"


def test_files_go_up_and_down_through_nginx(tmp_path: Path, certs: Certificates) -> None:
    """Larger than nginx's own 1 MB body limit, from the page's origin, with a token; read back in a range."""
    data = os.urandom(3 * 1024 * 1024)
    boundary = "nginx-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="logs.zip"\r\n'
            f"Content-Type: application/zip\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    with deployed(tmp_path, certs, "files") as (server, _, https_port):
        host = f"{NAME}:{https_port}"
        browser = http.client.HTTPSConnection("127.0.0.1", https_port, context=certs.client_context(), timeout=TIMEOUT)
        browser.sock = certs.client_context().wrap_socket(dial(f"https://{host}/", "127.0.0.2"), server_hostname=NAME)
        headers = {
            "Host": host,
            "Origin": f"https://{host}",
            "Authorization": "Bearer alice-token",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "X-Forwarded-For": "203.0.113.66",
        }
        browser.request("POST", "/files", body=body, headers=headers)
        answer = browser.getresponse()
        created = json.loads(answer.read())
        browser.close()
        assert answer.status == 201, created
        browser = http.client.HTTPSConnection("127.0.0.1", https_port, context=certs.client_context(), timeout=TIMEOUT)
        browser.request("GET", created["url"], headers={"Host": host, "Range": "bytes=1048576-1048585"})
        part = browser.getresponse()
        assert part.status == 206 and part.read() == data[1048576:1048586]
        browser.close()
        logged = server.stderr.drain(0.5)
    uploads = [line for line in logged if "files: alice uploaded" in line]
    assert uploads and uploads[0].rstrip().endswith("from 127.0.0.2"), uploads
