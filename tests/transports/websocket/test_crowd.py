"""A big chat: sign-ins stay cheap and presence does not flood everyone."""

from __future__ import annotations

import asyncio

from .helpers import running


async def test_beyond_the_presence_limit_people_come_and_go_quietly_but_agents_do_not() -> None:
    async with running(presence_limit=2) as server:
        await server.hub.hire("builder", "developer")
        alice = await server.client("alice")
        bob = await server.client("bob")
        assert (await alice.presence("bob"))["status"] == "online"  # two people: below the limit

        carol = await server.client("carol")
        # Three people: every id is still listed, the descriptions stop at the limit (agents always described).
        assert carol.auth["agents"] == ["alice", "bob", "carol", "builder"]
        described = [user["id"] for user in carol.auth["users"]]
        assert described == ["alice", "bob", "builder"]

        await server.hub.hire("tester", "qa")  # an agent's arrival is always announced
        arrival = await alice.presence("tester")
        assert arrival["kind"] == "agent"
        assert not any(
            frame["type"] == "presence" and frame["data"]["userId"] == "carol" for frame in alice.received
        ), "carol's arrival was broadcast above the presence limit"

        await carol.close()
        await server.hub.set_agent_status("tester", "working", "regression run", 10)
        status = await bob.expect("agent_status", skip=frozenset({"presence"}))
        assert status["userId"] == "tester"
        assert not any(frame["type"] == "presence" and frame["data"]["userId"] == "carol" for frame in bob.received)
        for client in (alice, bob):
            await client.close()


async def test_many_sign_ins_each_see_everyone_who_is_here() -> None:
    async with running(presence_limit=5, max_connections=500) as server:
        clients = []
        for start in range(0, 60, 20):
            clients += await asyncio.gather(*(server.client(f"user{i}") for i in range(start, start + 20)))
        last = clients[-1].auth
        assert sorted(last["agents"]) == sorted(f"user{i}" for i in range(60))
        assert len(last["users"]) == 5
        # Each sign-in saw everyone already connected, itself included.
        for index, client in enumerate(clients[:20]):
            assert f"user{index}" in client.auth["agents"]
        await asyncio.gather(*(client.close() for client in clients))
