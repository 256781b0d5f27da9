"""Redis restarted mid-chat: the nodes say they are not ready, refuse sends clearly instead of
hanging, and carry on by themselves once Redis is back, with every acknowledged message kept
(Redis with its append-only file, as the README asks of a deployment)."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

from tests.support import chatbus_env, run_chatbus

from .nodes import LEASE_TTL, Cluster, Node
from .people import Person

#: Seconds a node may take to notice Redis is gone, or back.
NOTICE = 15.0
#: What a dead node's people may take beyond the lease ttl to go offline.
MARGIN = 3.0


def ids(messages: list[dict[str, Any]]) -> list[int]:
    return [int(m["id"]) for m in messages]


async def readiness(node: Node, status: int, timeout: float = NOTICE) -> str:
    """Wait until ``/readyz`` answers ``status``; the reason it gives."""
    answers: list[tuple[int, str]] = []
    try:
        async with asyncio.timeout(timeout):
            while not answers or answers[-1][0] != status:
                answers.append(await node.readyz())
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"/readyz of node {node.name} never answered {status}: {answers[-3:]}") from None
    return answers[-1][1]


async def test_redis_restarted_mid_chat(cluster: Cluster) -> None:
    a, b = await cluster.start("a", "b")
    ann, ben = await Person.join(a, "ann"), await Person.join(b, "ben")
    kept = [await ann.sent(f"kept {k}") for k in range(3)] + [await ben.sent(f"kept {k + 3}") for k in range(3)]
    await ann.until(lambda: len(ann.texts("kept ")) == 6, "all six messages")
    epoch = ann.auth["epoch"]
    assert await readiness(a, 200)

    cluster.redis.kill()  # a crash: what it had acknowledged is in its append-only file
    reason = await readiness(a, 503)
    print("readyz while Redis is down:", reason)
    assert "Traceback" not in reason and reason.strip(), reason
    outcome, error = await ann.attempt("while redis is down", timeout=NOTICE)
    print("the refusal:", error)
    assert outcome == "refused", f"a message was accepted while nothing could store it: {error}"
    assert error["code"] != "RATE_LIMITED" and "again" in error["message"], "say what to do: " + str(error)
    assert "Traceback" not in error["message"] and "Error " not in error["message"], error
    assert "redis://" not in error["message"] and error.get("retryAfter", 0) > 0, error  # when to try, not where
    assert "while redis is down" not in ben.texts(), "a message nobody stored reached someone"

    cluster.redis.start()  # the same port and folder
    await readiness(a, 200)
    await readiness(b, 200)
    again = await ann.sent("back again", timeout=NOTICE)
    assert again["id"] == kept[-1]["id"] + 1, "ids go on from the log Redis kept"
    await ben.until(lambda: "back again" in ben.texts(), "ann's message after Redis came back", NOTICE)
    answer = await ben.sent("and from node b")
    await ann.until(lambda: "and from node b" in ann.texts(), "ben's answer after Redis came back", NOTICE)

    late = await Person.join(b, "late", lastSeenId=0, epoch=epoch)
    assert not late.auth.get("missedReset"), "the log Redis kept was taken for another one"
    assert late.auth["epoch"] == epoch
    found = {m["id"]: m["text"] for m in late.missed}
    for message in [*kept, again, answer]:
        assert found.get(message["id"]) == message["text"], f"acknowledged message lost: {message}"


async def test_redis_back_without_its_data_starts_a_new_log_that_clients_are_told_about(cluster: Cluster) -> None:
    """A Redis that lost everything (no append-only file to read): the chat goes on in a new log (a new
    epoch), and a client resuming with an id of the old one is told to reload (missedReset)."""
    a, b = await cluster.start("a", "b")
    ann, ben = await Person.join(a, "ann"), await Person.join(b, "ben")
    old = [await ann.sent(f"old log {k}") for k in range(3)]
    old_epoch = ann.auth["epoch"]

    cluster.redis.kill()
    await readiness(a, 503)
    shutil.rmtree(cluster.redis.folder / "appendonlydir")
    cluster.redis.start()
    await readiness(a, 200)
    await readiness(b, 200)

    fresh = await ben.sent("the first words of the new log", timeout=NOTICE)
    await ann.until(lambda: "the first words of the new log" in ann.texts(), "ben's message in the new log", NOTICE)
    back = await Person.join(a, "carl", lastSeenId=old[-1]["id"], epoch=old_epoch)
    assert back.auth.get("missedReset") is True, back.auth
    assert back.auth["epoch"] != old_epoch
    assert [m["text"] for m in back.missed] == ["the first words of the new log"]
    assert back.missed[0]["id"] == fresh["id"]


async def test_people_stay_online_for_each_other_across_a_redis_outage_longer_than_the_lease(cluster: Cluster) -> None:
    a, b = await cluster.start("a", "b")
    ben = await Person.join(b, "ben")
    ann = await Person.join(a, "ann")
    await ben.until(lambda: "online" in ben.presence_of("ann"), "ann coming online")

    cluster.redis.kill()
    await readiness(a, 503)
    await asyncio.sleep(LEASE_TTL + 1)  # longer than presence lasts in Redis without renewal
    cluster.redis.start()
    await readiness(a, 200)
    await readiness(b, 200)
    # a window as long as the lease again, in which node b could take ann for gone
    await asyncio.sleep(LEASE_TTL + MARGIN)

    assert not ann.closed and not ben.closed
    newcomer = await Person.join(b, "newcomer")
    assert "ann" in newcomer.online(), f"node b says who is online: {newcomer.auth.get('agents')}"
    assert ben.presence_of("ann") == ["online"], f"ann, connected all along, was shown {ben.presence_of('ann')}"


async def test_chatbus_status_says_which_node_and_that_redis_is_down(cluster: Cluster) -> None:
    [a] = await cluster.start("a")
    url = f"http://127.0.0.1:{a.port}"
    healthy = await asyncio.to_thread(run_chatbus, "status", "--url", url, env=chatbus_env())
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "engine: redis at" in healthy.stdout and "this node: a" in healthy.stdout, healthy.stdout

    cluster.redis.kill()
    await readiness(a, 503)
    down = await asyncio.to_thread(run_chatbus, "status", "--url", url, env=chatbus_env())
    said = down.stdout + down.stderr
    assert down.returncode != 0, f"chatbus status said all is well while Redis is down:\n{said}"
    assert "/readyz: 503" in said and "Redis" in said, said
    assert "Traceback" not in said, said


async def test_a_chat_that_keeps_talking_through_a_redis_restart_keeps_every_acknowledged_message(
    cluster: Cluster,
) -> None:
    a, b = await cluster.start("a", "b")
    talkers = [await Person.join(a, "ann"), await Person.join(b, "ben")]
    outcomes: dict[str, list[tuple[str, dict[str, Any]]]] = {p.name: [] for p in talkers}
    talking = True

    async def talk(person: Person) -> None:
        k = 0
        while talking:
            outcomes[person.name].append(await person.attempt(f"steady {person.name} {k}", timeout=NOTICE))
            k += 1
            await asyncio.sleep(0.02)

    chatter = [asyncio.create_task(talk(person)) for person in talkers]
    await talkers[0].until(lambda: len(talkers[0].texts("steady ")) >= 20, "the chat going")
    cluster.redis.kill()
    await readiness(a, 503)
    await talkers[0].until(lambda: any(o == "refused" for o, _ in outcomes["ann"]), "ann's send refused")
    cluster.redis.start()
    await readiness(a, 200)
    await readiness(b, 200)
    await talkers[1].until(
        lambda: outcomes["ben"][-3:] and all(o == "sent" for o, _ in outcomes["ben"][-3:]), "ben sending again", NOTICE
    )
    talking = False
    await asyncio.gather(*chatter)

    acknowledged = [data for name in outcomes for outcome, data in outcomes[name] if outcome == "sent"]
    late = await Person.join(b, "late", lastSeenId=0, epoch=talkers[0].auth["epoch"])
    kept = [m for m in late.missed if m["text"].startswith("steady ")]
    assert not late.auth.get("missedHasMore"), "raise the replay limit of this test"
    assert ids(kept) == sorted(set(ids(kept))), "the log has a message twice or out of order"
    lost = [m["text"] for m in acknowledged if m["id"] not in set(ids(kept))]
    assert not lost, f"acknowledged messages lost in the restart: {lost}"
    texts = [m["text"] for m in kept]
    assert len(texts) == len(set(texts)), "a message was stored twice"
