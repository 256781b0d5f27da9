"""permessage-deflate: every client reads the same chat, compressed or not.

The server compresses each broadcast message once per negotiated window and
writes those bytes to every connection that negotiated it, so these tests mix
clients that negotiated different windows, different context takeover, and no
compression at all, in one chat, and check what each of them reads.
"""

from __future__ import annotations

import random
import zlib
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    enable_server_permessage_deflate,
)
from websockets.frames import Frame, Opcode

from chatbus import Settings
from chatbus.transports.websocket import server as server_module
from chatbus.transports.websocket.connection import ChatConnection

from .helpers import Client, Server, running, wait_until


def roomy() -> Settings:
    """Settings whose rate limit lets a test talk faster than people do."""
    return Settings.isolated(db=":memory:", rate_limit={"burst": 500, "per_second": 500.0, "per_hour": 100_000})


def deflate(**options: Any) -> dict[str, Any]:
    """Client options that offer permessage-deflate with these parameters only."""
    return {"compression": None, "extensions": [ClientPerMessageDeflateFactory(**options)]}


#: Who joins the chat, and what their client offers.
OFFERS: dict[str, dict[str, Any]] = {
    "plain": {"compression": None},
    "browser": deflate(client_max_window_bits=True),  # what Chromium offers
    "bare": deflate(client_max_window_bits=None),  # permessage-deflate and nothing else
    "small": deflate(server_max_window_bits=9, client_max_window_bits=9),
    "medium": deflate(server_max_window_bits=10, client_no_context_takeover=True),
}


def texts() -> list[str]:
    """Messages that tell the windows apart: a block of 700 characters said
    five times can only be decoded with the right window by a client whose
    window is smaller than the distance back (512 bytes for 9 bits)."""
    rng = random.Random(15)
    block = " ".join(f"{rng.choice(['fan', 'out', 'chat', 'ünï', '🙂'])}{rng.randrange(1000)}" for _ in range(100))
    return ["hello", "é ünïcödé 🙂 " * 30, block[:700] * 5, "short again", "x" * 3999]


async def join(server: Server, name: str) -> Client:
    client = await Client.open(server.url, **OFFERS[name])
    for extension in client.ws.protocol.extensions:
        assert isinstance(extension, PerMessageDeflate)
        keep_to_window(extension)
    await client.sign_in(name)
    return client


def keep_to_window(extension: PerMessageDeflate) -> None:
    """Make a client decode as strictly as its window: inflating a few bytes at
    a time, a back-reference further than the window it negotiated is an
    error (a decoder that inflates a whole message at once would let it pass).
    Messages compressed for a larger window than the client's fail here."""
    library_decode = extension.decode

    def decode(frame: Frame, *, max_size: int | None = None) -> Frame:
        if not frame.rsv1 or not extension.remote_no_context_takeover:
            return library_decode(frame, max_size=max_size)
        inflater = zlib.decompressobj(wbits=-extension.remote_max_window_bits)
        data, out = bytes(frame.data) + b"\x00\x00\xff\xff", bytearray()
        while data:
            out += inflater.decompress(data, 16)
            data = inflater.unconsumed_tail
        return Frame(frame.opcode, bytes(out), frame.fin)

    extension.decode = decode  # type: ignore[method-assign]


def server_connections(server: Server) -> list[ChatConnection]:
    """The server's side of every open chat connection (for what no client can see)."""
    return list(server.transport._connections)  # what the server holds per connection


async def test_plain_and_compressed_clients_read_the_same_chat_in_order() -> None:
    async with running(settings=roomy(), compression="deflate") as server:
        clients = {name: await join(server, name) for name in OFFERS}
        # What each client negotiated: the server keeps no context from one
        # message to the next, within the window the client asked for.
        windows = {}
        for name, client in clients.items():
            extensions = client.ws.protocol.extensions
            if name == "plain":
                assert extensions == []
                continue
            [extension] = extensions
            assert isinstance(extension, PerMessageDeflate)
            assert extension.remote_no_context_takeover, name
            windows[name] = extension.remote_max_window_bits
        assert windows == {"browser": 12, "bare": 12, "small": 9, "medium": 10}
        assert clients["medium"].ws.protocol.extensions[0].local_no_context_takeover

        # Everyone talks at once; everyone reads everything, in one order.
        sent = [(name, text) for text in texts() for name in clients]
        for name, text in sent:
            await clients[name].say(text)
        read = {}
        for name, client in clients.items():
            frames = await client.chat(len(sent), timeout=10)
            read[name] = [(f["data"]["id"], f["data"]["sender"], f["data"]["text"]) for f in frames]
        first = read["plain"]
        assert all(frames == first for frames in read.values())
        assert sorted(message[1:] for message in first) == sorted(sent)
        ids = [message[0] for message in first]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        for name in clients:  # each sender's messages in the order sent
            assert [text for _, sender, text in first if sender == name] == texts()
        for client in clients.values():
            await client.still_works()
            await client.close()


class CountingConnection(ClientConnection):
    """A client connection that keeps every byte the server sent it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.raw = bytearray()

    def data_received(self, data: bytes) -> None:
        self.raw += data
        super().data_received(data)


async def test_compressed_messages_take_fewer_bytes_on_the_wire() -> None:
    text = "Please review the fan-out change in broadcast.py before lunch. " * 40
    async with running(settings=roomy(), compression="deflate") as server:
        readers = {}
        for name in ("plain", "browser"):
            readers[name] = await Client.open(server.url, create_connection=CountingConnection, **OFFERS[name])
            await readers[name].sign_in(name)
        writer = await join(server, "small")
        before = {name: len(_raw(client)) for name, client in readers.items()}
        await writer.say(text)
        for client in readers.values():
            [frame] = await client.chat(1)
            assert frame["data"]["text"] == text
        got = {name: bytes(_raw(client)[before[name] :]) for name, client in readers.items()}
        # The message frame: a text frame, with RSV1 (compressed) for the deflate client only.
        assert got["plain"][0] == 0x81
        assert got["browser"][0] == 0xC1
        assert len(got["browser"]) * 5 < len(got["plain"]), (len(got["browser"]), len(got["plain"]))
        for client in (*readers.values(), writer):
            await client.close()


def _raw(client: Client) -> bytearray:
    assert isinstance(client.ws, CountingConnection)
    return client.ws.raw


async def test_idle_compressed_connections_hold_no_compressor() -> None:
    async with running(settings=roomy(), compression="deflate") as server:
        clients = [await join(server, name) for name in ("browser", "medium", "plain")]
        await clients[0].say("something to compress " * 20)
        for client in clients:
            await client.chat(1)
            await client.still_works()  # a reply of its own, compressed for it alone
        connections = server_connections(server)
        assert len(connections) == 3
        compressed = [c for c in connections if c.protocol.extensions]
        assert len(compressed) == 2
        for connection in compressed:
            [extension] = connection.protocol.extensions
            assert isinstance(extension, PerMessageDeflate)
            assert extension.local_no_context_takeover
            assert not hasattr(extension, "encoder"), "a compressor outlived the message it compressed"
            if extension.remote_no_context_takeover:  # the client asked for it: no decoder kept either
                assert not hasattr(extension, "decoder")
        for client in clients:
            await client.close()


async def test_what_compressing_clients_send_is_understood() -> None:
    # A client with context takeover compresses each message against the
    # earlier ones: the server must decode them in order, with the same state.
    lines = [f"line {n}: the same words again and again, the same words again" for n in range(20)]
    async with running(settings=roomy(), compression="deflate") as server:
        reader = await join(server, "plain")
        for name in ("browser", "medium"):
            writer = await join(server, name)
            # Only "medium" asked to compress each message on its own.
            assert writer.ws.protocol.extensions[0].local_no_context_takeover is (name == "medium")
            for line in lines:
                await writer.say(line)
            frames = await reader.chat(len(lines))
            assert [f["data"]["text"] for f in frames] == lines
            assert {f["data"]["sender"] for f in frames} == {name}
            await writer.close()
        await reader.close()


async def test_a_compressed_frame_that_inflates_past_the_limit_is_refused() -> None:
    async with running(settings=roomy(), compression="deflate", max_frame_bytes=4096) as server:
        bystander = await join(server, "browser")
        bomb = await join(server, "bare")
        # 1 MB of text in about a kilobyte on the wire.
        encoder = zlib.compressobj(wbits=-12)
        payload = encoder.compress(b"a" * 1_000_000) + encoder.flush(zlib.Z_SYNC_FLUSH)
        assert len(payload) < 2000
        # Sent as it is, past the client's own compression: RSV1 set by hand.
        raw = bytearray(Frame(Opcode.TEXT, payload[:-4]).serialize(mask=True))
        raw[0] |= 0x40
        bomb.ws.transport.write(bytes(raw))
        code, _ = await bomb.closed()
        assert code == 1009
        await bystander.still_works()
        await bystander.close()


async def test_typing_reaches_everyone_but_the_typist_when_compressed() -> None:
    async with running(settings=roomy(), compression="deflate") as server:
        alice, bob = await join(server, "browser"), await join(server, "small")
        await alice.send("typing", {"room": "general"})
        await alice.say("done typing")
        typing = await bob.expect("typing", skip=frozenset({"presence"}))
        assert typing["userId"] == "browser"
        [frame] = await bob.chat(1)
        assert frame["data"]["text"] == "done typing"
        # alice's next frame is the message, not her own typing.
        [own] = await alice.chat(1)
        assert own["data"]["text"] == "done typing"
        assert all(f["type"] != "typing" for f in alice.received)
        await alice.close()
        await bob.close()


async def test_connections_whose_compression_cannot_be_shared_still_get_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # websockets' default permessage-deflate keeps context per connection:
    # such a connection's frames cannot be shared and go through its own
    # compressor, in order, like the others.
    monkeypatch.setattr(server_module, "offered_extensions", lambda _: enable_server_permessage_deflate(None))
    async with running(settings=roomy(), compression="deflate") as server:
        alice, bob, carol = await join(server, "browser"), await join(server, "plain"), await join(server, "small")
        assert not alice.ws.protocol.extensions[0].remote_no_context_takeover
        await wait_until(lambda: len(server_connections(server)) == 3)
        assert [c.wire_format for c in server_connections(server)].count(None) == 2
        sent = [f"message {n} " + "with context " * n for n in range(30)]
        for text in sent:  # each waits for its own echo: one order for everyone
            await alice.say(text)
            [echo] = await alice.chat(1)
            assert echo["data"]["text"] == text
        for client in (bob, carol):
            frames = await client.chat(len(sent))
            assert [f["data"]["text"] for f in frames] == sent
        burst = [f"burst {n}" for n in range(30)]
        for text in burst:  # many frames in one flush
            await alice.say(text)
        for client in (alice, bob, carol):
            frames = await client.chat(len(burst))
            assert [f["data"]["text"] for f in frames] == burst
            await client.close()


async def test_compression_off_negotiates_nothing() -> None:
    async with running(settings=roomy(), compression=None) as server:
        client = await join(server, "browser")
        assert client.ws.protocol.extensions == []
        await client.say("plain as before")
        [frame] = await client.chat(1)
        assert frame["data"]["text"] == "plain as before"
        await client.close()
