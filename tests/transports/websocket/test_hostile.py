"""Hostile input on some connections while two people keep chatting on others."""

from __future__ import annotations

import asyncio
import json
import logging
import random

import pytest
from websockets.exceptions import ConnectionClosed

from chatbus import Settings

from .helpers import Client, Server, http_get, running

FRAME_LIMIT = 64 * 1024


Payload = tuple[bytes | str, bool]  # what to send, and whether as a text frame


def hostile_payloads(rng: random.Random) -> list[Payload]:
    """Frames no well-behaved client sends."""
    texts = [
        "[" * 10_000 + "]" * 10_000,  # deep nesting within the size limit
        '{"a":' * 3000 + "1" + "}" * 3000,
        '{"type": "message", "data": {"text": ' + "[" * 5000 + "]" * 5000 + "}}",
        "9" * 5000,  # a number too long to convert
        '{"type": "message", "data": {"text": "\\udc00"}}',
        '{"type": "auth", "data": {"userId": "' + "a" * 5000 + '"}}',
        '{"type": "auth", "data": {"userId": {"$ne": null}}}',
        '{"type": "auth", "data": {"userId": "x", "lastSeenId": 1e308}}',
        '{"type": "history", "data": {"limit": -1}}',
        '{"type": null, "data": null}',
        "x" * (FRAME_LIMIT + 1),  # over the frame limit: closes 1009
        "\ufeff{}",
        "NaN",
        "",
    ]
    payloads: list[Payload] = [(text, True) for text in texts]
    payloads.append((b"\x89\x00binary", False))  # binary: closes 1003
    payloads.append((b'{"type": "ping", "bad": "\xc3\x28"}', True))  # invalid UTF-8
    for _ in range(60):
        raw = rng.randbytes(rng.choice((1, 7, 64, 1000, 8000)))
        roll = rng.random()
        if roll < 0.1:
            payloads.append((raw, False))
        elif roll < 0.5:
            payloads.append((raw, True))  # almost always invalid UTF-8
        else:
            payloads.append((raw.decode("latin-1"), True))
    shapes: list[object] = [
        {"text": 0.5},
        {"text": None},
        {"userId": [1]},
        {"room": "a b"},
        {"before": "1"},
        [],
        "s",
        5,
    ]
    for _ in range(40):
        junk = {"type": rng.choice(["message", "auth", "typing", "history", "?"]), "data": rng.choice(shapes)}
        payloads.append((json.dumps(junk), True))
    rng.shuffle(payloads)
    return payloads


async def attack(server: Server, payloads: list[Payload]) -> list[int | None]:
    """Send every payload, reading answers as they come and reconnecting when
    the server closes the connection; returns the close codes the server sent."""
    codes: list[int | None] = []

    async def connect() -> tuple[Client, asyncio.Task[tuple[int | None, str | None]]]:
        client = await Client.open(server.url)
        await client.send("auth", {"userId": "mallory"})
        return client, asyncio.create_task(client.closed(timeout=30))

    client, closed = await connect()
    for data, text in payloads:
        if closed.done():
            codes.append(closed.result()[0])
            client, closed = await connect()
        try:
            await client.ws.send(data, text=text)
        except ConnectionClosed:
            codes.append((await closed)[0])
            client, closed = await connect()
        await asyncio.sleep(0.001)
    await client.ws.close()
    await closed
    return codes


@pytest.mark.parametrize("seed", [1, 2])
async def test_hostile_input_never_disturbs_two_people_chatting(seed: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    settings = Settings.isolated(db=":memory:", rate_limit={"burst": 1000})
    # What is sent matters here, not how much: the budget of refused frames is
    # lifted (test_floods.py checks that a connection flooding them is closed).
    async with running(settings=settings, max_frame_bytes=FRAME_LIMIT, refused_burst=10_000) as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        payloads = hostile_payloads(random.Random(seed))
        rounds = 40

        async def chat() -> list[int]:
            ids = []
            for i in range(rounds):
                await alice.say(f"message {i}")
                [frame] = await bob.chat(1)
                assert frame["data"]["text"] == f"message {i}"
                ids.append(frame["data"]["id"])
                await asyncio.sleep(0.002)
            return ids

        chatted, closes = await asyncio.wait_for(asyncio.gather(chat(), attack(server, payloads)), 30)
        assert chatted == list(range(1, rounds + 1))
        # Only the close codes the protocol names: binary 1003, too big 1009.
        assert set(closes) <= {1003, 1009}
        assert closes.count(1009) == 1 and 1003 in closes
        # Nothing the attacker sent was stored or shown to anyone.
        assert server.hub.store.last_id == rounds
        assert [f["data"]["sender"] for f in (await alice.chat(rounds))] == ["alice"] * rounds
        # No bug was hit: no INTERNAL_ERROR, nothing logged as an error.
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
            r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
        ]
        status, _, body = await http_get(server.port, "/healthz")
        assert (status, body) == (200, b"ok\n")
        await alice.still_works()
        await alice.close()
        await bob.close()
