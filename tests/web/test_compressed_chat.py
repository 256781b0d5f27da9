"""The web chat page in Chromium with permessage-deflate on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from chatbus.core.hub import Hub
from chatbus.transports.websocket import WebSocketTransport

from .conftest import ChatServer, Pages, join, message_items, send


class CompressingServer(ChatServer):
    """The test server with compression switched on, whatever the default is."""

    def start(self) -> None:
        async def start() -> tuple[Hub, int]:
            transport = WebSocketTransport(host="127.0.0.1", port=self.port, compression="deflate")
            hub = Hub(self.settings(), transports=[transport], load_entrypoints=False)
            await hub.start()
            return hub, transport.port

        self.hub, self.port = self.call(start())

    def wire_formats(self) -> list[str]:
        """How the server writes broadcasts to each open connection."""

        def formats() -> list[str]:
            assert self.hub is not None
            transport = self.hub.transports["websocket"]
            assert isinstance(transport, WebSocketTransport)
            return [repr(c.wire_format) for c in transport._connections]

        return self.run(formats)


@pytest.fixture
def server(tmp_path: Path, server_options: dict[str, Any]) -> Iterator[ChatServer]:
    chat = CompressingServer(tmp_path / "chat.db", settings=server_options)
    try:
        chat.start()
        yield chat
    finally:
        chat.close()


def test_the_page_chats_over_compressed_frames(pages: Pages, server: CompressingServer) -> None:
    alice = pages.open()
    # What the browser's developer tools show: the handshake's answer.
    answers: list[dict[str, str]] = []
    devtools = alice.context.new_cdp_session(alice)
    devtools.on(
        "Network.webSocketHandshakeResponseReceived", lambda event: answers.append(event["response"]["headers"])
    )
    devtools.send("Network.enable")
    join(alice, "alice")
    bob = pages.join("bob")

    long = "The build is green again, thanks to everyone who looked at the flaky test. " * 20
    send(alice, long)
    expect(message_items(bob, long)).to_have_count(1)
    expect(message_items(alice, long)).to_have_count(1)
    send(bob, "Ünïcödé works too 🙂")
    expect(message_items(alice, "Ünïcödé works too 🙂")).to_have_count(1)

    [extensions] = [
        value for headers in answers for name, value in headers.items() if name.lower() == "sec-websocket-extensions"
    ]
    assert "permessage-deflate" in extensions
    assert "server_no_context_takeover" in extensions
    # Both pages get the same compressed bytes, made once per message.
    assert server.wire_formats() == ["WireFormat(deflate, window_bits=12, {'memLevel': 5, 'level': 1})"] * 2
