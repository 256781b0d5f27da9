"""Who a connection's client is, when chatbus runs behind a reverse proxy.

Behind nginx every connection comes from the proxy's address; the proxy
names the real client in ``X-Forwarded-For`` (``client, proxy1, proxy2``,
each hop appending the address it was reached from). Anyone can send that
header, so it is believed only from the proxies the operator listed in
``trusted_proxies``, and only as far back as the chain stays within them:
the client is the right-most address that is not itself a trusted proxy.
An address a client wrote into the header before it reached the first
proxy is never taken.

The answer is what chatbus logs and what per-address decisions (limits,
bans) should use; it is :attr:`ChatConnection.client_address
<chatbus.transports.websocket.connection.ChatConnection.client_address>`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from websockets.asyncio.server import ServerConnection

__all__ = ["client_address", "client_of", "parse_address"]

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


def parse_address(text: str) -> Address | None:
    """An IP address from a peer or a header entry, or None when it is not one.

    Accepts ``[::1]``, ``[::1]:443`` and ``203.0.113.7:5000`` as some proxies
    write them, and maps IPv4-mapped IPv6 (``::ffff:127.0.0.1``) to IPv4, so
    that ``127.0.0.1`` in ``trusted_proxies`` matches a dual-stack socket's peer.
    """
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address.version == network.version and address in network for network in proxies)


def client_address(peer: Any, forwarded_for: Iterable[str], proxies: Sequence[Network]) -> str:
    """The client's address: the peer, or what trusted proxies say in front of it.

    ``peer`` is the socket's peer (``(host, port, ...)`` as asyncio gives it,
    or a string); ``forwarded_for`` the values of every ``X-Forwarded-For``
    header in order. An entry that is not an address stops the walk at the
    last proxy that is known, which is then the answer.
    """
    host = peer[0] if isinstance(peer, tuple) and peer else peer
    if not isinstance(host, str):
        return "unknown"
    address = parse_address(host)
    if address is None:
        return host
    if not proxies or not _trusted(address, proxies):
        return str(address)
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        named = parse_address(hop)
        if named is None:
            break
        address = named
        if not _trusted(address, proxies):
            break
    return str(address)


def client_of(connection: ServerConnection, proxies: Sequence[Network]) -> str:
    """:func:`client_address` of a connection whose opening handshake has been read."""
    request = connection.request
    forwarded = request.headers.get_all("X-Forwarded-For") if request is not None else []
    return client_address(connection.remote_address, forwarded, proxies)
