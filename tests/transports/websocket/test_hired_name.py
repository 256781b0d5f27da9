"""An agent hired from the command line under the name of a person who is online:
a person and an agent never share a name, so the person is signed out, told why."""

from __future__ import annotations

from chatbus.core.message import Agent
from chatbus.core.roster import SIGNED_OUT

from .helpers import running


async def test_a_person_whose_name_an_agent_now_has_is_signed_out_with_the_reason() -> None:
    async with running() as server:
        ann = await server.client("ann")
        other_tab = await server.client("ann")
        bob = await server.client("bob")
        # `chatbus agents hire Ann developer` writes the roster; the server reads it on its next refresh.
        await server.hub.store.save_agent(Agent("Ann", "developer"))
        added, _ = await server.hub.reload_agents()
        assert added == ["Ann"]
        for tab in (ann, other_tab):
            assert await tab.closed() == (1008, SIGNED_OUT)
        gone = await bob.presence("ann")
        assert gone["status"] == "offline"
        again = await server.client()
        await again.send("auth", {"userId": "ann"})
        refused = await again.error()
        assert refused["code"] == "AUTH_FAILED" and "belongs to an agent" in refused["message"]
        await bob.still_works()
