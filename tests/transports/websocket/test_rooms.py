"""Rooms on resume: ``missed`` holds the rooms a client asked for (only the
default room for a client that names none), while live messages of every
room still reach every signed-in client: rooms organise the conversation,
they are not access control (README, "Rooms")."""

from __future__ import annotations

from .helpers import running


def ids(frames: list[dict]) -> list[int]:
    return [frame["data"]["id"] for frame in frames]


def rooms_of(frames: list[dict]) -> list[str]:
    return [frame["data"]["room"] for frame in frames]


async def test_an_old_client_resuming_gets_only_the_default_room() -> None:
    async with running() as server:
        await server.hub.send("for everyone", sender="coder")
        await server.hub.send("for the developers", sender="coder", room="dev")
        await server.hub.send("for everyone again", sender="coder")
        client = await server.client("alice", lastSeenId=0)
        assert ids(client.auth["missed"]) == [1, 3]
        assert rooms_of(client.auth["missed"]) == ["general", "general"]
        await client.close()


async def test_missed_holds_the_rooms_asked_for_in_id_order() -> None:
    async with running() as server:
        for i, room in enumerate(["general", "dev", "ops", "dev", "general", "ops"], start=1):
            await server.hub.send(f"m{i}", sender="coder", room=room)
        client = await server.client("alice", lastSeenId=1, rooms=["dev"])
        assert ids(client.auth["missed"]) == [2, 4]
        await client.close()
        client = await server.client("alice", lastSeenId=1, rooms=["ops", "dev"])
        assert ids(client.auth["missed"]) == [2, 3, 4, 6]
        assert client.auth["missedHasMore"] is False
        await client.close()


async def test_a_bounded_replay_of_several_rooms_is_their_newest_messages() -> None:
    async with running(replay_limit=4) as server:
        for i in range(1, 13):
            await server.hub.send(f"m{i}", sender="coder", room=["general", "dev", "ops"][i % 3])
        # dev is 1, 4, 7, 10; general 3, 6, 9, 12; ops 2, 5, 8, 11.
        client = await server.client("alice", lastSeenId=0, rooms=["general", "dev"])
        assert ids(client.auth["missed"]) == [7, 9, 10, 12]
        assert client.auth["missedHasMore"] is True
        # The rest is a history page away, room by room.
        await client.send("history", {"room": "dev", "before": 7})
        page = await client.expect("history")
        assert ids(page["messages"]) == [1, 4]
        # Live frames continue after the replay, whatever their room.
        await server.hub.send("m13", sender="coder", room="ops")
        assert ids(await client.chat(1)) == [13]
        await client.close()


async def test_live_messages_of_every_room_reach_every_client() -> None:
    """Rooms are not a boundary: a client that resumed only general still hears dev live."""
    async with running() as server:
        alice = await server.client("alice", lastSeenId=0, rooms=["general"])
        bob = await server.client("bob")
        await bob.say("in dev", room="dev")
        [frame] = await alice.chat(1)
        assert (frame["data"]["text"], frame["data"]["room"]) == ("in dev", "dev")
        await alice.close()
        await bob.close()


async def test_a_room_that_was_quiet_leaves_missed_empty_and_loses_nothing_live() -> None:
    async with running() as server:
        for i in range(1, 4):
            await server.hub.send(f"m{i}", sender="coder", room="dev")
        client = await server.client("alice", lastSeenId=0, rooms=["support"])
        assert client.auth["missed"] == [] and client.auth["missedHasMore"] is False
        await server.hub.send("m4", sender="coder", room="support")
        assert ids(await client.chat(1)) == [4]
        await client.close()
