"""Edits, reactions and deletions made on one node are what everyone sees, on every node."""

from __future__ import annotations

from .nodes import Cluster
from .people import Person


async def test_an_edit_a_reaction_and_a_deletion_reach_every_node(cluster: Cluster) -> None:
    a, b, c = await cluster.start("a", "b", "c")
    ann, ben, cat = await Person.join(a, "ann"), await Person.join(b, "ben"), await Person.join(c, "cat")
    typo = await ann.sent("teh build is green")
    doomed = await ann.sent("wrong room, sorry")

    await ann.send("edit", {"id": typo["id"], "text": "the build is green"})
    await ben.send("react", {"id": typo["id"], "emoji": "🎉", "on": True})
    await ann.send("delete", {"id": doomed["id"]})
    for person in (ann, ben, cat):
        await person.until(
            lambda p=person: (
                any(e["id"] == typo["id"] for e in p.of_type("message_edited"))  # type: ignore[misc]
                and any(r["id"] == typo["id"] for r in p.of_type("reaction"))
                and any(d["id"] == doomed["id"] for d in p.of_type("message_deleted"))
            ),
            "the edit, the reaction and the deletion",
        )
        edit = next(e for e in person.of_type("message_edited") if e["id"] == typo["id"])
        assert edit["text"] == "the build is green" and edit["editedBy"] == "ann"
        reaction = next(r for r in person.of_type("reaction") if r["id"] == typo["id"])
        assert reaction["userId"] == "ben" and reaction["counts"] == {"🎉": 1}

    # someone arriving later, on any node, sees the messages as they are now
    late = await Person.join(c, "late", lastSeenId=0, epoch=ann.auth["epoch"])
    now = {m["id"]: m for m in late.missed}
    assert now[typo["id"]]["text"] == "the build is green" and now[typo["id"]]["reactions"] == {"🎉": ["ben"]}
    assert now[doomed["id"]].get("deleted") is True and now[doomed["id"]]["text"] == ""
