import socket

import pytest

from tests.conftest import NetworkAccessError


def test_reaching_a_public_address_fails_loudly() -> None:
    with socket.socket() as sock, pytest.raises(NetworkAccessError):
        sock.connect(("192.0.2.1", 443))


def test_looking_up_a_public_name_fails_loudly() -> None:
    with pytest.raises(NetworkAccessError):
        socket.getaddrinfo("api.telegram.org", 443)


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.socket() as client:
            client.connect(server.getsockname())
