"""The Redis engine against a real redis-server: two engines stand for two nodes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from redis import asyncio as aioredis

from chatbus import StoreError
from chatbus.core.engine import LISTENING, Engine, Gap, Reset
from chatbus.core.engine.codec import encode
from chatbus.core.engine.redis import RedisEngine
from chatbus.core.message import Attachment, Message, utcnow

from .conftest import Nodes
from .redis_server import RedisServer, free_port


def note(text: str, room: str = "general", **fields: object) -> Message:
    return Message(id=0, text=text, sender="alice", timestamp=utcnow(), room=room, **fields)  # type: ignore[arg-type]


async def test_a_message_round_trips_with_every_field_and_the_same_id_on_every_node(node: Nodes) -> None:
    a, b = await node(), await node()
    original = note(
        "hello @bob", room="ops", kind="agent", sender_role="developer", mentions=("bob",), command="status",
        command_args=("bob", "two words"), reply_to=9, transport="websocket", client_id="c-1", display_name="Al",
        edited_at=utcnow() + timedelta(seconds=1), edited_by="alice", reactions=(("👍", ("bob", "carol")),),
        attachments=(Attachment("ab" * 16, "plan.png", 10, "image/png", 4, 3, "alice"),),
    )  # fmt: skip
    stored = await a.append(original)
    assert stored.id == 1
    assert (await b.since(0, 10)).messages == [stored]
    assert stored == replace(original, id=1)
    assert await b.last_id() == 1


async def test_ids_strictly_increase_across_nodes_under_concurrent_senders(node: Nodes) -> None:
    nodes = [await node() for _ in range(3)]
    stored = await asyncio.gather(*(nodes[i % 3].append(note(f"m{i}")) for i in range(300)))
    assert sorted(m.id for m in stored) == list(range(1, 301))
    log = (await nodes[1].since(0, 1000)).messages
    assert [m.id for m in log] == list(range(1, 301))
    assert {m.text for m in log} == {f"m{i}" for i in range(300)}


async def test_since_and_before_page_through_a_room(node: Nodes) -> None:
    engine = await node()
    for i in range(10):
        await engine.append(note(f"g{i}", room="general"))
        await engine.append(note(f"o{i}", room="ops"))
    assert [m.text for m in (await engine.since(0, 3, "general")).messages] == ["g0", "g1", "g2"]
    assert [m.text for m in (await engine.since(4, 3)).messages] == ["g2", "o2", "g3"]
    newest, more = await engine.before(None, 4, "general")
    assert [m.text for m in newest] == ["g6", "g7", "g8", "g9"] and more is True
    older, more = await engine.before(newest[0].id, 10, "general")
    assert [m.text for m in older] == [f"g{i}" for i in range(6)] and more is False
    everything, more = await engine.before(None, 100, None)
    assert len(everything) == 20 and more is False
    assert await engine.before(1, 10, None) == ([], False)


async def test_every_node_reads_one_epoch_and_a_replaced_log_has_another(
    node: Nodes, redis_server: RedisServer
) -> None:
    a, b = await node(), await node()
    assert a.epoch and a.epoch == b.epoch
    await a.append(note("hi"))
    again = await node()
    assert again.epoch == a.epoch
    async with aioredis.Redis.from_url(redis_server.url) as admin:
        await admin.flushall()
    assert (await node()).epoch != a.epoch


async def test_a_reader_further_behind_than_the_log_keeps_is_told_to_reload(node: Nodes) -> None:
    engine = await node(max_length=5)
    for i in range(10):
        await engine.append(note(f"m{i}"))
    behind = await engine.since(0, 100)
    assert behind.reset is True
    assert [m.id for m in behind.messages] == [6, 7, 8, 9, 10]
    assert (await engine.since(5, 100)).reset is False
    assert (await engine.since(4, 100)).reset is True
    assert (await engine.since(10, 100)).messages == []
    assert await engine.before(None, 100, None) == ((await engine.since(5, 100)).messages, False)


async def collect(subscription: AsyncIterator[Message | Gap | Reset], count: int) -> list[Message | Gap | Reset]:
    out: list[Message | Gap | Reset] = []
    async for item in subscription:
        out.append(item)
        if len(out) == count:
            break
    return out


async def test_every_node_gets_every_message_once_in_id_order(node: Nodes) -> None:
    a, b, c = await node(), await node(), await node()
    await a.append(note("before"))
    got = asyncio.create_task(collect(c.subscribe(0), 41))
    await asyncio.sleep(0.1)
    await asyncio.gather(*(x.append(note(f"m{i}")) for i, x in enumerate([a, b] * 20)))
    items = await asyncio.wait_for(got, 10)
    assert [m.id for m in items if isinstance(m, Message)] == list(range(1, 42))


async def test_a_message_lost_on_the_way_is_recovered_from_the_log(node: Nodes, redis_server: RedisServer) -> None:
    a, b = await node(), await node()
    got = asyncio.create_task(collect(b.subscribe(0), 3))
    await asyncio.sleep(0.1)
    await a.append(note("one"))
    async with aioredis.Redis.from_url(redis_server.url, decode_responses=True) as admin:
        # stored like an append whose PUBLISH never reached b (pub/sub is at-most-once)
        lost = await admin.incr("chatbus:counter")
        await admin.xadd("chatbus:log", {"r": "general", "m": encode(note("two"))}, id=f"{lost}-0")
    await a.append(note("three"))
    items = await asyncio.wait_for(got, 5)
    assert [(m.id, m.text) for m in items if isinstance(m, Message)] == [(1, "one"), (2, "two"), (3, "three")]


async def test_the_last_message_lost_on_the_way_still_arrives(node: Nodes, redis_server: RedisServer) -> None:
    a, b = await node(), await node()
    got = asyncio.create_task(collect(b.subscribe(0), 2))
    await asyncio.sleep(0.1)
    await a.append(note("one"))
    async with aioredis.Redis.from_url(redis_server.url, decode_responses=True) as admin:
        lost = await admin.incr("chatbus:counter")  # and nothing published after it
        await admin.xadd("chatbus:log", {"r": "general", "m": encode(note("two"))}, id=f"{lost}-0")
    items = await asyncio.wait_for(got, 5)
    assert [(m.id, m.text) for m in items if isinstance(m, Message)] == [(1, "one"), (2, "two")]


async def test_a_subscriber_cut_off_from_redis_recovers_what_it_missed_from_the_log(
    node: Nodes, redis_server: RedisServer
) -> None:
    a, b = await node(), await node()
    subscription = b.subscribe(0)
    got = asyncio.create_task(collect(subscription, 60))
    await asyncio.sleep(0.1)
    async with aioredis.Redis.from_url(redis_server.url) as admin:
        for i in range(60):
            await a.append(note(f"m{i}"))
            if i in (10, 30):  # what pub/sub carried meanwhile is lost to b: the stream has it
                await admin.client_kill_filter(_type="pubsub")
    items = await asyncio.wait_for(got, 15)
    assert [m.id for m in items if isinstance(m, Message)] == list(range(1, 61))


async def test_a_subscriber_behind_a_trimmed_log_is_told_of_the_gap(node: Nodes) -> None:
    engine = await node(max_length=5)
    for i in range(8):
        await engine.append(note(f"m{i}"))
    items = await asyncio.wait_for(collect(engine.subscribe(0), 6), 5)
    assert items[0] == Gap(0, 4)
    assert [m.id for m in items[1:] if isinstance(m, Message)] == [4, 5, 6, 7, 8]


async def test_presence_spans_nodes_and_expires_with_a_dead_node(node: Nodes) -> None:
    a, b = await node(), await node()
    await a.set_present("node-a", "alice", 0.3)
    await b.set_present("node-b", "alice", 30)
    await b.set_present("node-b", "bob", 30)
    assert await a.present() == {"alice": {"node-a", "node-b"}, "bob": {"node-b"}}
    await b.set_absent("node-b", "alice")
    await asyncio.sleep(0.5)  # node-a stopped renewing: it died
    assert await b.present() == {"bob": {"node-b"}}


async def test_a_node_renews_all_its_people_at_once(node: Nodes) -> None:
    a = await node()
    crowd = [f"person{n}" for n in range(1500)]  # more than one call's batch
    await a.set_present_many("node-a", crowd, 30)
    await a.set_present_many("node-a", ["late"], 0.3)
    present = await a.present()
    assert set(present) == {*crowd, "late"} and present["person1499"] == {"node-a"}
    await asyncio.sleep(0.5)
    assert "late" not in await a.present()


async def test_a_lease_is_held_by_one_node_and_taken_over_with_a_higher_token(node: Nodes) -> None:
    a, b = await node(), await node()
    first = await a.acquire("telegram-poller", "node-a", 0.3)
    assert first is not None and first.token == 1
    assert await b.acquire("telegram-poller", "node-b", 0.3) is None
    assert await a.renew(first) is True
    assert await a.acquire("telegram-poller", "node-a", 0.3) == first
    await asyncio.sleep(0.5)  # node-a died without releasing it
    second = await b.acquire("telegram-poller", "node-b", 10)
    assert second is not None and second.token > first.token
    assert await a.renew(first) is False
    await a.release(first)  # too late: it is node-b's now, and stays so
    assert await a.acquire("telegram-poller", "node-a", 10) is None
    await b.release(second)
    third = await a.acquire("telegram-poller", "node-a", 10)
    assert third is not None and third.token > second.token


async def test_redis_down_is_a_clear_error_and_the_engine_recovers_when_it_returns(
    node: Nodes, redis_server: RedisServer
) -> None:
    engine = await node()
    await engine.append(note("kept in memory only"))
    redis_server.kill()
    try:
        with pytest.raises(StoreError, match="cannot be reached now: it does not accept connections") as refused:
            await engine.ping()
        assert redis_server.url in str(refused.value)
        assert "Error 111" not in str(refused.value)  # words, not the client library's text
        with pytest.raises(StoreError, match="cannot store the message now"):
            await engine.append(note("refused"))
    finally:
        redis_server.start()
    await engine.ping()
    assert (await engine.append(note("back"))).id >= 1


def test_every_engine_is_an_engine() -> None:
    assert issubclass(RedisEngine, Engine)


async def test_an_append_tried_again_is_stored_once(node: Nodes) -> None:
    a, b = await node(), await node()
    first = await a._append(note("once"), "attempt-1")
    again = await a._append(note("once"), "attempt-1")  # the answer was lost, the append was not
    assert first.id == again.id == 1
    assert [m.text for m in (await b.since(0, 10)).messages] == ["once"]
    assert (await a.append(note("next"))).id == 2


async def test_the_password_of_the_url_is_never_shown(tmp_path: Path) -> None:
    port = free_port()
    engine = RedisEngine(f"redis://:s3cret@127.0.0.1:{port}/0")
    with pytest.raises(StoreError) as refused:
        await engine.open()
    assert "s3cret" not in str(refused.value)
    assert f"redis://:***@127.0.0.1:{port}/0" in str(refused.value)


async def test_a_redis_restarted_without_its_data_is_a_new_log_that_subscribers_are_told_of(
    node: Nodes, redis_server: RedisServer
) -> None:
    a, b = await node(), await node()
    old_epoch = a.epoch
    got = asyncio.create_task(collect(b.subscribe(0), 5))
    await asyncio.sleep(0.1)
    for i in range(3):
        await a.append(note(f"old{i}"))
    redis_server.kill()  # the test's Redis keeps nothing on disk
    redis_server.start()
    after = None
    for _ in range(50):  # the first append may meet the broken connection; it is safe to try again
        try:
            after = await a.append(note("after"))
            break
        except StoreError:
            await asyncio.sleep(0.1)
    assert after is not None and after.id == 1
    assert a.epoch != old_epoch
    items = await asyncio.wait_for(got, 10)
    assert [m.id for m in items[:3] if isinstance(m, Message)] == [1, 2, 3]
    assert items[3] == Reset(a.epoch)
    assert isinstance(items[4], Message) and (items[4].id, items[4].text) == (1, "after")
    assert b.epoch == a.epoch


async def test_a_rooms_history_is_read_from_its_index_and_trimmed_with_the_log(node: Nodes) -> None:
    engine = await node(max_length=5)
    for i in range(3):
        await engine.append(note(f"quiet{i}", room="quiet"))
    for i in range(4):
        await engine.append(note(f"busy{i}", room="busy"))
    # the log keeps ids 3..7: quiet2 and busy0..3
    assert [m.text for m in (await engine.before(None, 10, "quiet"))[0]] == ["quiet2"]
    assert (await engine.before(None, 10, "quiet"))[1] is False
    assert [m.text for m in (await engine.since(2, 10, "busy")).messages] == ["busy0", "busy1", "busy2", "busy3"]
    behind = await engine.since(0, 10, "quiet")
    assert behind.reset is True and [m.text for m in behind.messages] == ["quiet2"]
    page, more = await engine.before(7, 2, "busy")
    assert [m.text for m in page] == ["busy1", "busy2"] and more is True
    assert await engine.since(7, 10, "nowhere") == (await engine.since(7, 10))


async def test_passing_events_reach_the_other_nodes_only(node: Nodes) -> None:
    a, b = await node(), await node()

    async def first(engine: RedisEngine, me: str) -> dict[str, object]:
        async for event in engine.events(me):
            if event != LISTENING:  # said first: from now on what the others broadcast comes here
                return event
        raise AssertionError("the events ended")

    at_a = asyncio.create_task(first(a, "node-a"))
    at_b = asyncio.create_task(first(b, "node-b"))
    await asyncio.sleep(0.2)
    typing = {"type": "typing", "userId": "alice", "room": "général"}
    await a.broadcast("node-a", typing)
    assert await asyncio.wait_for(at_b, 5) == typing
    await asyncio.sleep(0.2)
    assert not at_a.done()  # its own event does not come back to node-a
    await b.broadcast("node-b", {"type": "presence", "userId": "bob", "status": "online"})
    assert (await asyncio.wait_for(at_a, 5))["userId"] == "bob"


async def test_a_rate_limit_holds_across_nodes(node: Nodes) -> None:
    a, b, c = await node(), await node(), await node()
    nodes = [a, b, c]
    waits = [await nodes[i % 3].take("alice", burst=3, per_second=0.5, per_hour=None) for i in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]  # one burst for alice, not one per node
    assert 0.0 < waits[3] <= 2.0 and 0.0 < waits[4] <= 2.0
    assert await a.take("bob", burst=3, per_second=0.5, per_hour=None) == 0.0  # each person has their own


async def test_the_hourly_cap_holds_across_nodes(node: Nodes) -> None:
    a, b = await node(), await node()
    taken = [await (a, b)[i % 2].take("alice", burst=100, per_second=100, per_hour=4) for i in range(4)]
    assert taken == [0.0] * 4
    wait = await b.take("alice", burst=100, per_second=100, per_hour=4)
    assert 3590 < wait <= 3600
