"""The log's epoch: ``auth_response`` names it, and a client resuming from
another log (another epoch, or an id this log never gave) is told with
``missedReset`` and gets the recent chat instead of a gap it cannot trust."""

from __future__ import annotations

import json
from pathlib import Path

from chatbus import SQLiteStore

from .helpers import Client, http_get, running
from .test_restart import chatbus_serve


def ids(frames: list[dict]) -> list[int]:
    return [frame["data"]["id"] for frame in frames]


async def test_auth_response_names_the_logs_epoch_as_ws_info_does(tmp_path: Path) -> None:
    async with running(store=SQLiteStore(tmp_path / "chat.db")) as server:
        alice = await server.client("alice")
        epoch = alice.auth["epoch"]
        assert isinstance(epoch, str) and epoch == server.hub.store.epoch
        _, _, body = await http_get(server.port, "/ws-info")
        assert json.loads(body)["epoch"] == epoch
        # A sign-in that does not resume has nothing missed to reset.
        assert "missed" not in alice.auth and "missedReset" not in alice.auth
        await alice.close()


async def test_a_resume_in_the_same_epoch_gets_exactly_what_was_missed() -> None:
    async with running() as server:
        for i in range(1, 6):
            await server.hub.send(f"m{i}", sender="coder")
        epoch = server.hub.store.epoch
        client = await server.client("alice", lastSeenId=3, epoch=epoch)
        assert ids(client.auth["missed"]) == [4, 5]
        assert client.auth["missedReset"] is False
        await client.close()
        # An old client sends no epoch: its ids are trusted as before.
        client = await server.client("alice", lastSeenId=3)
        assert ids(client.auth["missed"]) == [4, 5] and client.auth["missedReset"] is False
        await client.close()


async def test_a_resume_from_another_epoch_is_reset_to_the_newest_messages() -> None:
    async with running(replay_limit=3) as server:
        for i in range(1, 6):
            await server.hub.send(f"m{i}", sender="coder")
        client = await server.client("alice", lastSeenId=2, epoch="another-log")
        # Not 3, 4, 5 "after 2": those ids meant other messages there. The newest, as for lastSeenId 0.
        assert client.auth["missedReset"] is True
        assert ids(client.auth["missed"]) == [3, 4, 5]
        assert client.auth["missedHasMore"] is True
        assert client.auth["epoch"] == server.hub.store.epoch
        await server.hub.send("m6", sender="coder")
        assert ids(await client.chat(1)) == [6]
        await client.close()


async def test_a_last_seen_id_beyond_the_newest_is_another_log_and_signs_in_fully() -> None:
    async with running() as server:
        for i in range(1, 4):
            await server.hub.send(f"m{i}", sender="coder")
        client = await server.client("alice", lastSeenId=1000)
        assert client.auth["success"] is True and client.auth["missedReset"] is True
        assert ids(client.auth["missed"]) == [1, 2, 3]
        # Fully signed in: online, posting, and receiving.
        assert server.hub.is_online("alice")
        await client.say("hello")
        [echo] = await client.chat(1)
        assert echo["data"]["id"] == 4 and echo["data"]["text"] == "hello"
        await client.close()


async def test_a_server_restarted_on_a_new_database_tells_the_old_client_to_reset(tmp_path: Path) -> None:
    """Real ``chatbus serve`` processes: the same database keeps its epoch, another one does not."""
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    async with chatbus_serve(first) as server:
        alice = await Client.open(server.url)
        auth = await alice.sign_in("alice")
        for i in range(5):
            await alice.say(f"first {i}")
        seen = await alice.chat(5)
        epoch, last_seen = auth["epoch"], seen[-1]["data"]["id"]
        assert await server.terminate() == 0
        await alice.closed()

    async with chatbus_serve(second) as server:
        bob = await Client.open(server.url)
        await bob.sign_in("bob")
        await bob.say("second 0")
        await bob.chat(1)
        alice = await Client.open(server.url)
        auth = await alice.sign_in("alice", lastSeenId=last_seen, epoch=epoch)
        assert auth["epoch"] != epoch
        assert auth["missedReset"] is True
        assert [f["data"]["text"] for f in auth["missed"]] == ["second 0"]
        new_epoch = auth["epoch"]
        await alice.close()
        await bob.close()
        assert await server.terminate() == 0

    async with chatbus_serve(first) as server:
        alice = await Client.open(server.url)
        auth = await alice.sign_in("alice", lastSeenId=3, epoch=epoch)
        assert auth["epoch"] == epoch != new_epoch
        assert auth["missedReset"] is False
        assert [f["data"]["text"] for f in auth["missed"]] == ["first 3", "first 4"]
        await alice.close()
        assert await server.terminate() == 0
