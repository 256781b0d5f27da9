"""The rate limit holds across nodes: a person connected to two nodes has one allowance, not two."""

from __future__ import annotations

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
