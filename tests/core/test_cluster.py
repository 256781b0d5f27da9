"""Several hubs sharing one real redis-server, in one process: what each node's people see.

The end-to-end proof with real ``chatbus serve`` processes (SIGKILL, Redis
restarts) is in tests/cluster/; here the nodes' parts are checked one by one,
with hubs that can be inspected directly.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from chatbus import Hub, Message, Settings, hookimpl
from chatbus.core.errors import StoreError
from chatbus.core.message import AgentStatus, MessageEdited, Presence, Reaction, Typing
from chatbus.testing import FakeClock, MemoryTransport

from .engine.redis_server import RedisServer

pytestmark = pytest.mark.asyncio

TTL = 1.0


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(Path(tmp_path_factory.mktemp("redis"))) as server:
        yield server


class Counting:
    """A plugin that records every on_message call, wherever it runs."""

    def __init__(self, seen: list[tuple[str, int]], node: str) -> None:
        self.seen, self.node = seen, node

    @hookimpl
    def on_message(self, message: Message, hub: Hub) -> None:
        self.seen.append((self.node, message.id))


class OnceTransport(MemoryTransport):
    """A transport that must run on one node at a time, as a Telegram bot does."""

    once_per_cluster = True

    def __init__(self) -> None:
        super().__init__("once")
        self.starts = 0

    async def start(self, hub: Hub) -> None:
        self.starts += 1
        await super().start(hub)


class Nodes:
    """Hubs of one chat (one key prefix in the shared Redis), started on demand."""

    def __init__(self, url: str, stack: AsyncExitStack) -> None:
        self.url, self.stack = url, stack
        self.prefix = f"t{uuid.uuid4().hex[:8]}"
        self.seen: list[tuple[str, int]] = []

    def settings(self, node: str) -> Settings:
        engine = {"url": self.url, "prefix": self.prefix, "node": node, "lease_ttl": TTL}
        return Settings.isolated(db=":memory:", engine=engine)

    async def start(self, node: str, *transports: MemoryTransport) -> tuple[Hub, MemoryTransport]:
        chat = MemoryTransport()
        hub = Hub(
            self.settings(node),
            transports=[chat, *transports],
            plugins=[Counting(self.seen, node)],
            load_entrypoints=False,
            clock=FakeClock(),
        )
        await self.stack.enter_async_context(hub)
        return hub, chat


@pytest.fixture
async def nodes(redis_server: RedisServer) -> AsyncIterator[Nodes]:
    async with AsyncExitStack() as stack:
        yield Nodes(redis_server.url, stack)


async def _eventually(check: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


async def test_a_message_on_one_node_reaches_the_others_with_its_id_and_plugins_run_once(nodes: Nodes) -> None:
    a, chat_a = await nodes.start("a")
    _, chat_b = await nodes.start("b")
    _, chat_c = await nodes.start("c")
    sent = await chat_a.say("ann", "hello everyone")
    for chat in (chat_a, chat_b, chat_c):
        got = await chat.wait_for(lambda m: m.text == "hello everyone")
        assert got.id == sent.id and got.sender == "ann"
    answer = await a.send("from the system")
    assert answer.id == sent.id + 1
    await chat_c.wait_for(lambda m: m.id == answer.id)
    await _eventually(lambda: {i for _, i in nodes.seen} >= {sent.id, answer.id})
    await asyncio.sleep(0.3)  # a second node running the plugins would have by now
    assert sorted(i for _, i in nodes.seen) == [sent.id, answer.id]
    assert len({node for node, _ in nodes.seen}) == 1  # all on the node that holds the duty
    # each node measures the broker: from accepting a message to hearing it from Redis
    assert b"chatbus_broker_latency_seconds_count 2.0" in a.metrics.exposition()


async def test_presence_typing_status_and_changes_cross_nodes(nodes: Nodes) -> None:
    a, chat_a = await nodes.start("a")
    b, chat_b = await nodes.start("b")
    await chat_a.join("ann")
    await chat_b.wait_for_event(lambda e: isinstance(e, Presence) and e.user_id == "ann" and e.status == "online")
    assert b.is_online("ann") and any(m.user_id == "ann" for m in b.members())
    a.typing(a.identity_of("ann"))  # type: ignore[arg-type]
    await chat_b.wait_for_event(lambda e: isinstance(e, Typing) and e.user_id == "ann")

    await a.hire("alice", "developer")
    await _eventually(lambda: "alice" in b.agents)
    await a.set_agent_status("alice", "working", "release notes", 40)
    status = await chat_b.wait_for_event(lambda e: isinstance(e, AgentStatus) and e.user_id == "alice")
    assert status == AgentStatus("alice", "working", "release notes", 40)
    assert b.agents["alice"].status == "working"

    said = await chat_a.say("ann", "frist")
    await chat_b.wait_for(lambda m: m.id == said.id)
    identity = a.identity_of("ann")
    assert identity is not None
    await a.edit(identity, said.id, "first")
    edited = await chat_b.wait_for_change(lambda c: isinstance(c, MessageEdited))
    assert edited.message.text == "first" and edited.message.id == said.id
    await a.react(identity, said.id, "👍")
    reaction = await chat_b.wait_for_change(lambda c: isinstance(c, Reaction))
    assert (reaction.emoji, reaction.user_id, reaction.on) == ("👍", "ann", True)
    a.tell("ann", "only for ann")
    await _eventually(lambda: any(n.text == "only for ann" for n in chat_b.notices))

    await chat_a.leave("ann")
    await chat_b.wait_for_event(lambda e: isinstance(e, Presence) and e.user_id == "ann" and e.status == "offline")
    assert not b.is_online("ann")


async def test_someone_on_two_nodes_stays_online_until_their_last_node_lets_go(nodes: Nodes) -> None:
    _, chat_a = await nodes.start("a")
    b, chat_b = await nodes.start("b")
    c, chat_c = await nodes.start("c")
    await chat_a.join("ann")
    await chat_b.join("ann")
    await chat_c.join("cid")
    await chat_c.wait_for_event(lambda e: isinstance(e, Presence) and e.user_id == "ann")
    await _eventually(lambda: b.people_online == 2)  # ann (here and on a) and cid, each once
    assert c.people_online == 2
    await chat_a.leave("ann")
    await asyncio.sleep(0.5)
    assert not any(isinstance(e, Presence) and e.status == "offline" for e in chat_c.events + chat_b.events)
    assert (b.people_online, c.people_online) == (2, 2)
    await chat_b.leave("ann")
    await chat_c.wait_for_event(lambda e: isinstance(e, Presence) and e.user_id == "ann" and e.status == "offline")
    await _eventually(lambda: b.people_online == 1)
    assert c.people_online == 1
    assert [e.status for e in chat_c.events if isinstance(e, Presence) and e.user_id == "ann"] == ["online", "offline"]


async def test_a_node_that_stops_renewing_takes_its_people_offline_for_the_others(nodes: Nodes) -> None:
    b, chat_b = await nodes.start("b")
    engine = b.store.engine
    assert engine is not None
    # A node "ghost" says ann is with it, then dies: it renews nothing after this.
    await engine.set_present("ghost", "ann", TTL)
    ghost = {"t": "presence", "n": "ghost", "user_id": "ann", "role": "user", "kind": "human", "status": "online"}
    async with asyncio.timeout(5):
        while not b.is_online("ann"):  # said again until b listens
            await engine.broadcast("ghost", ghost)
            await asyncio.sleep(0.05)
    await chat_b.wait_for_event(lambda e: isinstance(e, Presence) and e.user_id == "ann" and e.status == "online")
    offline = await chat_b.wait_for_event(lambda e: isinstance(e, Presence) and e.status == "offline", timeout=4 * TTL)
    assert offline.user_id == "ann" and not b.is_online("ann")


async def test_a_node_that_starts_learns_who_is_online_elsewhere(nodes: Nodes) -> None:
    _, chat_a = await nodes.start("a")
    await chat_a.join("ann")
    b, _ = await nodes.start("b")
    await _eventually(lambda: b.is_online("ann"))


async def test_the_plugins_move_to_another_node_and_go_on_after_the_last_message_they_took(nodes: Nodes) -> None:
    a, _ = await nodes.start("a")
    await asyncio.sleep(0.2)  # a takes the duty first
    _, chat_b = await nodes.start("b")
    first = await chat_b.say("bob", "one")
    await _eventually(lambda: first.id in {i for _, i in nodes.seen})
    assert nodes.seen == [("a", first.id)]
    await a.stop()  # a clean stop lets the duty go at once
    second = await chat_b.say("bob", "two")
    await _eventually(lambda: second.id in {i for _, i in nodes.seen})
    assert nodes.seen == [("a", first.id), ("b", second.id)]


async def test_a_transport_that_runs_once_runs_on_one_node_and_moves_when_it_stops(nodes: Nodes) -> None:
    once_a, once_b = OnceTransport(), OnceTransport()
    a, chat_a = await nodes.start("a", once_a)
    await _eventually(lambda: once_a.starts == 1)
    b, _ = await nodes.start("b", once_b)
    said = await chat_a.say("ann", "to the bot")
    await once_a.wait_for(lambda m: m.id == said.id)
    await asyncio.sleep(0.3)
    assert once_b.starts == 0 and once_b.delivered == []
    assert "on the node holding the duty transport:once" in b.transport_status()["once"]["detail"]
    await a.stop()
    await _eventually(lambda: once_b.starts == 1, timeout=4 * TTL)
    later = await b.send("after the move")
    await once_b.wait_for(lambda m: m.id == later.id)


async def test_a_write_under_a_lost_duty_is_refused(nodes: Nodes) -> None:
    once = OnceTransport()
    a, _ = await nodes.start("a", once)
    await _eventually(lambda: once.starts == 1)
    assert await a.cluster.set_state("once.offset", "7", "transport:once")
    assert await a.store.get_state("once.offset") == "7"
    lease = a.cluster.lease("transport:once")
    assert lease is not None
    engine = a.store.engine
    assert engine is not None
    await engine.release(lease)  # as if it expired while this node could not renew it
    assert await engine.acquire("transport:once", "b", TTL) is not None  # and another node took it
    assert not await a.cluster.set_state("once.offset", "8", "transport:once")
    assert await a.store.get_state("once.offset") == "7"


async def test_while_redis_is_away_a_message_is_refused_in_words_and_readiness_says_so(
    tmp_path: Path,
) -> None:
    with RedisServer(tmp_path / "redis", appendonly=True) as server:
        async with AsyncExitStack() as stack:
            nodes = Nodes(server.url, stack)
            a, chat_a = await nodes.start("a")
            kept = await chat_a.say("ann", "before")
            server.stop()
            with pytest.raises(StoreError, match="not stored: the chat's storage cannot be reached"):
                await chat_a.say("ann", "while away")
            ready, why = await a.ready()
            assert not ready and "cannot be reached now: it does not accept connections" in why, why
            server.start()
            after = await chat_a.say("ann", "after")
            assert after.id > kept.id
            await chat_a.wait_for(lambda m: m.id == after.id, timeout=10)
            assert (await a.ready())[0]
            assert [m.text for m in await a.since(0, 10)] == ["before", "after"]


async def test_a_message_resent_to_another_node_with_its_client_id_is_stored_once(nodes: Nodes) -> None:
    a, chat_a = await nodes.start("a")
    b, chat_b = await nodes.start("b")
    ann_a, ann_b = await chat_a.join("ann"), await chat_b.join("ann")
    first = await a.receive(ann_a, "deploy now", client_id="c-1", transport="memory")
    again = await b.receive(ann_b, "deploy now", client_id="c-1", transport="memory")  # its node went away
    assert again.id == first.id
    other = await b.receive(ann_b, "deploy now", client_id="c-2", transport="memory")  # a new message
    await chat_a.wait_for(lambda m: m.id == other.id)
    assert [m.id for m in chat_a.delivered if m.text == "deploy now"] == [first.id, other.id]


async def test_a_store_failure_reaches_people_in_words_and_its_cause_only_the_log() -> None:
    from chatbus.core.errors import STORE_AWAY, NotStored, for_people

    cause = StoreError("Redis at redis://10.0.0.5:6379/0 cannot read the log now: Error 111 connecting")
    assert for_people(cause) == STORE_AWAY  # no address, no exception text
    refused = NotStored("Your message was not stored: the chat's storage cannot be reached right now.")
    assert for_people(refused) == str(refused)


class Leading:
    """A plugin with work that must run once per chat."""

    def __init__(self, log: list[str], node: str) -> None:
        self.log, self.node = log, node

    @hookimpl
    def on_startup(self, hub: Hub) -> None:
        async def start() -> None:
            self.log.append(f"{self.node} leads")

        async def stop() -> None:
            self.log.append(f"{self.node} steps down")

        hub.cluster.on_lead(start, stop)


async def test_work_once_per_chat_runs_on_one_node_and_moves_with_the_duty(nodes: Nodes) -> None:
    from chatbus.testing import make_hub

    log: list[str] = []
    async with make_hub([Leading(log, "alone")]):
        await _eventually(lambda: log == ["alone leads"])  # one node: once, after start-up

    log.clear()
    a = Hub(nodes.settings("a"), transports=[MemoryTransport()], plugins=[Leading(log, "a")], load_entrypoints=False)
    b = Hub(nodes.settings("b"), transports=[MemoryTransport()], plugins=[Leading(log, "b")], load_entrypoints=False)
    await nodes.stack.enter_async_context(a)
    await _eventually(lambda: log == ["a leads"])
    await nodes.stack.enter_async_context(b)
    await asyncio.sleep(0.5)
    assert log == ["a leads"]
    await a.stop()
    await _eventually(lambda: log == ["a leads", "a steps down", "b leads"], timeout=4 * TTL)


async def test_a_client_further_behind_than_the_log_keeps_is_told_to_reload(redis_server: RedisServer) -> None:
    from chatbus.core.engine.redis import RedisEngine
    from chatbus.core.engine.redis_store import RedisStore

    from ..transports.websocket.helpers import running

    store = RedisStore(RedisEngine(redis_server.url, prefix=f"t{uuid.uuid4().hex[:8]}", max_length=1000))
    async with running(store=store, replay_limit=3) as server:
        for n in range(1010):
            await server.hub.send(f"m{n}", sender="coder")
        kept = await store.kept_from()
        assert kept > 1  # the log keeps the newest 1,000 only
        epoch = server.hub.store.epoch
        behind = await server.client("alice", lastSeenId=kept - 5, epoch=epoch)
        assert behind.auth["missedReset"] is True  # messages it missed are gone: reload, do not trust a gap
        assert [f["data"]["text"] for f in behind.auth["missed"]] == ["m1007", "m1008", "m1009"]
        await behind.close()
        near = await server.client("bob", lastSeenId=kept - 1, epoch=epoch)
        assert near.auth["missedReset"] is False  # it missed nothing the log dropped
        await near.close()


async def test_a_message_stored_before_any_node_took_the_plugins_is_still_handled(nodes: Nodes) -> None:
    _, chat = await nodes.start("a")
    said = await chat.say("ann", "the very first words")  # before the node took the on-message duty
    await _eventually(lambda: ("a", said.id) in nodes.seen)
