"""Only this server's own names: a web page whose name was made to resolve to
127.0.0.1 (DNS rebinding) sends its own name as Host, with a matching
Origin; it may neither read the chat's HTTP answers nor join the chat."""

from __future__ import annotations

import asyncio
import json
import logging
import socket

import pytest
from pydantic import ValidationError
from websockets.asyncio.client import connect
from websockets.datastructures import Headers
from websockets.http11 import Request

from chatbus import Hub, Settings
from chatbus.transports.websocket import WebSocketSettings, WebSocketTransport
from chatbus.transports.websocket.http import host_allowed, route

from .helpers import TIMEOUT, Client, running, warnings_about

ADVICE = b"allowed_hosts in the [websocket] settings (CHATBUS_WEBSOCKET__ALLOWED_HOSTS)"


async def raw_request(port: int, head: str) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` (request line and headers) to 127.0.0.1; the status, headers and body answered."""
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(head.replace("\n", "\r\n").encode() + b"\r\n")
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
    top, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = top.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def handshake(host: str, origin: str | None = None, path: str = "/") -> str:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    return "\n".join(lines) + "\n"


async def test_a_rebound_name_can_neither_join_nor_read(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with running() as server:
        port = server.port
        evil = f"evil.example:{port}"
        status, _, body = await raw_request(port, handshake(evil, f"http://{evil}"))
        assert status == 421 and ADVICE in body and b"evil.example" in body
        for path in ("/", "/ws-info", "/healthz", "/static/style.css", "/metrics", "/nope"):
            status, headers, body = await raw_request(port, f"GET {path} HTTP/1.1\nHost: {evil}\n")
            assert status == 421, path
            assert b"users" not in body and b"<html" not in body.lower()
            assert headers["content-type"].startswith("text/plain")
        assert server.hub.people_online == 0
        [warning, *_] = warnings_about(caplog, "refused a request for host")
        assert "evil.example" in warning.getMessage() and "CHATBUS_WEBSOCKET__ALLOWED_HOSTS" in warning.getMessage()
        # The page's own, loopback name still works, with and without the port.
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}", "LOCALHOST."):
            status, _, body = await raw_request(port, f"GET /healthz HTTP/1.1\nHost: {host}\n")
            assert (status, body) == (200, b"ok\n"), host


async def test_a_configured_name_signs_in_and_chats() -> None:
    async with running(allowed_hosts=["chat.example"]) as server:
        port = server.port
        with socket.create_connection(("127.0.0.1", port)) as sock:
            # The browser's view: the page at chat.example, its chat on the same origin.
            ws = await connect(f"ws://chat.example:{port}/", sock=sock, origin=f"http://chat.example:{port}")
            client = Client(ws)
            auth = await client.sign_in("alice")
            assert auth["success"] is True
            await client.say("hello from chat.example")
            [echo] = await client.chat(1)
            assert echo["data"]["text"] == "hello from chat.example"
            await client.close()
        status, _, body = await raw_request(port, f"GET /ws-info HTTP/1.1\nHost: chat.example:{port}\n")
        assert status == 200 and json.loads(body)["port"] == port
        status, _, _ = await raw_request(port, f"GET /ws-info HTTP/1.1\nHost: other.example:{port}\n")
        assert status == 421


async def test_hosts_that_are_not_one_name_are_bad_requests() -> None:
    async with running() as server:
        port = server.port
        for head in (
            f"GET /healthz HTTP/1.1\nHost: 127.0.0.1:{port}\nHost: evil.example\n",
            "GET /healthz HTTP/1.1\nHost: evil@127.0.0.1\n",
            "GET /healthz HTTP/1.1\nHost: 127.0.0.1/x\n",
            "GET /healthz HTTP/1.1\nHost: [not-an-address]:80\n",
        ):
            status, _, body = await raw_request(port, head)
            assert status == 400, head
            assert b"Traceback" not in body
        # No Host at all is a script or a health check, never a browser: it is answered.
        status, _, body = await raw_request(port, "GET /healthz HTTP/1.0\n")
        assert (status, body) == (200, b"ok\n")


# the check on its own ----------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "allowed", "expected"),
    [
        ("127.0.0.1:8081", (), True),
        ("127.0.0.2", (), True),
        ("[::1]:8081", (), True),
        ("localhost:8081", (), True),
        ("LocalHost.", (), True),
        ("app.localhost:8081", (), True),
        ("evil.example:8081", (), False),
        ("127.0.0.1.evil.example", (), False),
        ("localhost.evil.example", (), False),
        ("chat.example:443", ("chat.example",), True),
        ("CHAT.EXAMPLE.", ("chat.example",), True),
        ("www.chat.example", ("chat.example",), False),
        ("www.chat.example", (".chat.example",), True),
        ("chat.example", (".chat.example",), True),
        ("notchat.example", (".chat.example",), False),
        ("[2001:db8::1]:8081", ("2001:db8::1",), True),
        ("192.0.2.7:8081", ("192.0.2.7",), True),
        ("192.0.2.8:8081", ("192.0.2.7",), False),
        ("anything.example", ("*",), True),
        ("evil@chat.example", ("chat.example",), False),
        ("chat.example:8081/x", ("chat.example",), False),
        ("", ("chat.example",), False),
        ("[::1", (), False),
    ],
)
def test_host_allowed(host: str, allowed: tuple[str, ...], expected: bool) -> None:
    assert host_allowed(host, allowed) is expected


async def test_route_checks_the_host_before_anything_else() -> None:
    def request(path: str, **headers: str) -> Request:
        return Request(path, Headers(headers))

    common = {"allowed_origins": ("*",), "running": True, "info": lambda: {"secret": "roster"}}
    refused = await route(request("/", Host="evil.example", Upgrade="websocket"), **common)
    assert refused is not None and refused.status_code == 421  # even with every origin allowed
    info = await route(request("/ws-info", Host="evil.example"), allowed_hosts=("*",), **common)
    assert info is not None and info.status_code == 200


# the setting ---------------------------------------------------------------------
def test_allowed_hosts_are_read_as_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATBUS_DB", ":memory:")
    monkeypatch.setenv("CHATBUS_WEBSOCKET__ALLOWED_HOSTS", "Chat.Example.org., .example.net, [2001:DB8:0::1], *")
    transport = Hub(Settings.load()).transports["websocket"]
    assert isinstance(transport, WebSocketTransport)
    assert transport.settings.allowed_hosts == ["chat.example.org", ".example.net", "2001:db8::1", "*"]


@pytest.mark.parametrize("bad", ["https://chat.example.org", "chat.example.org:443", "chat.example.org/", "*.x", "."])
def test_allowed_hosts_refuses_urls_and_ports_saying_how_to_write_them(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        WebSocketSettings(allowed_hosts=[bad])
    assert "without scheme or port" in str(caught.value)


@pytest.mark.parametrize(
    ("host", "names"),
    [
        ("127.0.0.1", ("127.0.0.1",)),
        ("chat.example.org", ("chat.example.org",)),
        ("192.0.2.7", ("192.0.2.7",)),
        ("0.0.0.0", ()),
        ("::", ()),
        ("[::]", ()),
    ],
)
def test_the_listening_address_is_allowed_when_it_is_one_name(host: str, names: tuple[str, ...]) -> None:
    assert WebSocketSettings(host=host).host_names() == names
    assert WebSocketSettings(host=host, allowed_hosts=["a.example"]).host_names() == ("a.example", *names)
