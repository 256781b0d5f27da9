"""The roster, id maps, state and message changes on Redis mean what they mean in memory.

Each test runs the same assertions against the memory store and against
:class:`RedisState` over a real redis-server; the Redis-only ones show two
nodes sharing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
from redis import asyncio as aioredis

from chatbus import StoreError
from chatbus.core.engine.redis import RedisEngine
from chatbus.core.engine.redis_state import RedisState
from chatbus.core.message import Agent, Message, utcnow
from chatbus.core.store.memory import MemoryStore

from .redis_server import RedisServer


@dataclass
class Side:
    """One place the state is kept: ``state`` answers as a store does; ``append`` logs a message."""

    state: Any
    append: Callable[[Message], Awaitable[Message]]
    get: Callable[[int], Awaitable[Message | None]]
    #: History as the hub reads it: ``since(after_id, limit, room)``, changes included.
    since: Callable[[int, int, str | None], Awaitable[list[Message]]]


async def _engine(server: RedisServer) -> RedisEngine:
    engine = RedisEngine(server.url)
    await engine.open()
    return engine


def _redis_side(engine: RedisEngine) -> Side:
    state = RedisState(engine)

    async def since(after_id: int, limit: int, room: str | None) -> list[Message]:
        return await state.overlay((await engine.since(after_id, limit, room)).messages)

    return Side(state, engine.append, state.get, since)


@pytest.fixture
async def empty_redis(redis_server: RedisServer) -> RedisServer:
    return await redis_server.emptied()


@pytest.fixture(params=["memory", "redis"])
async def side(request: pytest.FixtureRequest, redis_server: RedisServer) -> AsyncIterator[Side]:
    if request.param == "memory":
        store = MemoryStore()

        async def append(message: Message) -> Message:
            stored = replace(message, id=store.allocate_id())
            await store.append(stored)
            return stored

        yield Side(store, append, store.get, store.since)
        return
    engine = await _engine(await redis_server.emptied())
    yield _redis_side(engine)
    await engine.close()


def note(text: str, **fields: Any) -> Message:
    return Message(id=0, text=text, sender="alice", timestamp=utcnow(), room="general", **fields)


async def test_the_roster_keeps_every_field_and_lists_agents_by_name(side: Side) -> None:
    coder = Agent("coder", "developer", command=("python", "-m", "bot"), model="m1", stdin=True, allow=("ops",))
    bare = Agent("aardvark", "tester", command=(), allow=())
    await side.state.save_agent(coder)
    await side.state.save_agent(bare)
    assert await side.state.get_agent("coder") == coder
    assert await side.state.get_agent("aardvark") == bare
    assert await side.state.list_agents() == [bare, coder]
    assert await side.state.get_agent("nobody") is None
    renamed_role = Agent("coder", "reviewer")
    await side.state.save_agent(renamed_role)
    assert await side.state.get_agent("coder") == renamed_role
    assert await side.state.remove_agent("coder") is True
    assert await side.state.remove_agent("coder") is False
    assert await side.state.list_agents() == [bare]


async def test_updating_an_agent_changes_only_the_fields_named(side: Side) -> None:
    await side.state.save_agent(Agent("coder", "developer", command=("bot",)))
    updated = await side.state.update_agent("coder", status="working", current_task="fix #3", progress=40)
    assert updated == Agent("coder", "developer", ("bot",), "working", "fix #3", 40)
    assert await side.state.get_agent("coder") == updated
    assert await side.state.update_agent("nobody", status="idle") is None
    assert await side.state.get_agent("nobody") is None
    with pytest.raises(TypeError, match="unknown agent fields"):
        await side.state.update_agent("coder", mood="cheerful")
    assert await side.state.get_agent("coder") == updated


async def test_external_ids_map_both_ways_per_transport(side: Side) -> None:
    await side.state.map_external("telegram", 1, "100")
    await side.state.map_external("telegram", 1, "101")
    await side.state.map_external("telegram", 2, "200")
    await side.state.map_external("irc", 1, "100")
    assert await side.state.hub_id_for("telegram", "100") == 1
    assert await side.state.hub_id_for("telegram", "999") is None
    assert await side.state.hub_id_for("matrix", "100") is None
    assert await side.state.external_ids_for("telegram", 1) == ["100", "101"]
    assert await side.state.external_ids_for("irc", 1) == ["100"]
    assert await side.state.external_ids_for("telegram", 3) == []
    # An external id mapped again belongs to the new hub id only, keeping its place.
    await side.state.map_external("telegram", 2, "100")
    assert await side.state.hub_id_for("telegram", "100") == 2
    assert await side.state.external_ids_for("telegram", 1) == ["101"]
    assert await side.state.external_ids_for("telegram", 2) == ["100", "200"]
    await side.state.map_external("telegram", 2, "100")
    assert await side.state.external_ids_for("telegram", 2) == ["100", "200"]


async def test_state_values_are_set_replaced_and_deleted(side: Side) -> None:
    assert await side.state.get_state("telegram.offset") is None
    await side.state.set_state("telegram.offset", "41")
    await side.state.set_state("marker", "été ✓")
    await side.state.set_state("telegram.offset", "42")
    assert await side.state.get_state("telegram.offset") == "42"
    assert await side.state.get_state("marker") == "été ✓"
    await side.state.set_state("telegram.offset", None)
    await side.state.set_state("never.set", None)
    assert await side.state.get_state("telegram.offset") is None
    assert await side.state.get_state("marker") == "été ✓"


async def test_an_edit_replaces_the_message_and_keeps_the_text_it_had(side: Side) -> None:
    first = await side.append(note("helo"))
    edited = replace(first, text="hello", edited_at=first.timestamp + timedelta(seconds=5), edited_by="alice")
    await side.state.replace(edited, first)
    assert await side.get(first.id) == edited
    deleted = replace(edited, text="", deleted_at=edited.timestamp + timedelta(seconds=9), deleted_by="alice")
    await side.state.replace(deleted, edited)
    assert await side.get(first.id) == deleted
    assert await side.state.versions(first.id) == ["helo", "hello"]
    # The same text again (a change of something else) keeps no version.
    await side.state.replace(replace(deleted, deleted_by="mod"), deleted)
    assert await side.state.versions(first.id) == ["helo", "hello"]


async def test_any_text_is_kept_as_it_was(side: Side) -> None:
    texts = ['é ✓ "quoted" / \\ back', "line\nbreak\ttab", "12", "[]", "{}", "null", "🙂" * 3]
    message = await side.append(note(texts[0]))
    for before, after in pairwise(texts):
        await side.state.replace(replace(message, text=after), replace(message, text=before))
    assert await side.state.versions(message.id) == texts[:-1]
    assert await side.get(message.id) == replace(message, text=texts[-1])


async def test_an_answer_being_written_keeps_no_partial_text(side: Side) -> None:
    answer = await side.append(note("Th", streaming=True, kind="agent"))
    grown = replace(answer, text="The answer")
    await side.state.replace(grown, answer)
    done = replace(grown, streaming=False)
    await side.state.replace(done, grown)
    assert await side.get(answer.id) == done
    assert await side.state.versions(answer.id) == []


async def test_history_pages_show_messages_as_they_are_now(side: Side) -> None:
    first = await side.append(note("helo"))
    second = await side.append(note("plain"))
    third = await side.append(replace(note("ops only"), room="ops"))
    await side.state.replace(replace(first, text="hello"), first)
    await side.state.react(third.id, "👍", "bob", True)
    assert await side.since(0, 10, None) == [
        replace(first, text="hello"),
        second,
        replace(third, reactions=(("👍", ("bob",)),)),
    ]
    assert await side.since(0, 10, "general") == [replace(first, text="hello"), second]


async def test_changes_to_a_message_the_log_does_not_have_are_nothing(side: Side) -> None:
    await side.append(note("only one"))
    ghost = replace(note("ghost"), id=7)
    await side.state.replace(replace(ghost, text="boo"), ghost)
    assert await side.state.react(7, "👍", "bob", True) == ()
    assert await side.state.versions(7) == []
    assert await side.get(7) is None


async def test_reactions_are_added_once_removed_and_kept_across_edits(side: Side) -> None:
    message = await side.append(note("ship it?", reactions=(("👀", ("carol",)),)))
    assert await side.state.react(message.id, "👍", "bob", True) == (("👀", ("carol",)), ("👍", ("bob",)))
    assert await side.state.react(message.id, "👍", "dan", True) == (("👀", ("carol",)), ("👍", ("bob", "dan")))
    assert await side.state.react(message.id, "👍", "bob", True) == (("👀", ("carol",)), ("👍", ("bob", "dan")))
    assert await side.state.react(message.id, "👀", "carol", False) == (("👍", ("bob", "dan")),)
    assert await side.state.react(message.id, "🎉", "erin", False) == (("👍", ("bob", "dan")),)
    # An edit carries the reactions the sender saw; the ones kept win.
    edited = replace(message, text="ship it!", reactions=())
    await side.state.replace(edited, message)
    now = await side.get(message.id)
    assert now == replace(edited, reactions=(("👍", ("bob", "dan")),))
    assert await side.state.react(message.id, "👍", "bob", False) == (("👍", ("dan",)),)
    assert (await side.get(message.id)) == replace(edited, reactions=(("👍", ("dan",)),))


async def test_two_nodes_share_the_roster_maps_state_and_changes(empty_redis: RedisServer) -> None:
    a_engine, b_engine = await _engine(empty_redis), await _engine(empty_redis)
    try:
        a, b = _redis_side(a_engine), _redis_side(b_engine)
        await a.state.save_agent(Agent("coder", "developer"))
        await a.state.map_external("telegram", 1, "100")
        await a.state.set_state("k", "v")
        message = await a.append(note("helo"))
        await a.state.replace(replace(message, text="hello"), message)
        await a.state.react(message.id, "👍", "bob", True)
        assert await b.state.list_agents() == [Agent("coder", "developer")]
        assert await b.state.hub_id_for("telegram", "100") == 1
        assert await b.state.get_state("k") == "v"
        assert await b.get(message.id) == replace(message, text="hello", reactions=(("👍", ("bob",)),))
        assert await b.state.versions(message.id) == ["helo"]
    finally:
        await a_engine.close()
        await b_engine.close()


async def test_reactions_and_updates_from_many_nodes_at_once_are_all_kept(empty_redis: RedisServer) -> None:
    engines = [await _engine(empty_redis) for _ in range(3)]
    try:
        nodes = [_redis_side(engine) for engine in engines]
        message = await nodes[0].append(note("vote"))
        await nodes[0].state.save_agent(Agent("coder", "developer"))
        users = [f"user{i}" for i in range(30)]
        await asyncio.gather(*(nodes[i % 3].state.react(message.id, "👍", u, True) for i, u in enumerate(users)))
        now = await nodes[1].get(message.id)
        assert now is not None and len(dict(now.reactions)["👍"]) == 30
        assert set(dict(now.reactions)["👍"]) == set(users)
        await asyncio.gather(
            nodes[0].state.update_agent("coder", status="working"),
            nodes[1].state.update_agent("coder", current_task="fix #3"),
            nodes[2].state.update_agent("coder", progress=50),
        )
        assert await nodes[2].state.get_agent("coder") == Agent("coder", "developer", None, "working", "fix #3", 50)
    finally:
        for engine in engines:
            await engine.close()


async def test_redis_down_is_a_clear_error_and_the_state_is_there_when_it_returns(
    empty_redis: RedisServer,
) -> None:
    engine = await _engine(empty_redis)
    try:
        node = _redis_side(engine)
        await node.state.set_state("k", "v")
        empty_redis.kill()
        try:
            with pytest.raises(StoreError, match="cannot keep the roster now") as refused:
                await node.state.save_agent(Agent("coder", "developer"))
            assert empty_redis.url in str(refused.value)
            with pytest.raises(StoreError, match="cannot read the state now"):
                await node.state.get_state("k")
        finally:
            empty_redis.start()
        await node.state.save_agent(Agent("coder", "developer"))
        assert await node.state.get_agent("coder") == Agent("coder", "developer")
    finally:
        await engine.close()


async def test_changes_of_messages_trimmed_from_the_log_are_forgotten(empty_redis: RedisServer) -> None:
    engine = RedisEngine(empty_redis.url, max_length=3)
    await engine.open()
    try:
        node = _redis_side(engine)
        old = [await node.append(note(f"old {i}")) for i in range(3)]
        await node.state.replace(replace(old[0], text="edited"), old[0])
        await node.state.react(old[1].id, "👍", "bob", True)
        await node.state.react(old[2].id, "👍", "bob", True)
        new = [await node.append(note(f"new {i}")) for i in range(2)]  # the log keeps old 2, new 0 and new 1
        async with aioredis.Redis.from_url(empty_redis.url, decode_responses=True) as admin:
            assert set(await admin.keys("chatbus:change:*")) == {f"chatbus:change:{m.id}" for m in old}
            await node.state.replace(replace(new[0], text="edited too"), new[0])
            assert set(await admin.keys("chatbus:change:*")) == {
                f"chatbus:change:{old[2].id}",
                f"chatbus:change:{new[0].id}",
            }
            assert await node.state.prune() == 0
            assert await node.get(old[2].id) == replace(old[2], reactions=(("👍", ("bob",)),))
            assert await node.get(old[0].id) is None
            assert await node.state.versions(old[0].id) == []
            await node.state.react(old[1].id, "🎉", "bob", True)  # trimmed: nothing kept
            assert await admin.exists(f"chatbus:change:{old[1].id}") == 0
    finally:
        await engine.close()


async def test_prune_forgets_changes_left_by_reactions_alone(empty_redis: RedisServer) -> None:
    engine = RedisEngine(empty_redis.url, max_length=2)
    await engine.open()
    try:
        node = _redis_side(engine)
        reacted = [await node.append(note(f"m{i}")) for i in range(2)]
        for message in reacted:
            await node.state.react(message.id, "👍", "bob", True)
        await node.append(note("m2"))
        await node.append(note("m3"))
        assert await node.state.prune(limit=1) == 1
        assert await node.state.prune() == 1
        assert await node.state.prune() == 0
        async with aioredis.Redis.from_url(empty_redis.url) as admin:
            assert await admin.keys("chatbus:change*") == []
    finally:
        await engine.close()
