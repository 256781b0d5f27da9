"""Messages across nodes: one chat, one numbering, nothing lost or doubled when a node dies."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import redis

from .nodes import Cluster
from .people import Person


def ids(messages: list[dict[str, Any]]) -> list[int]:
    return [int(m["id"]) for m in messages]


def tagged(messages: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["text"].startswith(tag)]


async def test_a_message_sent_on_one_node_reaches_every_node_with_the_same_id(cluster: Cluster) -> None:
    a, b, c = await cluster.start("a", "b", "c")
    ann, ben, cat = [await Person.join(node, name) for node, name in ((a, "ann"), (b, "ben"), (c, "cat"))]

    echo = await ann.sent("hello from node a")

    for person in (ben, cat):
        await person.until(lambda p=person: "hello from node a" in p.texts(), "ann's message")  # type: ignore[misc]
        got = next(m for m in person.chat if m["text"] == "hello from node a")
        assert (got["id"], got["sender"], got["room"]) == (echo["id"], "ann", "general")
    # and back: an answer from node c is the next id, everywhere
    answer = await cat.sent("hi ann, from node c")
    assert answer["id"] > echo["id"]
    await ann.until(lambda: "hi ann, from node c" in ann.texts(), "cat's answer")
    assert [m["id"] for m in ann.chat] == [echo["id"], answer["id"]]


async def test_ids_strictly_increase_under_concurrent_senders_on_every_node(cluster: Cluster) -> None:
    nodes = await cluster.start("a", "b", "c")
    per_sender = 25
    senders = [await Person.join(node, f"s{node.name}{i}") for node in nodes for i in range(2)]
    readers = [await Person.join(node, f"r{node.name}") for node in nodes]
    everyone = senders + readers
    total = per_sender * len(senders)

    async def send_all(person: Person) -> list[str]:
        return [await person.say(f"burst {person.name} {k}") for k in range(per_sender)]

    sent = await asyncio.gather(*(send_all(person) for person in senders))
    for person in everyone:
        await person.until(lambda p=person: len(p.texts("burst ")) == total, f"all {total} messages", 30)  # type: ignore[misc]

    reference = [(m["id"], m["clientId"]) for m in tagged(readers[0].chat, "burst ")]
    for person in everyone:
        seen = tagged(person.chat, "burst ")
        numbers = ids(seen)
        assert numbers == sorted(set(numbers)), f"{person.name} saw ids out of order or twice: {numbers}"
        assert numbers == list(range(numbers[0], numbers[0] + total)), f"{person.name} saw a hole in {numbers}"
        assert [(m["id"], m["clientId"]) for m in seen] == reference, f"{person.name} saw another order"
    by_client_id = {client_id: message_id for message_id, client_id in reference}
    for person, client_ids in zip(senders, sent, strict=True):
        own = [by_client_id[client_id] for client_id in client_ids]
        assert own == sorted(own), f"{person.name}'s messages were numbered out of the order they were sent"


async def test_a_client_of_a_killed_node_resumes_on_another_and_misses_nothing_doubles_nothing(
    cluster: Cluster,
) -> None:
    a, b, c = await cluster.start("a", "b", "c")
    walt = await Person.join(a, "walt")
    sam, obs = await Person.join(b, "sam"), await Person.join(c, "obs")
    for k in range(5):
        await sam.sent(f"before {k}")
    mine = await walt.sent("walt's own, acknowledged")
    await walt.until(lambda: len(walt.texts("before ")) == 5, "sam's five messages")
    last_seen, epoch = walt.chat[-1]["id"], walt.auth["epoch"]
    assert last_seen == mine["id"] and epoch

    a.kill()
    await walt.until(lambda: walt.closed, "its node going away")
    meanwhile = [await sam.sent(f"meanwhile {k}") for k in range(4)] + [await obs.sent("meanwhile from c")]

    back = await Person.join(b, "walt", lastSeenId=last_seen, epoch=epoch)
    assert not back.auth.get("missedReset"), back.auth
    assert back.auth["epoch"] == epoch
    assert ids(back.missed) == ids(meanwhile), "missed must be exactly what was sent after lastSeenId"
    after = [await sam.sent(f"after {k}") for k in range(3)]
    await back.until(lambda: len(back.texts("after ")) == 3, "the messages sent after resuming")

    everything = walt.chat + back.seen
    assert ids(everything) == sorted(set(ids(everything))), "a message was shown twice or out of order"
    await obs.until(lambda: len(obs.texts("after ")) == 3, "the messages sent after walt resumed")
    assert ids(everything) == ids(tagged(sam.chat, "")), "walt's view differs from sam's"
    assert mine["id"] in ids(obs.chat), "walt's acknowledged message was lost with its node"
    assert ids(after)[0] > ids(meanwhile)[-1]


async def test_a_message_resent_on_another_node_after_its_node_died_is_stored_once(cluster: Cluster) -> None:
    """PROTOCOL.md: the echo is how a client learns its message arrived. One whose node died before the
    echo reached it sends the message again, same client id, to the node it reconnects to."""
    a, b = await cluster.start("a", "b")
    ann, bob = await Person.join(a, "ann"), await Person.join(b, "bob")
    await ann.say("deploying now", client_id="c-1")
    await bob.until(lambda: "deploying now" in bob.texts(), "ann's message")
    first = next(m for m in bob.chat if m["text"] == "deploying now")

    a.kill()
    back = await Person.join(b, "ann", lastSeenId=first["id"] - 1, epoch=ann.auth["epoch"])
    await back.say("deploying now", client_id="c-1")
    await back.say("deployed", client_id="c-2")
    await bob.until(lambda: "deployed" in bob.texts(), "ann's next message")
    assert bob.texts() == ["deploying now", "deployed"], "the resent message was stored twice"
    await back.until(lambda: back.echo("c-1") is not None, "the answer to the resend")
    echo = back.echo("c-1")
    assert echo is not None and echo["id"] == first["id"]


async def test_resuming_on_another_node_while_the_chat_keeps_going_loses_and_doubles_nothing(cluster: Cluster) -> None:
    """The edge between what ``missed`` brings and what arrives live: messages keep coming from
    two other nodes while the client of a killed node signs in again."""
    a, b, c = await cluster.start("a", "b", "c")
    walt, obs = await Person.join(a, "walt"), await Person.join(c, "obs")
    talkers = [await Person.join(b, "sam"), await Person.join(c, "tia")]
    running = True

    async def talk(person: Person) -> int:
        k = 0
        while running:
            await person.say(f"stream {person.name} {k}")
            k += 1
            await asyncio.sleep(0.01)
        return k

    chatter = [asyncio.create_task(talk(person)) for person in talkers]
    await walt.until(lambda: len(walt.texts("stream ")) >= 20, "the stream")
    a.kill()
    await walt.until(lambda: walt.closed, "its node going away")
    last_seen = walt.chat[-1]["id"]
    back = await Person.join(b, "walt", lastSeenId=last_seen, epoch=walt.auth["epoch"])
    await back.until(lambda: len(back.chat) >= 20, "live messages after resuming")
    running = False
    sent = sum(await asyncio.gather(*chatter))

    await obs.until(lambda: len(obs.texts("stream ")) == sent, f"all {sent} messages", 20)
    await back.until(lambda: len(back.texts("stream ")) + len(walt.texts("stream ")) >= sent, "the rest", 20)
    everything = ids(walt.chat + back.seen)
    assert everything == sorted(set(everything)), "shown twice or out of order at the seam of missed and live"
    assert everything == ids(tagged(obs.chat, "stream ")), "walt's view has a hole the others do not"


async def test_a_node_added_to_a_running_chat_serves_what_was_said_before_it_started(cluster: Cluster) -> None:
    a, b = await cluster.start("a", "b")
    ann = await Person.join(a, "ann")
    before = [await ann.sent(f"early {k}") for k in range(3)]
    [c] = await cluster.start("c")
    cat = await Person.join(c, "cat", lastSeenId=0, epoch=ann.auth["epoch"])
    assert ids(cat.missed) == ids(before) and not cat.auth.get("missedReset")
    await cat.send("history", {"limit": 10})
    await cat.until(lambda: bool(cat.of_type("history")), "a history page")
    page = [frame["data"] for frame in cat.of_type("history")[0]["messages"]]
    assert ids(page) == ids(before)
    later = await ann.sent("later, from node a")
    await cat.until(lambda: "later, from node a" in cat.texts(), "a live message from node a")
    assert cat.chat[-1]["id"] == later["id"] == before[-1]["id"] + 1
    bob = await Person.join(b, "bob")
    await bob.sent("and node b")
    await cat.until(lambda: "and node b" in cat.texts(), "a live message from node b")


async def test_a_node_stopped_for_a_deploy_sends_its_people_to_the_others_with_nothing_lost(cluster: Cluster) -> None:
    a, b = await cluster.start("a", "b")
    ann, obs = await Person.join(a, "ann"), await Person.join(b, "obs")
    mine = await ann.sent("just before the deploy")
    await obs.until(lambda: "just before the deploy" in obs.texts(), "ann's message")

    stopping = asyncio.create_task(asyncio.to_thread(a.process.terminate, 30))
    await ann.until(lambda: ann.closed, "node a closing for the deploy", 30)
    code, reason = ann.close
    assert code == 1012 and reason and "reconnect" in reason, (code, reason)
    meanwhile = await obs.sent("while ann was away")
    assert await stopping == 0, "chatbus serve did not stop cleanly"

    back = await Person.join(b, "ann", lastSeenId=ann.chat[-1]["id"], epoch=ann.auth["epoch"])
    assert ids(back.missed) == [meanwhile["id"]] and not back.auth.get("missedReset")
    assert mine["id"] in ids(obs.chat)


async def test_people_sending_at_once_on_one_node_each_see_their_own_messages_once(cluster: Cluster) -> None:
    # without the rate limiter's round trip to Redis before each message, the appends overlap most
    a, b = await cluster.start("a", "b", env={"CHATBUS_PLUGINS__DISABLE": "ratelimit"})
    senders = [await Person.join(a, f"busy{i}") for i in range(12)]
    onlookers = [await Person.join(a, f"onlooker{i}") for i in range(15)]  # deliveries keep node a busy
    reader = await Person.join(b, "reader")
    per_sender = 40

    async def send_all(person: Person) -> None:
        for k in range(per_sender):
            await person.say(f"busy {person.name} {k}")
            if k % 10 == 9:
                await asyncio.sleep(0.005)

    await asyncio.gather(*(send_all(person) for person in senders))
    total = per_sender * len(senders)
    await reader.until(lambda: len(reader.texts("busy ")) == total, f"all {total} messages", 30)
    for person in senders:
        await person.until(lambda p=person: len(p.texts("busy ")) >= total, "everyone's messages", 30)  # type: ignore[misc]
    await reader.sent("a round trip, so frames sent before it have arrived")
    assert all(len(p.texts("busy ")) == total for p in onlookers)
    for person in senders:
        seen = ids(tagged(person.chat, "busy "))
        doubled = sorted({i for i in seen if seen.count(i) > 1})
        assert not doubled, f"{person.name} was shown messages {doubled} twice"
        assert seen == ids(tagged(reader.chat, "busy ")), f"{person.name} saw another order"


async def test_a_node_that_lost_its_subscription_catches_up_from_the_log(cluster: Cluster) -> None:
    """Redis pub/sub is at most once: what is published while a node's subscription is gone (here:
    the node paused with SIGSTOP while Redis closes every subscriber's connection) never reaches it.
    The node repairs that from the log by id, so its clients still get every message, once, in order."""
    a, b = await cluster.start("a", "b")
    ada, bob = await Person.join(a, "ada"), await Person.join(b, "bob")
    count = 300

    a.process.process.send_signal(signal.SIGSTOP)
    try:
        with redis.Redis(port=cluster.redis.port) as admin:
            assert admin.client_kill_filter(_type="pubsub") >= 2, "no subscriber was dropped: nothing tested"
        for k in range(count):
            await bob.say(f"while a sleeps {k}")
        await bob.until(lambda: len(bob.texts("while a sleeps")) == count, "bob's messages stored", 30)
    finally:
        a.process.process.send_signal(signal.SIGCONT)
    sent = [m for m in bob.chat if m["text"].startswith("while a sleeps")]
    after = await bob.sent("after a woke up")

    await ada.until(lambda: "after a woke up" in ada.texts(), "the message after the pause", 30)
    seen = ids(ada.chat)
    assert seen == ids([*sent, after]), f"node a's client lost or doubled messages: {len(seen)} of {count + 1}"


async def test_messages_in_flight_when_their_node_is_killed_are_kept_once_after_resending(cluster: Cluster) -> None:
    """A client whose node dies mid-burst does not know which of its last messages were stored. It
    resends, with the same client ids, every one it saw no echo of (live or in ``missed``): each
    message is then in the chat exactly once."""
    a, b, c = await cluster.start("a", "b", "c")
    walt, obs = await Person.join(a, "walt"), await Person.join(c, "obs")
    texts = {f"walt-burst-{k}": f"burst {k}" for k in range(60)}
    for client_id, text in texts.items():
        await walt.say(text, client_id=client_id)
        if client_id == "walt-burst-20":
            a.kill()  # with messages before it still on their way
            break
    await walt.until(lambda: walt.closed, "node a going away")
    echoed = {m["clientId"] for m in walt.chat if m.get("clientId")}
    last_seen = walt.chat[-1]["id"] if walt.chat else 0

    back = await Person.join(b, "walt", lastSeenId=last_seen, epoch=walt.auth["epoch"])
    echoed |= {m["clientId"] for m in back.missed if m.get("clientId")}
    for client_id, text in texts.items():
        if client_id not in echoed:
            await back.say(text, client_id=client_id)
    await back.until(lambda: all(back.echo(i) or i in echoed for i in texts), "an answer to every resend", 20)

    await obs.until(lambda: set(obs.texts("burst ")) == set(texts.values()), "all of walt's messages", 20)
    await obs.sent("a round trip, so frames sent before it have arrived")
    shown = obs.texts("burst ")
    assert sorted(shown) == sorted(texts.values()), f"kept twice: {sorted(t for t in shown if shown.count(t) > 1)}"
    assert ids(tagged(obs.chat, "burst ")) == sorted(ids(tagged(obs.chat, "burst ")))
