"""The rate limit holds across nodes: a person connected to two nodes has one allowance, not two."""

from __future__ import annotations

import asyncio

from .nodes import Cluster
from .people import Person

#: Three at once, then one a minute: nothing refills during the test.
LIMITS = {
    "CHATBUS_RATELIMIT__BURST": "3",
    "CHATBUS_RATELIMIT__PER_SECOND": "0.0167",
    "CHATBUS_RATELIMIT__PER_HOUR": "600",
}


async def test_one_person_on_two_nodes_cannot_send_more_than_the_burst_in_all(cluster: Cluster) -> None:
    a, b, c = await cluster.start("a", "b", "c", env=LIMITS)
    on_a, on_b = await Person.join(a, "fred"), await Person.join(b, "fred")
    outcomes = [await person.attempt(f"fred {k}") for k, person in enumerate([on_a, on_b] * 4)]

    sent = [data for outcome, data in outcomes if outcome == "sent"]
    refused = [data for outcome, data in outcomes if outcome == "refused"]
    assert len(sent) == 3, f"fred sent {len(sent)} messages through two nodes; the burst is 3: {outcomes}"
    assert [error["code"] for error in refused] == ["RATE_LIMITED"] * 5, refused
    for error in refused:
        assert 0 < error["retryAfter"] <= 60, error
        assert "second" in error["message"], error

    # another person has an allowance of their own
    gus = await Person.join(c, "gus")
    assert (await gus.attempt("gus here"))[0] == "sent"


async def test_sending_at_once_through_three_nodes_still_passes_only_the_burst(cluster: Cluster) -> None:
    nodes = await cluster.start("a", "b", "c", env=LIMITS)
    fred = [await Person.join(node, "fred") for node in nodes]
    watcher = await Person.join(nodes[0], "watcher")

    async def send_four(person: Person) -> list[str]:
        return [await person.say(f"fred {k} via {person.node.name}") for k in range(4)]

    sent_by = await asyncio.gather(*(send_four(person) for person in fred))
    for person, mine in zip(fred, sent_by, strict=True):

        def answered(p: Person = person, ids: list[str] = mine) -> bool:
            """Each of its four got an answer: its echo, or a refusal."""
            return len(p.errors) + sum(p.echo(i) is not None for i in ids) == len(ids)

        await person.until(answered, "an answer to each of its messages")
    refused = [error for person in fred for error in person.errors]
    await watcher.sent("a round trip, so messages sent before it have arrived")
    passed = [m for m in watcher.chat if m["sender"] == "fred"]
    assert len(passed) == 3, f"{len(passed)} of 12 messages sent at once through three nodes passed; the burst is 3"
    assert [error["code"] for error in refused] == ["RATE_LIMITED"] * 9, refused
