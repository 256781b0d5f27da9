"""Graceful restarts: SIGTERM on a real ``chatbus serve`` while people are mid-chat.

The node stops taking connections and messages, delivers everything it
accepted, closes every client with 1012 and a reconnect hint, and exits 0. A
new node on the same port and database gives each returning client exactly
what it missed, once.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from chatbus import Settings
from tests.support import ChatbusProcess, chatbus_env

from .helpers import Client, running

#: The close reason of a restart, with the seconds to wait before reconnecting.
RESTART_REASON = re.compile(r"^service restart; reconnect in (\d+(?:\.\d+)?) s$")
LISTENING = re.compile(r"listening on ws://127\.0\.0\.1:(\d+)/")
#: People here type faster than the default rate limit allows.
FAST = {
    "CHATBUS_RATELIMIT__BURST": "100000",
    "CHATBUS_RATELIMIT__PER_SECOND": "100000",
    "CHATBUS_RATELIMIT__PER_HOUR": "1000000",
}


async def serve(db: Path, cwd: Path, port: int = 0) -> tuple[ChatbusProcess, int]:
    """``chatbus serve`` on 127.0.0.1 with ``db``; the process and the port it listens on."""
    args = ("serve", "--host", "127.0.0.1", "--port", str(port), "--db", str(db), "--transport", "websocket")
    process = ChatbusProcess(*args, "--log-level", "INFO", env=chatbus_env(FAST), cwd=cwd)
    try:
        line = await asyncio.to_thread(process.stderr.wait_for, "listening on", 30)
    except BaseException:
        process.process.kill()
        process.process.wait(5)
        raise
    found = LISTENING.search(line)
    assert found is not None, line
    return process, int(found.group(1))


async def terminate(process: ChatbusProcess) -> int:
    """SIGTERM, and the exit status (the event loop keeps running meanwhile, so clients answer the close)."""
    return await asyncio.to_thread(process.terminate, 30)


@dataclass
class Person:
    """One client mid-chat: what it sent, what came back, and how it was closed."""

    name: str
    client: Client
    sent: dict[str, str] = field(default_factory=dict)  # client id -> text
    seen: list[dict[str, Any]] = field(default_factory=list)  # chat messages, in arrival order
    refused: list[dict[str, Any]] = field(default_factory=list)  # error frames
    close: tuple[int | None, str | None] = (None, None)

    @property
    def acknowledged(self) -> list[str]:
        """Texts of this person's own messages that the server echoed back (stored and delivered)."""
        return [m["text"] for m in self.seen if m["clientId"] in self.sent]

    @property
    def last_seen(self) -> int:
        return int(self.seen[-1]["id"])

    async def listen(self) -> None:
        """Read every frame until the server closes the connection."""
        try:
            while True:
                frame = await self.client.recv(timeout=30)
                if frame["type"] in ("message", "agent_response"):
                    self.seen.append(frame["data"])
                elif frame["type"] == "error":
                    self.refused.append(frame["data"])
        except ConnectionClosed:
            rcvd = self.client.ws.protocol.close_rcvd
            self.close = (rcvd.code, rcvd.reason) if rcvd is not None else (None, None)

    async def talk(self) -> None:
        """Say something every few milliseconds until the connection is closed."""
        for n in itertools.count():
            client_id = f"{self.name}-{n}"
            self.sent[client_id] = f"{self.name} says {n}"
            try:
                await self.client.say(self.sent[client_id], id=client_id)
            except ConnectionClosed:
                del self.sent[client_id]
                return
            await asyncio.sleep(0.005)


async def test_sigterm_mid_chat_closes_with_1012_delivers_everything_and_a_new_node_fills_the_gap(
    tmp_path: Path,
) -> None:
    db = tmp_path / "chat.db"
    first, port = await serve(db, tmp_path)
    with first:
        people = [Person(name, await Client.open(f"ws://127.0.0.1:{port}/")) for name in ("alice", "bob", "carol")]
        for person in people:
            await person.client.sign_in(person.name)
        listening = [asyncio.create_task(person.listen()) for person in people]
        talking = [asyncio.create_task(person.talk()) for person in people]
        # Mid-chat: everyone has had some of their own messages back.
        async with asyncio.timeout(20):
            while any(len(person.acknowledged) < 10 for person in people):
                await asyncio.sleep(0.01)

        status = await terminate(first)
        async with asyncio.timeout(20):
            await asyncio.gather(*listening, *talking)
        log = "\n".join(first.stderr.drain())
    assert status == 0, log

    for person in people:
        code, reason = person.close
        assert code == 1012, f"{person.name} was closed with {person.close}"
        hint = RESTART_REASON.match(reason or "")
        assert hint is not None and float(hint.group(1)) > 0, reason
        assert len((reason or "").encode()) <= 123
        # A message that came in during the drain was refused, and said why.
        for error in person.refused:
            assert error["code"] == "INTERNAL_ERROR" and "restarting" in error["message"], error
    # One line per step of the stop, in order.
    steps = [
        "SIGTERM received: stopping gracefully",
        "no longer accepting connections or messages",
        "stopping 1/3",
        "stopping 2/3",
        "closed 3 connection(s) with 1012 (service restart; reconnect in",
        "stopping 3/3",
        "hub stopped",
    ]
    positions = [log.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), log

    # Everything accepted was delivered to everyone before the close: all saw the same messages, 1..N.
    ids = [m["id"] for m in people[0].seen]
    assert ids == list(range(1, len(ids) + 1))
    for person in people[1:]:
        assert [m["id"] for m in person.seen] == ids

    second, again = await serve(db, tmp_path, port)
    with second:
        assert again == port
        url = f"ws://127.0.0.1:{port}/"
        # The store holds exactly what was acknowledged: nothing accepted is lost, nothing refused was kept.
        async with await Client.open(url) as dave:
            stored = (await dave.sign_in("dave", lastSeenId=0))["missed"]
        assert [f["data"]["id"] for f in stored] == ids
        for person in people:
            mine = [f["data"]["text"] for f in stored if f["data"]["sender"] == person.name]
            assert mine == person.acknowledged

        # Carol is back first and talks while alice and bob are still away.
        alice, bob, carol = people
        async with await Client.open(url) as carol_again:
            auth = await carol_again.sign_in("carol", lastSeenId=carol.last_seen)
            assert auth["missed"] == []
            for n in range(3):
                await carol_again.say(f"while you were away {n}")
            away = await carol_again.chat(3)
            assert [f["data"]["id"] for f in away] == [len(ids) + 1, len(ids) + 2, len(ids) + 3]

            back = {}
            for person in (alice, bob):
                back[person.name] = client = await Client.open(url)
                auth = await client.sign_in(person.name, lastSeenId=person.last_seen)
                assert auth["missed"] == away, f"{person.name} got {auth['missed']}"
            # Live messages follow the replay without repeating any of it.
            await carol_again.say("everyone is back")
            for client in back.values():
                [live] = await client.chat(1)
                assert (live["data"]["id"], live["data"]["text"]) == (len(ids) + 4, "everyone is back")
                await client.close()
        assert await terminate(second) == 0


@pytest.mark.parametrize(
    ("restart_in", "code", "reason", "said"),
    [
        (3.0, 1012, "service restart; reconnect in 3 s", "restarting"),
        (None, 1001, "chatbus is stopping", "stopping"),
    ],
)
async def test_while_draining_new_connections_and_messages_are_refused(
    restart_in: float | None, code: int, reason: str, said: str
) -> None:
    async with running() as server:
        alice = await server.client("alice")
        await alice.say("accepted")
        [accepted] = await alice.chat(1)

        await server.transport.stop_accepting(restart_in=restart_in)
        # The port no longer listens (a restarted node can take it) ...
        with pytest.raises(OSError):
            await Client.open(server.url)
        # ... and a message on an open connection is refused, saying why and what to do.
        await alice.say("too late")
        error = await alice.error()
        assert error["code"] == "INTERNAL_ERROR"
        assert said in error["message"] and "send it again" in error["message"]
        if restart_in is not None:
            assert "in about 3 s" in error["message"]
        assert server.hub.store.last_id == accepted["data"]["id"]
        await alice.still_works()  # the connection stays open until the stop closes it

        await server.hub.stop(restart_in=restart_in)
        assert await alice.closed() == (code, reason)


async def test_messages_accepted_before_the_stop_reach_every_client_before_its_close() -> None:
    fast = Settings.isolated(db=":memory:", rate_limit={"burst": 1000, "per_second": 1000.0, "per_hour": 100_000})
    async with running(settings=fast) as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        for n in range(50):
            await alice.say(f"burst {n}")
        await bob.chat(1)  # the burst is being taken
        stopping = asyncio.create_task(server.hub.stop(restart_in=1))
        seen: dict[str, list[int]] = {}
        for name, client in (("alice", alice), ("bob", bob)):
            ids: list[int] = []
            code, _ = await _read_until_closed(client, ids)
            assert code == 1012
            seen[name] = ids
        await stopping
        # Whatever the hub took was stored and delivered to both, in order, before the close.
        stored = server.hub.store.last_id
        assert stored >= 1
        assert seen["alice"] == list(range(1, stored + 1))
        assert seen["bob"] == list(range(2, stored + 1))


async def _read_until_closed(client: Client, ids: list[int]) -> tuple[int | None, str | None]:
    """Collect the ids of the chat messages that arrive until the server closes; its close code and reason."""
    try:
        while True:
            frame = await client.recv()
            if frame["type"] in ("message", "agent_response"):
                ids.append(frame["data"]["id"])
    except ConnectionClosed:
        pass
    rcvd = client.ws.protocol.close_rcvd
    return (rcvd.code, rcvd.reason) if rcvd is not None else (None, None)
