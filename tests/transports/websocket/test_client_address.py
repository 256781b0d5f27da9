"""Who a connection's client is: the peer, or what a trusted reverse proxy says.

Real connections come from other loopback addresses (127.0.0.2, 127.0.0.3)
so that a client and a proxy on 127.0.0.1 can be told apart.
"""

from __future__ import annotations

import logging
from ipaddress import ip_network

import pytest

from chatbus import ConfigError
from chatbus.transports.websocket import WebSocketSettings, WebSocketTransport
from chatbus.transports.websocket.proxies import client_address, parse_address

from .helpers import Client, running

PROXIES = [ip_network("127.0.0.1"), ip_network("10.0.0.0/8"), ip_network("::1")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # From a peer that is not a trusted proxy, the header is ignored.
        (("198.51.100.4", 5000), ["203.0.113.9"], "198.51.100.4"),
        # A trusted proxy names the client.
        (("127.0.0.1", 5000), ["203.0.113.9"], "203.0.113.9"),
        # Whatever the client wrote before reaching the proxy is left of the address the proxy saw.
        (("127.0.0.1", 5000), ["6.6.6.6, 203.0.113.9"], "203.0.113.9"),
        # Through two trusted proxies; several headers read as one list.
        (("127.0.0.1", 5000), ["6.6.6.6, 203.0.113.9", "10.1.2.3"], "203.0.113.9"),
        # Only proxies in the chain: the farthest one is who connected.
        (("127.0.0.1", 5000), ["10.9.9.9, 10.1.2.3"], "10.9.9.9"),
        # A trusted proxy without the header is itself the client.
        (("127.0.0.1", 5000), [], "127.0.0.1"),
        # An entry that is no address stops the walk at the last proxy known.
        (("127.0.0.1", 5000), ["203.0.113.9, unknown"], "127.0.0.1"),
        (("127.0.0.1", 5000), ["203.0.113.9, garbage, 10.1.2.3"], "10.1.2.3"),
        # Ports and brackets as some proxies write them; IPv6.
        (("127.0.0.1", 5000), ["203.0.113.9:4711"], "203.0.113.9"),
        (("::1", 5000, 0, 0), ["[2001:db8::7]:4711"], "2001:db8::7"),
        (("::1", 5000, 0, 0), ["2001:db8::7"], "2001:db8::7"),
        # A dual-stack socket's IPv4 peer matches the IPv4 proxy entry.
        (("::ffff:127.0.0.1", 5000, 0, 0), ["203.0.113.9"], "203.0.113.9"),
        (("::ffff:198.51.100.4", 5000, 0, 0), ["203.0.113.9"], "198.51.100.4"),
    ],
)
def test_the_client_is_the_rightmost_address_that_is_not_a_trusted_proxy(
    peer: tuple[object, ...], forwarded: list[str], expected: str
) -> None:
    assert client_address(peer, forwarded, PROXIES) == expected


def test_without_trusted_proxies_the_header_is_never_read() -> None:
    assert client_address(("127.0.0.1", 1), ["203.0.113.9"], []) == "127.0.0.1"
    assert client_address(None, ["203.0.113.9"], PROXIES) == "unknown"
    assert parse_address("not an address") is None


def test_trusted_proxies_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from chatbus import Hub, Settings

    monkeypatch.setenv("CHATBUS_DB", ":memory:")
    monkeypatch.setenv("CHATBUS_WEBSOCKET__TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8, ::1")
    transport = Hub(Settings.load()).transports["websocket"]
    assert isinstance(transport, WebSocketTransport)
    assert transport.settings.trusted_proxies == PROXIES
    assert WebSocketSettings(trusted_proxies='["192.168.1.7/24"]').trusted_proxies == [ip_network("192.168.1.0/24")]


def test_a_proxy_given_by_name_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"websocket\.trusted_proxies .*'nginx' is not an IP address or network"):
        WebSocketTransport({"trusted_proxies": "127.0.0.1,nginx"})


def _signed_in_from(caplog: pytest.LogCaptureFixture, user: str) -> list[str]:
    lines = [record.getMessage() for record in caplog.records if record.name == "chatbus.transports.websocket"]
    return [line.rsplit(" from ", 1)[1] for line in lines if f"({user}): signed in from " in line]


async def test_the_sign_in_line_names_the_client_a_trusted_proxy_forwarded(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "chatbus.transports.websocket")
    async with running(trusted_proxies=["127.0.0.1"]) as server:
        # A proxy on 127.0.0.1 (trusted) forwarding a client.
        proxied = await Client.open(server.url, additional_headers={"X-Forwarded-For": "203.0.113.9"})
        # A client connecting directly from 127.0.0.3 with a forged header.
        forger = await Client.open(
            server.url, additional_headers={"X-Forwarded-For": "203.0.113.66"}, local_addr=("127.0.0.3", 0)
        )
        async with proxied, forger:
            await proxied.sign_in("alice")
            await forger.sign_in("mallory")
            connections = {c.identity.user_id: c for c in server.transport._connections if c.identity}
            assert connections["alice"].client_address == "203.0.113.9"
            assert connections["mallory"].client_address == "127.0.0.3"
    assert _signed_in_from(caplog, "alice") == ["203.0.113.9"]
    assert _signed_in_from(caplog, "mallory") == ["127.0.0.3"]


async def test_without_trusted_proxies_the_peer_is_the_client(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "chatbus.transports.websocket")
    async with (
        running() as server,
        await Client.open(
            server.url, additional_headers={"X-Forwarded-For": "203.0.113.9"}, local_addr=("127.0.0.2", 0)
        ) as client,
    ):
        await client.sign_in("alice", lastSeenId=0)
    assert _signed_in_from(caplog, "alice") == ["127.0.0.2, 0 missed message(s) after 0"]
