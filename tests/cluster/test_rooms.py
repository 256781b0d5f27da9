"""Rooms across nodes, and a node that comes back under its own name after a crash."""

from __future__ import annotations

from .nodes import LEASE_TTL, Cluster
from .people import Person


async def test_a_room_message_reaches_every_node_and_a_resume_elsewhere_brings_that_rooms_missed(
    cluster: Cluster,
) -> None:
    a, b = await cluster.start("a", "b")
    ann, ben = await Person.join(a, "ann"), await Person.join(b, "ben")
    await ann.send("message", {"text": "deploy at noon", "room": "ops", "id": "ops-1"})
    await ben.until(lambda: "deploy at noon" in ben.texts(), "ann's message in ops")
    assert next(m for m in ben.chat if m["text"] == "deploy at noon")["room"] == "ops"
    last_seen = ben.chat[-1]["id"]

    await ann.send("message", {"text": "moved to one o'clock", "room": "ops", "id": "ops-2"})
    await ann.send("message", {"text": "lunch?", "id": "gen-1"})
    await ann.until(lambda: ann.echo("gen-1") is not None, "the echo of lunch?")
    back = await Person.join(a, "ben2", lastSeenId=last_seen, epoch=ben.auth["epoch"], rooms=["ops"])
    assert [m["text"] for m in back.missed] == ["moved to one o'clock"]
    await back.send("history", {"room": "ops", "limit": 10})
    await back.until(lambda: bool(back.of_type("history")), "the history of ops")
    page = [frame["data"]["text"] for frame in back.of_type("history")[0]["messages"]]
    assert page == ["deploy at noon", "moved to one o'clock"]


async def test_a_node_restarted_under_its_own_name_after_a_crash_takes_its_people_back(cluster: Cluster) -> None:
    a, b = await cluster.start("a", "b")
    obs = await Person.join(b, "obs")
    ann, ghost = await Person.join(a, "ann"), await Person.join(a, "ghost")  # ghost does not come back
    first = await ann.sent("before the crash")
    assert ghost.auth["success"]
    a.kill()
    cluster.nodes["a, killed"] = cluster.nodes.pop("a")
    [again] = await cluster.start("a")  # the same name, as a supervisor restarts it
    back = await Person.join(again, "ann", lastSeenId=first["id"], epoch=ann.auth["epoch"])
    assert not back.auth.get("missedReset")
    await back.sent("after the restart")
    await obs.until(lambda: "after the restart" in obs.texts(), "ann's message through the restarted node")
    await obs.sent("welcome back")
    await back.until(lambda: "welcome back" in back.texts(), "obs's answer on the restarted node")
    # what the crashed process had said expires (ghost goes offline); ann, back on node a, stays online
    await obs.until(lambda: obs.presence_of("ghost")[-1:] == ["offline"], "ghost going offline", LEASE_TTL + 3)
    await obs.sent("a round trip, so frames sent before it have arrived")
    assert obs.presence_of("ann")[-1:] == ["online"], obs.presence_of("ann")
    newcomer = await Person.join(b, "newcomer")
    assert "ann" in newcomer.online() and "ghost" not in newcomer.online()
