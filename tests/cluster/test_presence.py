"""Who is online and who is typing, across nodes; a dead node's people go offline by themselves."""

from __future__ import annotations

import signal
import time

from .nodes import LEASE_TTL, Cluster
from .people import Person

#: What a dead node's people may take beyond the lease ttl to go offline (renewal period, the check, delivery).
MARGIN = 3.0


async def test_someone_on_node_a_is_seen_online_and_typing_on_node_b(cluster: Cluster) -> None:
    a, b = await cluster.start("a", "b")
    obs = await Person.join(b, "obs")
    erin = await Person.join(a, "erin")

    await obs.until(lambda: "online" in obs.presence_of("erin"), "erin coming online on node a")
    late = await Person.join(b, "late")
    assert "erin" in late.online(), f"who is online, as node b tells a newcomer: {late.auth.get('agents')}"
    users = {user["id"]: user for user in late.auth.get("users", [])}
    assert users.get("erin", {}).get("status", "online") == "online"

    await erin.send("typing", {"room": "general"})
    await obs.until(lambda: any(t["userId"] == "erin" for t in obs.of_type("typing")), "erin typing")
    typing = next(t for t in obs.of_type("typing") if t["userId"] == "erin")
    assert typing.get("room", "general") == "general"

    await erin.leave()
    await obs.until(lambda: obs.presence_of("erin")[-1:] == ["offline"], "erin going offline")


async def test_the_people_of_a_killed_node_go_offline_for_the_others_within_the_lease(cluster: Cluster) -> None:
    a, b = await cluster.start("a", "b")
    obs = await Person.join(b, "obs")
    dora = await Person.join(a, "dora")
    both = await Person.join(a, "bo")
    also_b = await Person.join(b, "bo")  # bo is on both nodes: still online after a dies
    await obs.until(lambda: "online" in obs.presence_of("dora"), "dora coming online")
    assert dora.auth and both.auth and also_b.auth

    a.kill()
    killed = time.monotonic()
    await obs.until(lambda: obs.presence_of("dora")[-1:] == ["offline"], "dora going offline", LEASE_TTL + MARGIN)
    took = time.monotonic() - killed
    assert took <= LEASE_TTL + MARGIN
    assert obs.presence_of("bo")[-1:] != ["offline"], "bo is still connected to node b"
    newcomer = await Person.join(b, "newcomer")
    assert "dora" not in newcomer.online() and "bo" in newcomer.online(), newcomer.auth.get("agents")


async def test_someone_who_moved_to_another_node_stays_online_when_their_dead_node_expires(cluster: Cluster) -> None:
    a, b = await cluster.start("a", "b")
    obs = await Person.join(b, "obs")
    dora, ghost = await Person.join(a, "dora"), await Person.join(a, "ghost")
    assert ghost.auth["success"]
    await obs.until(lambda: "online" in obs.presence_of("ghost"), "ghost coming online")

    a.kill()
    await dora.until(lambda: dora.closed, "node a going away")
    moved = await Person.join(b, "dora", lastSeenId=0, epoch=dora.auth["epoch"])
    assert "dora" in moved.online()
    # node a's people expire (ghost goes offline); dora is still here, on node b
    await obs.until(lambda: obs.presence_of("ghost")[-1:] == ["offline"], "ghost going offline", LEASE_TTL + MARGIN)
    await obs.sent("a round trip, so frames sent before it have arrived")
    assert obs.presence_of("dora")[-1:] != ["offline"], f"dora shown offline while connected: {obs.presence_of('dora')}"
    newcomer = await Person.join(b, "newcomer")
    assert "dora" in newcomer.online() and "ghost" not in newcomer.online(), newcomer.auth.get("agents")


async def test_the_people_of_a_node_that_stalled_past_the_lease_come_back_online_when_it_resumes(
    cluster: Cluster,
) -> None:
    """A node that stops answering for longer than the lease (a long pause, SIGSTOP here) is taken for dead
    and its people offline; when it carries on, its people are online again for everyone."""
    a, b = await cluster.start("a", "b")
    ben = await Person.join(b, "ben")
    ann = await Person.join(a, "ann")
    await ben.until(lambda: "online" in ben.presence_of("ann"), "ann coming online")

    a.process.process.send_signal(signal.SIGSTOP)
    try:
        await ben.until(lambda: ben.presence_of("ann")[-1:] == ["offline"], "ann going offline", LEASE_TTL + MARGIN)
    finally:
        a.process.process.send_signal(signal.SIGCONT)

    await ben.until(lambda: ben.presence_of("ann")[-1:] == ["online"], "ann online again", LEASE_TTL + MARGIN)
    newcomer = await Person.join(b, "newcomer")
    assert "ann" in newcomer.online(), newcomer.auth.get("agents")
    await ann.sent("still here")
    await ben.until(lambda: "still here" in ben.texts(), "ann's message after the stall")


async def test_someone_on_two_nodes_who_leaves_one_stays_online_until_they_leave_both(cluster: Cluster) -> None:
    a, b, c = await cluster.start("a", "b", "c")
    obs = await Person.join(c, "obs")
    on_a = await Person.join(a, "bo")
    await obs.until(lambda: "online" in obs.presence_of("bo"), "bo coming online")
    on_b = await Person.join(b, "bo")

    await on_a.leave()
    await obs.sent("a round trip, so frames sent before it have arrived")
    await on_b.sent("a round trip through node b too")
    await obs.until(lambda: "a round trip through node b too" in obs.texts(), "bo's message from node b")
    assert obs.presence_of("bo") == ["online"], "bo, still connected to node b, was shown offline"
    assert "bo" in (await Person.join(c, "newcomer")).online()

    await on_b.leave()
    await obs.until(lambda: obs.presence_of("bo")[-1:] == ["offline"], "bo going offline once gone from both")
