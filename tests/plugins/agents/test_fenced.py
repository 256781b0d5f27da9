"""On several nodes, the agents' work belongs to the node holding the duty ``on-message``: a node
that lost it (another took it while this one was paused past its lease) neither reports a task
that ends there nor takes the next one from the queue, and never overwrites the saved work. The
node that took over reports the task as interrupted and carries on (tests/cluster/)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from chatbus import AgentStatus, Hub, Settings
from chatbus.core.message import MessageEdited
from chatbus.testing import FakeClock, MemoryTransport
from tests.core.engine.redis_server import RedisServer

from . import llm_models as models
from .llm_models import Prompted, llm_models

__all__ = ["llm_models"]  # the fixture

#: Says it started (the live status appears), then waits for ``go`` and ends without a word.
WAIT_FOR_GO = (
    "import pathlib, sys, time\nprint('started', flush=True)\n"
    "while not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.02)"
)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(Path(tmp_path_factory.mktemp("redis"))) as server:
        yield server


@pytest.fixture
async def node(redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[tuple[Hub, MemoryTransport, str]]:
    prefix = f"f{uuid.uuid4().hex[:8]}"
    engine = {"url": redis_server.url, "prefix": prefix, "node": "a", "lease_ttl": 30.0}
    agents = {"allow_roles": ["user"], "workdir": str(tmp_path / "agents"), "kill_grace": 1}
    chat = MemoryTransport()
    hub = Hub(
        Settings.isolated(db=":memory:", engine=engine, agents=agents),
        transports=[chat],
        load_entrypoints=False,
        clock=FakeClock(),
    )
    async with hub:
        yield hub, chat, prefix


async def eventually_async(read: Callable[[], Awaitable[str | None]], expected: str, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while await read() != expected:
            await asyncio.sleep(0.02)


async def test_a_node_that_lost_the_agents_says_and_starts_nothing_more(
    node: tuple[Hub, MemoryTransport, str], redis_server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub, chat, prefix = node
    go = tmp_path / "go"
    await hub.hire("alice", "developer", [sys.executable, "-c", WAIT_FOR_GO, str(go)])
    first = await chat.say("carol", "@alice please build alpha")
    live = await chat.wait_for(lambda m: m.reply_to == first.id and m.text.startswith("⏳"))
    second = await chat.say("carol", "@alice please build beta")
    await chat.wait_for(lambda m: m.reply_to == second.id and m.text.startswith("I'm busy"))
    saved = await hub.store.get_state("agents.work")
    last = hub.store.last_id
    await eventually_async(lambda: hub.store.get_state("cluster.on_message.done"), str(last))  # a is idle

    # Node b takes the duty, as when a was paused past its lease; a has not noticed yet.
    async with Redis.from_url(redis_server.url) as redis:
        await redis.set(f"{prefix}:lease:on-message", "b\n999", px=30_000)
    caplog.set_level(logging.INFO, logger="chatbus.agents")
    go.touch()  # alpha's worker ends on a
    await asyncio.sleep(1.5)  # alpha has ended on a, and a acted on it

    assert not [m.text for m in chat.delivered if m.reply_to == first.id and m.text.startswith("✅")]
    edits = [c.message.text for c in chat.changes if isinstance(c, MessageEdited) and c.message.id == live.id]
    assert not [text for text in edits if not text.startswith("⏳")], f"a said how alpha ended: {edits}"
    assert not [e for e in chat.events if isinstance(e, AgentStatus) and e.current_task == "build beta"]
    assert await hub.store.get_state("agents.work") == saved
    kept = json.loads(saved or "{}")["agents"]["alice"]
    assert (kept["current"]["task"], [job["task"] for job in kept["pending"]]) == ("build alpha", ["build beta"])
    assert "another node runs the agents now; its work stops here" in caplog.text


async def test_a_node_that_lost_the_agents_stops_writing_an_answer_it_was_streaming(
    redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, llm_models: list[Prompted]
) -> None:
    monkeypatch.setattr(models, "DELAY", 0.1)  # an answer that takes seconds to come
    prefix = f"f{uuid.uuid4().hex[:8]}"
    engine = {"url": redis_server.url, "prefix": prefix, "node": "a", "lease_ttl": 30.0}
    agents = {"allow_roles": ["user"], "workdir": str(tmp_path / "agents"), "stream_interval": 0}
    chat = MemoryTransport()
    settings = Settings.isolated(db=":memory:", engine=engine, agents=agents)
    async with Hub(settings, transports=[chat], load_entrypoints=False, clock=FakeClock()) as hub:
        await hub.hire("alice", "developer", model="chatbus-echo")
        asked = await chat.say("carol", "@alice what do you make of the release plan for next week?")
        try:
            answer = await chat.wait_for(lambda m: m.reply_to == asked.id and m.sender == "alice")
        except TimeoutError:
            raise AssertionError([(m.sender, m.text, m.reply_to) for m in chat.delivered]) from None
        await chat.wait_for_change(lambda c: isinstance(c, MessageEdited) and c.message.id == answer.id)

        async with Redis.from_url(redis_server.url) as redis:  # node b takes the agents over
            await redis.set(f"{prefix}:lease:on-message", "b\n999", px=30_000)
        await asyncio.sleep(0.3)  # an edit on its way may land
        edits = len([c for c in chat.changes if c.message.id == answer.id])
        await asyncio.sleep(1.5)  # the model goes on answering on node a
        assert len([c for c in chat.changes if c.message.id == answer.id]) == edits  # but a writes no more of it
