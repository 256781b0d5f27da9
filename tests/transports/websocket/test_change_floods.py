"""Edits and reactions cost every client a frame: one client cannot flood the chat with them.

A reaction or an edit is broadcast to every connection, so a client that
sends them as fast as it can would push thousands of frames a second at
everyone. Each connection has a budget for them, as for pings and typing;
and a message carries a bounded number of different reactions, since each
``reaction`` frame lists them all.
"""

from __future__ import annotations

import asyncio
import threading
import time

from chatbus import Settings
from chatbus.core.changes import MAX_REACTIONS

from .helpers import Client, running
from .test_floods import BURST, ROUNDS, SLOW, Flooder


async def _timed_chat(alice: Client, bob: Client) -> list[float]:
    delays = []
    for i in range(ROUNDS):
        sent = time.monotonic()
        await alice.say(f"honest {i}")
        while True:
            frame = await bob.recv(10)
            if frame["type"] == "message" and frame["data"]["sender"] == "alice":
                break
        assert frame["data"]["text"] == f"honest {i}"
        delays.append(time.monotonic() - sent)
        await asyncio.sleep(0.02)
    return delays


async def test_a_flood_of_reactions_is_held_back_and_never_holds_up_others() -> None:
    async with running(settings=Settings.isolated(db=":memory:", rate_limit={"burst": BURST})) as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        await alice.say("react to this")
        target = (await bob.chat(1))[0]["data"]["id"]
        payload = f'{{"type": "react", "data": {{"id": {target}, "emoji": "+1"}}}}'
        flooder = Flooder(server.url, payload, sign_in=True)
        thread = threading.Thread(target=flooder.run, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 10
            while flooder.sent < 200 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            delays = await _timed_chat(alice, bob)
            elapsed = time.monotonic() - flooder.started
            answered, sent = flooder.answers["reaction"], flooder.sent
        finally:
            flooder.halt()
            thread.join(10)
        assert max(delays) < SLOW
        # 20 at once, then 5 a second: what everyone else receives of it is bounded too.
        assert answered <= 20 + 5 * elapsed + 2, (answered, sent, elapsed)
        assert sent > 10 * (answered + 20)
        assert flooder.close == (None, None)  # valid frames: slowed down, never closed
        await alice.send("ping")
        await alice.expect("pong", skip=frozenset({"presence", "message", "reaction"}))


async def test_a_message_takes_a_bounded_number_of_different_reactions() -> None:
    async with running(control_burst=1000) as server:
        ann = await server.client("ann")
        await ann.say("pick one")
        target = (await ann.chat(1))[0]["data"]["id"]
        for i in range(MAX_REACTIONS):
            await ann.send("react", {"id": target, "emoji": f"e{i}"})
            await ann.expect("reaction")
        await ann.send("react", {"id": target, "emoji": "one-more"})
        refused = await ann.error()
        assert refused["code"] == "INVALID_MESSAGE"
        assert refused["message"] == f"Message {target} already has 50 different reactions; add one of those instead."
        # One already there may still be added by someone else, and taken back.
        bob = await server.client("bob")
        await bob.send("react", {"id": target, "emoji": "e0"})
        assert (await bob.expect("reaction"))["counts"]["e0"] == 2
        await ann.send("react", {"id": target, "emoji": "e1", "on": False})
        while (taken_back := await ann.expect("reaction"))["userId"] != "ann":
            pass
        assert taken_back["on"] is False and "e1" not in taken_back["counts"]
