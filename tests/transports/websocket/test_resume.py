"""Reconnect and resume: ``lastSeenId`` gives back exactly what was missed."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

from chatbus import Settings, SQLiteStore

from .helpers import Client, Server, running


def ids(frames: list[dict]) -> list[int]:
    return [frame["data"]["id"] for frame in frames]


async def test_reconnect_and_resume_returns_what_was_missed_then_live() -> None:
    async with running() as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        await alice.say("one")
        [seen] = await bob.chat(1)
        await bob.close()
        for text in ("two", "three"):
            await alice.say(text)
        await alice.chat(3)

        bob = await server.client("bob", lastSeenId=seen["data"]["id"])
        missed = bob.auth["missed"]
        assert [frame["data"]["text"] for frame in missed] == ["two", "three"]
        assert bob.auth["missedHasMore"] is False
        assert [frame["type"] for frame in missed] == ["message", "message"]
        assert missed[0]["data"]["sender"] == "alice" and missed[0]["data"]["clientId"] is None
        await alice.say("four")
        [live] = await bob.chat(1)
        assert live["data"]["text"] == "four"
        assert live["data"]["id"] == missed[-1]["data"]["id"] + 1
        await alice.close()
        await bob.close()


async def test_last_seen_zero_returns_everything_in_the_rooms_asked_for() -> None:
    async with running() as server:
        await server.hub.send("agent says hi", sender="coder")
        await server.hub.send("in another room", sender="coder", room="dev")
        # An old client knows only the default room, and gets only that.
        client = await server.client("alice", lastSeenId=0)
        missed = client.auth["missed"]
        assert ids(missed) == [1]
        assert [f["type"] for f in missed] == ["agent_response"]
        await client.close()
        client = await server.client("alice", lastSeenId=0, rooms=["general", "dev"])
        missed = client.auth["missed"]
        assert ids(missed) == [1, 2]
        assert missed[1]["data"]["room"] == "dev"
        await client.close()


async def test_replay_is_bounded_and_history_fills_the_rest() -> None:
    async with running(replay_limit=5) as server:
        for i in range(1, 9):
            await server.hub.send(f"m{i}", sender="coder")
        client = await server.client("alice", lastSeenId=0)
        missed = ids(client.auth["missed"])
        # The newest five, so that live messages follow without a gap...
        assert missed == [4, 5, 6, 7, 8]
        assert client.auth["missedHasMore"] is True
        # ...and the older ones are a history page away.
        await client.send("history", {"before": missed[0]})
        page = await client.expect("history")
        assert ids(page["messages"]) == [1, 2, 3] and page["hasMore"] is False
        await server.hub.send("m9", sender="coder")
        assert ids(await client.chat(1)) == [9]
        await client.close()


async def test_replay_and_history_stay_within_the_byte_budget() -> None:
    async with running(replay_max_bytes=16 * 1024) as server:
        for i in range(1, 21):
            await server.hub.send(f"{i} " + "x" * 2000, sender="coder")
        client = await server.client("alice", lastSeenId=0)
        replayed = ids(client.auth["missed"])
        assert 4 <= len(replayed) < 20
        assert replayed == list(range(21 - len(replayed), 21))
        assert client.auth["missedHasMore"] is True
        assert len(json.dumps(client.received[-1])) < 16 * 1024 + 1024
        await client.send("history", {"before": replayed[0], "limit": 200})
        page = await client.expect("history")
        assert ids(page["messages"]) == list(range(replayed[0] - len(page["messages"]), replayed[0]))
        assert page["hasMore"] is True
        await client.close()


async def test_a_last_seen_id_from_the_future_does_not_hide_new_messages() -> None:
    async with running() as server:
        client = await server.client("alice", lastSeenId=1000)
        assert client.auth["missed"] == []
        await client.say("hello")
        assert ids(await client.chat(1)) == [1]
        await client.close()


async def test_messages_sent_while_signing_in_are_neither_lost_nor_doubled(tmp_path: Path) -> None:
    """Sign in with lastSeenId over and over while an agent keeps talking."""
    store = SQLiteStore(tmp_path / "chat.db")
    async with running(store=store) as server:
        total = 150

        async def talk() -> None:
            for i in range(1, total + 1):
                await server.hub.send(f"m{i}", sender="coder")
                if i % 3 == 0:
                    await asyncio.sleep(0)

        talker = asyncio.create_task(talk())
        seen: list[int] = []
        while not seen or seen[-1] < total:
            client = await server.client("alice", lastSeenId=seen[-1] if seen else 0)
            seen += ids(client.auth["missed"])
            frame = await client.recv()  # one live frame, if any, then drop the connection
            if frame["type"] == "agent_response":
                seen.append(frame["data"]["id"])
            client.ws.transport.abort()
        await asyncio.wait_for(talker, 5)
        assert seen == list(range(1, total + 1))


async def churn(server: Server, name: str, rng: random.Random, done: asyncio.Event, total: int) -> list[int]:
    """A client on a bad network: reads a little, drops, comes back with lastSeenId."""
    seen: list[int] = []
    while True:
        client = await Client.open(server.url)
        await client.send("auth", {"userId": name, "lastSeenId": seen[-1] if seen else 0})
        seen += ids((await client.expect("auth_response"))["missed"])
        if done.is_set() and (seen[-1] if seen else 0) >= total:
            await client.close()
            return seen
        for _ in range(rng.randint(0, 8)):
            if seen and seen[-1] >= total:
                break
            frame = await client.recv()
            if frame["type"] in ("message", "agent_response"):
                seen.append(frame["data"]["id"])
        if rng.random() < 0.5:
            client.ws.transport.abort()  # the network drops: frames in flight are lost
        else:
            await client.close()
        await asyncio.sleep(rng.random() / 100)


async def test_resume_under_churn_every_client_sees_every_message_once(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "chat.db")
    settings = Settings.isolated(db=":memory:", rate_limit={"burst": 100})
    async with running(store=store, settings=settings) as server:
        steady = await server.client("steady")
        done = asyncio.Event()
        total = 300
        churners = [asyncio.create_task(churn(server, f"user{n}", random.Random(n), done, total)) for n in range(4)]

        async def send_all() -> None:
            people = [await server.client(f"sender{n}") for n in range(2)]
            for i in range(1, total + 1):
                if i % 10 == 0:
                    await people[i % 2].say(f"from a person {i}")
                    await asyncio.sleep(0.005)
                else:
                    await server.hub.send(f"from an agent {i}", sender="coder")
            for person in people:
                await person.close()

        async with asyncio.timeout(30):
            await send_all()
            done.set()
            results = await asyncio.gather(*churners)
        expected = list(range(1, total + 1))
        for seen in results:
            assert seen == expected
        assert ids(await steady.chat(total, timeout=10)) == expected
        await steady.close()
