"""A message resent with the same ``clientId`` (after a reconnect that lost the echo) is stored once,
and the client that resent it is answered with it, as PROTOCOL.md says the echo is how it learns the id."""

from __future__ import annotations

from .helpers import running


async def test_a_resent_message_is_stored_once_and_echoed_to_the_client_that_resent_it() -> None:
    async with running() as server:
        bob = await server.client("bob")
        ann = await server.client("ann")
        await ann.say("deploying now", id="c-1")
        [first] = await ann.chat(1)
        await ann.close()
        # Reconnected, it does not know whether the first try arrived, so it sends again.
        ann = await server.client("ann")
        await ann.say("deploying now", id="c-1")
        [again] = await ann.chat(1)
        assert again["data"]["id"] == first["data"]["id"] and again["data"]["clientId"] == "c-1"
        await ann.say("deployed", id="c-2")
        [after] = await ann.chat(1)
        assert after["data"]["id"] == first["data"]["id"] + 1
        # Everyone else saw it once.
        assert [f["data"]["text"] for f in await bob.chat(2)] == ["deploying now", "deployed"]
