"""How the WebSocket transport is found and configured."""

from __future__ import annotations

import pytest

from chatbus import ConfigError, Hub, Settings, TransportError
from chatbus.transports.websocket import WebSocketSettings, WebSocketTransport

from .helpers import running


def test_defaults() -> None:
    settings = WebSocketTransport().settings
    assert isinstance(settings, WebSocketSettings)
    assert (settings.host, settings.port) == ("127.0.0.1", 8081)
    assert settings.max_frame_bytes == 64 * 1024
    assert settings.auth_timeout == 10.0
    assert settings.replay_limit == 500
    assert settings.compression == "deflate"
    assert settings.allowed_origins == []


def test_the_hub_builds_it_from_chatbus_websocket_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATBUS_DB", ":memory:")
    monkeypatch.setenv("CHATBUS_WEBSOCKET__PORT", "9123")
    monkeypatch.setenv("CHATBUS_WEBSOCKET__ALLOWED_ORIGINS", "https://a.example, https://b.example/")
    monkeypatch.setenv("CHATBUS_WEBSOCKET__COMPRESSION", "none")
    monkeypatch.setenv("CHATBUS_WEBSOCKET__PING_INTERVAL", "none")
    monkeypatch.setenv("CHATBUS_WEBSOCKET__MAX_BACKLOG_BYTES", "200000")
    hub = Hub(Settings.load())
    transport = hub.transports["websocket"]
    assert isinstance(transport, WebSocketTransport)
    s = transport.settings
    assert s.port == 9123
    assert s.allowed_origins == ["https://a.example", "https://b.example"]
    assert s.compression is None and s.ping_interval is None
    assert s.max_backlog_bytes == 200_000


def test_the_earlier_variable_names_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATBUS_DB", ":memory:")
    monkeypatch.setenv("WEBSOCKET_HOST", "localhost")
    monkeypatch.setenv("WEBSOCKET_PORT", "8555")
    transport = Hub(Settings.load()).transports["websocket"]
    assert isinstance(transport, WebSocketTransport)
    assert (transport.settings.host, transport.settings.port) == ("localhost", 8555)


@pytest.mark.parametrize(
    ("options", "key"),
    [({"port": 70000}, "port"), ({"max_frame_bytes": "lots"}, "max_frame_bytes"), ({"colour": "red"}, "colour")],
)
def test_bad_settings_name_the_key(options: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=f"websocket.{key}"):
        WebSocketTransport(options)


@pytest.mark.parametrize(
    ("host", "public"),
    [
        ("127.0.0.1", False),
        ("localhost", False),
        ("::1", False),
        ("127.5.5.5", False),
        ("0.0.0.0", True),
        ("::", True),
        ("192.168.1.10", True),
        ("chat.example.org", True),
    ],
)
def test_listens_publicly(host: str, public: bool) -> None:
    assert WebSocketTransport(host=host).listens_publicly() is public


async def test_open_auth_on_a_public_address_is_refused_at_start() -> None:
    transport = WebSocketTransport(host="0.0.0.0", port=0)
    hub = Hub(Settings.isolated(db=":memory:"), transports=[transport], load_entrypoints=False)
    with pytest.raises(ConfigError, match="--allow-open-auth"):
        await hub.start()
    assert not transport.is_connected()


async def test_compression_can_be_switched_on() -> None:
    async with running(compression="deflate") as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        assert alice.ws.protocol.extensions, "permessage-deflate was negotiated"
        await alice.say("compressed " * 50)
        for client in (alice, bob):
            [frame] = await client.chat(1)
            assert frame["data"]["text"] == "compressed " * 50
        await alice.close()
        await bob.close()


async def test_a_port_in_use_is_a_clear_start_error() -> None:
    async with running() as first:
        transport = WebSocketTransport(host="127.0.0.1", port=first.port)
        hub = Hub(Settings.isolated(db=":memory:"), transports=[transport], load_entrypoints=False)
        with pytest.raises(TransportError) as error:
            await hub.start()
        assert f"port {first.port} on 127.0.0.1 is already in use" in str(error.value)
        assert "--port" in str(error.value)
        assert not hub.running
