"""Graceful stops: the WebSocket transport takes nothing new, delivers what it
accepted, then closes every client (1012 with a reconnect hint for a restart,
1001 otherwise)."""

from __future__ import annotations

import asyncio

import pytest
from websockets.exceptions import ConnectionClosed

from chatbus import Settings

from .helpers import Client, running


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
