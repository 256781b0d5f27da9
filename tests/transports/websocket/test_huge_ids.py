"""Ids no client can mean (2**63, 2**64, beyond JavaScript's safe integers) are
refused where they come in, with ``INVALID_MESSAGE``: they never reach the
store, never leave a connection half signed in, and never cost anyone else
a message. Nor does a sign-in the store cannot answer: it is undone."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from chatbus import MemoryStore, Message, Settings, SQLiteStore, StoreError
from chatbus.transports.websocket.wire import MAX_ID

from .helpers import NOISE, Client, http_get, running

CHAT = NOISE | {"message", "agent_response"}

#: Frames with ids past what the protocol allows, as a hostile client writes them.
HOSTILE = [
    {"type": "message", "data": {"text": "reply", "replyTo": 2**63}},
    {"type": "message", "data": {"text": "reply", "replyTo": 2**64}},
    {"type": "message", "data": {"text": "reply", "replyTo": -(2**63) - 1}},
    {"type": "message", "data": {"text": "reply", "replyTo": MAX_ID + 1}},
    {"type": "history", "data": {"before": 2**64}},
    {"type": "history", "data": {"before": 2**63, "limit": 2**64}},
    {"type": "edit", "data": {"id": 2**63, "text": "changed"}},
    {"type": "delete", "data": {"id": 2**64}},
    {"type": "react", "data": {"id": -(2**63) - 1, "emoji": "+1"}},
]


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_hundred_messages_sent_among_huge_ids_are_all_stored_and_delivered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    store = SQLiteStore(tmp_path / "chat.db")  # the real store, committing in groups
    settings = Settings.isolated(db=":memory:", ratelimit={"burst": 1000})
    async with running(store=store, settings=settings) as server:
        people = [await server.client(f"person{n}") for n in range(10)]
        hostile = [await server.client(f"mallory{n}") for n in range(4)]
        watcher = await server.client("watcher")
        signing_in = [await Client.open(server.url) for _ in range(4)]

        async def honest(person: Client, n: int) -> None:
            for i in range(10):
                await person.say(f"{n}-{i}", id=f"{n}-{i}")

        async def attack(client: Client) -> None:
            for frame in HOSTILE * 3:
                await client.send_raw(json.dumps(frame))

        async def resume_from_nowhere(client: Client, n: int) -> None:
            await client.send("auth", {"userId": f"eve{n}", "lastSeenId": 2**63 + n})

        # Every frame written at once: the honest ones share their commits with nothing hostile.
        await asyncio.gather(
            *(honest(person, n) for n, person in enumerate(people)),
            *(attack(client) for client in hostile),
            *(resume_from_nowhere(client, n) for n, client in enumerate(signing_in)),
        )
        expected = sorted(f"{n}-{i}" for n in range(10) for i in range(10))
        delivered = await watcher.chat(100, timeout=15)
        assert sorted(f["data"]["text"] for f in delivered) == expected
        ids = [f["data"]["id"] for f in delivered]
        assert ids == sorted(ids) and len(set(ids)) == 100
        for person in people:  # no honest sender got an error: chat frames only
            assert len(await person.chat(100, timeout=15)) == 100
        for client in hostile:
            refusals = [await client.expect("error", skip=CHAT) for _ in HOSTILE * 3]
            assert {r["code"] for r in refusals} == {"INVALID_MESSAGE"}
            assert any("replyTo must be the id of a message" in r["message"] for r in refusals)
            assert any("before must be a message id" in r["message"] for r in refusals)
            assert any(r["message"].startswith("id must be the id of a message") for r in refusals)
        for client in signing_in:
            refusal = await client.error()
            assert refusal["code"] == "INVALID_MESSAGE" and "lastSeenId" in refusal["message"]
        stored = await store.since(0, 1000)
        assert sorted(m.text for m in stored) == expected
        assert all(m.reply_to is None for m in stored)
        assert server.hub.store.last_id == 100
        assert errors_logged(caplog) == []
        for client in [*people, *hostile, *signing_in, watcher]:
            await client.close()


async def test_a_huge_last_seen_id_leaves_the_connection_signed_out_until_a_good_auth(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with running() as server:
        alice = await server.client("alice")
        await alice.say("before")
        await alice.chat(1)
        bob = await Client.open(server.url)
        await bob.send("auth", {"userId": "bob", "lastSeenId": 2**63})
        refusal = await bob.error()
        assert refusal == {
            "code": "INVALID_MESSAGE",
            "message": "lastSeenId must be the id of the last message you saw, or 0 for all "
            "(a whole number from 0 to 9007199254740991).",
            "timestamp": refusal["timestamp"],
        }
        # Not half signed in: not online, and nothing may be posted.
        assert not server.hub.is_online("bob")
        await bob.say("sneaking in")
        assert (await bob.error())["code"] == "NOT_AUTHENTICATED"
        # The same connection signs in properly and then takes part fully.
        auth = await bob.sign_in("bob", lastSeenId=1)
        assert auth["missed"] == [] and auth["missedReset"] is False
        await alice.say("after")
        assert [f["data"]["text"] for f in await bob.chat(1)] == ["after"]
        assert server.hub.store.last_id == 2
        assert errors_logged(caplog) == []
        await alice.close()
        await bob.close()


async def test_history_before_a_huge_id_is_refused_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with running(store=SQLiteStore(tmp_path / "chat.db")) as server:
        alice = await server.client("alice")
        await alice.say("one")
        await alice.chat(1)
        for before in (2**64, 2**63, MAX_ID + 1):
            await alice.send("history", {"before": before})
            refusal = await alice.error()
            assert refusal["code"] == "INVALID_MESSAGE"
            assert refusal["message"] == "before must be a message id (a whole number from 1 to 9007199254740991)."
        # The largest id a client may name is a fine question with an answer.
        await alice.send("history", {"before": MAX_ID})
        page = await alice.expect("history")
        assert [f["data"]["text"] for f in page["messages"]] == ["one"]
        assert errors_logged(caplog) == []
        status, _, body = await http_get(server.port, "/healthz")
        assert (status, body) == (200, b"ok\n")
        await alice.close()


class FailingOnce(MemoryStore):
    """A store whose next read of what a client missed, once ``armed``, fails, as a database that
    does not answer."""

    armed = False

    async def since(self, after_id: int, limit: int, room: str | None = None) -> list[Message]:
        if self.armed:
            self.armed = False
            raise StoreError("the message store does not answer; try again in a moment")
        return await super().since(after_id, limit, room)


async def test_a_sign_in_the_store_cannot_answer_is_undone_not_left_half_done() -> None:
    store = FailingOnce()
    async with running(store=store) as server:
        await server.hub.send("before", sender="coder")
        bob = await server.client("bob")
        store.armed = True
        alice = await Client.open(server.url)
        await alice.send("auth", {"userId": "alice", "lastSeenId": 0})
        assert (await alice.error())["code"] == "INTERNAL_ERROR"
        assert not server.hub.is_online("alice")
        await alice.say("sneaking in")
        assert (await alice.error())["code"] == "NOT_AUTHENTICATED"
        # Trying again on the same connection signs in fully.
        auth = await alice.sign_in("alice", lastSeenId=0)
        assert [f["data"]["text"] for f in auth["missed"]] == ["before"]
        await bob.say("welcome")
        assert [f["data"]["text"] for f in await alice.chat(1)] == ["welcome"]
        await alice.close()
        await bob.close()
