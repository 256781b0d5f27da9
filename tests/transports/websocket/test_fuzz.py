"""Fuzzing with Hypothesis against a running server, over real sockets.

While alice and bob chat, each example throws random frames at the chat
port (JSON of every shape and type, huge numbers, deep nesting, lone
surrogates, raw bytes as text and binary frames, frames over the size
limit) from a connection of its own, and a random raw HTTP request. After
each example: the server still answers ``/healthz``, alice's and bob's
messages have all arrived, in order, and everything stored since is a
well-formed message.

Bounded for CI: a fixed number of examples, derandomized (the same ones on
every run), no example database. The server lives across examples in one
event loop of its own (:class:`asyncio.Runner`), which runs while an example runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from chatbus import Hub, Message, Settings, SQLiteStore, valid_name
from chatbus.transports.websocket import WebSocketTransport
from chatbus.transports.websocket.wire import MAX_ID

from .helpers import TIMEOUT, Client, http_get

FRAME_LIMIT = 4096
MAX_TEXT = 500
#: Close codes the protocol names for what a fuzzer sends: binary 1003, too big 1009, policy 1008.
CLOSES = {1003, 1008, 1009}

# JSON of every shape ---------------------------------------------------------------
HUGE = st.sampled_from([2**53, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, -(2**64), 10**40, 2**1000, -1, 0, MAX_ID])
NUMBERS = st.integers() | HUGE | st.floats(allow_nan=True, allow_infinity=True)
LONE_SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
TEXTS = (
    st.text(max_size=40)
    | st.text(st.characters() | LONE_SURROGATES, max_size=10)
    | st.sampled_from(["", " ", "general", "dev", "../etc", "a" * 65, "@alice hi", "/help", "\u202e", "x" * 600])
)
SCALARS = st.none() | st.booleans() | NUMBERS | TEXTS
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXTS, inner, max_size=4),
    max_leaves=12,
)
KEYS = st.sampled_from(
    [
        "userId", "role", "token", "lastSeenId", "epoch", "rooms", "text", "id", "mentions",
        "replyTo", "room", "before", "limit", "emoji", "on", "attachments",
    ]
)  # fmt: skip
TYPES = st.sampled_from(["auth", "message", "ping", "typing", "history", "edit", "delete", "react"]) | TEXTS
DATA = st.dictionaries(KEYS | TEXTS, JSONISH, max_size=6) | JSONISH


@st.composite
def structured(draw: st.DrawFn) -> str:
    """A frame shaped like the protocol's, with wrong values."""
    frame: dict[str, Any] = {"type": draw(TYPES)}
    if draw(st.booleans()):
        frame["data"] = draw(DATA)
    if draw(st.booleans()):
        frame[draw(TEXTS)] = draw(JSONISH)
    return json.dumps(frame, ensure_ascii=draw(st.booleans()))


#: The fields of each frame type a client may send, and a good value for each.
SHAPES: dict[str, dict[str, Any]] = {
    "auth": {"userId": "mallory", "role": "dev", "token": "t", "lastSeenId": 1, "epoch": "e", "rooms": ["general"]},
    "message": {"text": "hi", "id": "c1", "mentions": ["alice"], "replyTo": 1, "room": "general"},
    "history": {"before": 2, "limit": 10, "room": "dev"},
    "typing": {"room": "general"},
    "edit": {"id": 1, "text": "changed"},
    "delete": {"id": 1},
    "react": {"id": 1, "emoji": "+1", "on": True},
}
IDS = HUGE | st.integers(-3, 50) | JSONISH


@st.composite
def protocol(draw: st.DrawFn, kind: str) -> str:
    """A frame of a type the server knows with one field hostile (or none); the others good or absent."""
    fields = SHAPES[kind]
    bad = draw(st.sampled_from([*sorted(fields), None]))
    data = {}
    for key, good in fields.items():
        if key == bad:
            data[key] = draw(IDS if isinstance(good, int) and not isinstance(good, bool) else JSONISH)
        elif draw(st.booleans()):
            data[key] = good
    return json.dumps({"type": kind, "data": data})


#: One frame of every type the server knows, in a random order.
EVERY_TYPE = st.tuples(*(protocol(kind) for kind in sorted(SHAPES))).flatmap(st.permutations)


@st.composite
def nested(draw: st.DrawFn) -> str:
    """Deep nesting, within the frame limit (Python's parser recurses)."""
    depth = draw(st.integers(1, FRAME_LIMIT // 2 - 40))
    opening, closing = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    inner = opening * depth + "1" + closing * depth
    if draw(st.booleans()):
        return '{"type": "message", "data": {"text": ' + inner + "}}"
    return inner


#: What one fuzzing connection sends: (payload, as a text frame?).
FRAMES = st.one_of(
    structured().map(lambda text: (text, True)),
    nested().map(lambda text: (text, True)),
    st.text(max_size=200).map(lambda text: (text, True)),
    st.binary(max_size=300).map(lambda raw: (raw.decode("latin-1"), True)),
    st.binary(max_size=300).map(lambda raw: (raw, True)),  # bytes sent as text: invalid UTF-8 as often as not
    st.binary(max_size=300).map(lambda raw: (raw, False)),
    st.integers(FRAME_LIMIT + 1, 2 * FRAME_LIMIT).map(lambda n: ("x" * n, True)),
    st.sampled_from(["9" * 5000, "NaN", "Infinity", "-0", "1e99999", "\ufeff{}", "{}", "[]", "null"]).map(
        lambda text: (text, True)
    ),
)

# raw HTTP -------------------------------------------------------------------------------
HEADER_NAMES = st.sampled_from(
    ["Host", "Origin", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Content-Length",
     "Transfer-Encoding", "X-Forwarded-For", "Accept", "Cookie"]
) | st.text(string.ascii_letters + "-", min_size=1, max_size=20)  # fmt: skip
HEADER_VALUES = st.sampled_from(
    ["127.0.0.1", "evil.example", "localhost:1", "[::1]", "websocket", "Upgrade", "13", "chunked", "-1",
     "http://evil.example", "dGhlIHNhbXBsZSBub25jZQ==", "", "a" * 9000]
) | st.text(max_size=60)  # fmt: skip


@st.composite
def http_requests(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(["GET", "HEAD", "POST", "DELETE", "OPTIONS", "BREW"]) | st.text(max_size=8))
    path = draw(
        st.sampled_from(["/", "/healthz", "/ws-info", "/readyz", "/metrics", "/static/../server.py", "*", ""])
        | st.text(max_size=40).map(lambda text: "/" + text)
    )
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2", "HTTP/1.1 x", ""]))
    lines = [f"{method} {path} {version}"]
    for name, value in draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=8)):
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogatepass")


# the chat under test -------------------------------------------------------------------
@dataclass(repr=False)
class Chat:
    """A running server, alice and bob chatting on it, and what has been checked so far."""

    runner: asyncio.Runner
    hub: Hub
    transport: WebSocketTransport
    alice: Client
    bob: Client
    sent: int = 0
    checked: int = 0
    heard: dict[str, list[str]] = field(default_factory=lambda: {"alice": [], "bob": []})

    @property
    def port(self) -> int:
        return self.transport.port

    def __repr__(self) -> str:  # what a failing example shows
        return f"<chat on port {self.port}: {self.sent} rounds, checked up to message {self.checked}>"


@pytest.fixture
def chat(tmp_path: Path) -> Iterator[Chat]:
    with asyncio.Runner() as runner:
        transport = WebSocketTransport(
            {
                "host": "127.0.0.1",
                "port": 0,
                "max_frame_bytes": FRAME_LIMIT,
                "ping_interval": None,  # the loop pauses between examples
                # The fuzzer's connection is refused often and on purpose: the
                # flood limits are tested elsewhere, here it is what is sent.
                "refused_burst": 1_000_000,
                "control_burst": 1_000_000,
                "auth_failure_delay": 0,
                "auth_failures_before_close": 1_000_000,
                "auth_failures_per_address": 1_000_000,
            }
        )
        hub = Hub(
            Settings.isolated(db=":memory:", max_text_length=MAX_TEXT, ratelimit={"burst": 1_000_000}),
            store=SQLiteStore(tmp_path / "chat.db"),
            transports=[transport],
            load_entrypoints=False,
        )

        async def start() -> Chat:
            await hub.start()
            alice, bob = await Client.open(transport.url), await Client.open(transport.url)
            await alice.sign_in("alice")
            await bob.sign_in("bob")
            return Chat(runner, hub, transport, alice, bob)

        chat = runner.run(asyncio.wait_for(start(), TIMEOUT))
        try:
            yield chat
        finally:

            async def stop() -> None:
                for client in (chat.alice, chat.bob):
                    await client.close()
                await hub.stop()

            runner.run(asyncio.wait_for(stop(), 15))


async def fuzz_frames(chat: Chat, frames: list[tuple[str | bytes, bool]], sign_in: bool) -> None:
    """Send ``frames`` from a connection of their own; what comes back is never a server failure."""
    client = await Client.open(chat.transport.url)
    if sign_in:
        await client.sign_in("mallory")
    answers: list[dict[str, Any]] = []

    async def read() -> int | None:
        try:
            async for raw in client.ws:
                answers.append(json.loads(raw))
        except ConnectionClosed:
            pass
        rcvd = client.ws.protocol.close_rcvd
        return rcvd.code if rcvd is not None else None

    reader = asyncio.create_task(read())
    try:
        for payload, text in frames:
            if reader.done():
                break
            try:
                await client.ws.send(payload, text=text)
            except ConnectionClosed:
                break
        if not reader.done():
            with contextlib.suppress(ConnectionClosed):  # the server may have just closed it
                await client.send("ping")  # everything before it has been answered once its pong is here
                async with asyncio.timeout(TIMEOUT):
                    while not reader.done() and not any(answer["type"] == "pong" for answer in answers):
                        await asyncio.sleep(0.005)
    finally:
        if not reader.done():
            await client.ws.close()
        code = await asyncio.wait_for(reader, TIMEOUT)
    assert code in CLOSES | {1000, None}, code
    failures = [a for a in answers if a["type"] == "error" and a["data"]["code"] == "INTERNAL_ERROR"]
    assert failures == [], failures


async def fuzz_http(chat: Chat, request: bytes) -> None:
    """Send one raw HTTP request; the server answers with a status line or closes, never hangs or fails."""
    reader, writer = await asyncio.open_connection("127.0.0.1", chat.port)
    try:
        writer.write(request)
        await writer.drain()
        first = await asyncio.wait_for(reader.readline(), TIMEOUT)
    except ConnectionResetError:
        return  # answered and closed before the whole request was sent (a line too long)
    finally:
        writer.close()
    if first:
        assert first.startswith(b"HTTP/1.1 "), first
        status = int(first.split()[1])
        assert status < 500, first  # a 500 is a bug: route() raised


async def honest_round(chat: Chat) -> None:
    """alice and bob each say one more thing."""
    chat.sent += 1
    await chat.alice.say(f"alice {chat.sent}", id=f"a{chat.sent}")
    await chat.bob.say(f"bob {chat.sent}", id=f"b{chat.sent}")


async def hear_everything(chat: Chat) -> None:
    """Read until both have heard both, checking the honest messages come in order."""
    for name, client in (("alice", chat.alice), ("bob", chat.bob)):
        heard = chat.heard[name]
        async with asyncio.timeout(TIMEOUT):
            while len(heard) < 2 * chat.sent:
                frame = await client.recv()
                if frame["type"] not in ("message", "agent_response"):
                    # presence, typing, and what mallory's edits and reactions cause; never an error
                    assert frame["type"] != "error", frame
                    continue
                data = frame["data"]
                if data["sender"] in ("alice", "bob") and data["transport"] == "websocket":
                    heard.append(data["text"])
        expected = [text for n in range(1, chat.sent + 1) for text in (f"alice {n}", f"bob {n}")]
        assert heard == expected, name


async def stored_well_formed(chat: Chat) -> None:
    """Every message stored since the last check is one the protocol allows."""
    store = chat.hub.store
    found = await store.since(chat.checked, 100_000, None)
    for message in found:
        assert well_formed(message), message
        if message.reply_to is not None:
            assert message.reply_to < message.id and await store.get(message.reply_to) is not None
    if found:
        chat.checked = found[-1].id


def well_formed(message: Message) -> bool:
    def utf8(text: str) -> bool:
        try:
            text.encode()
        except UnicodeEncodeError:
            return False
        return True

    return (
        1 <= message.id <= MAX_ID
        and isinstance(message.text, str)
        and bool(message.text.strip())
        and len(message.text) <= MAX_TEXT
        and utf8(message.text)
        and valid_name(message.sender)
        and valid_name(message.room)
        and message.kind in ("human", "agent", "system")
        and (message.reply_to is None or 1 <= message.reply_to <= MAX_ID)
        and (message.client_id is None or (len(message.client_id) <= 128 and utf8(message.client_id)))
        and utf8(message.sender_role)
        and all(isinstance(name, str) for name in message.mentions)
        and message.timestamp.utcoffset() is not None
    )


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    # The server lives on between examples, so a failing one cannot be replayed
    # the same way: report it as found instead of shrinking it.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    known=EVERY_TYPE,
    frames=st.lists(FRAMES, max_size=6),
    sign_in=st.sampled_from([True, True, True, False]),
    request=http_requests(),
)
def test_random_frames_and_requests_never_disturb_a_live_chat(
    chat: Chat,
    known: list[str],
    frames: list[tuple[str | bytes, bool]],
    sign_in: bool,
    request: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.clear()
    frames = [(text, True) for text in known] + frames  # the known types first: the others may close the connection

    async def example() -> None:
        await asyncio.gather(honest_round(chat), fuzz_frames(chat, frames, sign_in), fuzz_http(chat, request))
        await hear_everything(chat)
        await stored_well_formed(chat)
        status, _, body = await http_get(chat.port, "/healthz")
        assert (status, body) == (200, b"ok\n")

    chat.runner.run(asyncio.wait_for(example(), 20))
    # No bug was hit: nothing logged as an error, no traceback.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
