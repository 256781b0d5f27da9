"""examples/deploy/chatbus.toml answers to the name nginx serves, and only to it (and loopback)."""

from __future__ import annotations

import re

import pytest

from chatbus import Hub, Settings
from chatbus.transports.websocket import WebSocketTransport
from chatbus.transports.websocket.http import host_allowed

from .nginx import EXAMPLE

TOML = EXAMPLE.with_name("chatbus.toml")


def test_the_example_allows_the_names_nginx_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATBUS_AUTH__TOKENS", '{"s3cret": {"userId": "alice"}}')
    transport = Hub(Settings.load(TOML)).transports["websocket"]
    assert isinstance(transport, WebSocketTransport)
    allowed = transport.settings.host_names()
    served = set(re.findall(r"^\s*server_name\s+([^;]+);", EXAMPLE.read_text(), re.MULTILINE))
    names = {name for line in served for name in line.split()}
    assert names == {"chat.example.org"}
    for name in names:
        # nginx passes "$host:$server_port" on.
        assert host_allowed(f"{name}:443", allowed), name
    assert not host_allowed("evil.example:443", allowed)
    assert host_allowed("127.0.0.1:8081", allowed)  # Prometheus and chatbus status on the machine
