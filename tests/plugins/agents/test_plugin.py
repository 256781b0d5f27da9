"""The built-in agents plugin: answers to mentions, queues, help requests and
replacing its behaviour, on an in-memory hub."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chatbus import AgentStatus, AuthError, Hub, Presence, hookimpl
from chatbus.core.message import Agent, Message
from chatbus.core.settings import Settings
from chatbus.plugins.agents import Work, WorkResult
from chatbus.testing import MemoryTransport, make_hub

WORKER = Path(__file__).parent / "workers" / "worker.py"
COMMAND = [sys.executable, str(WORKER), "{task}"]


def agent_settings(**agents: Any) -> Settings:
    # Everyone here may give work (who may is tested in test_trust.py).
    options = {
        "stuck_after": 30,
        "timeout": 60,
        "kill_grace": 1,
        "roster_refresh": 0.2,
        "allow_roles": ["user"],
        **agents,
    }
    return Settings.isolated(db=":memory:", agents=options)


async def start(plugins: list[object] | None = None, **agents: Any) -> tuple[Hub, MemoryTransport]:
    transport = MemoryTransport()
    hub = make_hub(plugins or [], settings=agent_settings(**agents), transports=[transport])
    await hub.start()
    return hub, transport


@pytest.fixture
async def chat() -> AsyncIterator[tuple[Hub, MemoryTransport]]:
    hub, transport = await start()
    await hub.hire("alice", "developer", COMMAND)
    await hub.hire("bob", "tester", COMMAND)
    yield hub, transport
    await hub.stop(timeout=5)


def replies(transport: MemoryTransport, to: Message) -> list[Message]:
    return [m for m in transport.delivered if m.reply_to == to.id]


async def reply(transport: MemoryTransport, to: Message, sender: str, timeout: float = 1.0) -> Message:
    return await transport.wait_for(lambda m: m.reply_to == to.id and m.sender == sender, timeout)


async def settle(hub: Hub) -> None:
    """Let every on_message handler that is running finish."""
    for _ in range(3):
        await hub.settle()
        await asyncio.sleep(0)


# answering -------------------------------------------------------------------
async def test_a_mentioned_agent_acknowledges_a_task_within_a_second(chat: tuple[Hub, MemoryTransport]) -> None:
    _hub, transport = chat
    asked = await transport.say("carol", "@alice please create a login component")
    answer = await reply(transport, asked, "alice", timeout=1.0)
    assert answer.text == "Got it! I'll create a login component."
    assert answer.kind == "agent" and answer.sender_role == "developer" and answer.room == asked.room


async def test_a_status_question_gets_the_status(chat: tuple[Hub, MemoryTransport]) -> None:
    _hub, transport = chat
    asked = await transport.say("carol", "@bob what's your status?")
    assert (await reply(transport, asked, "bob")).text == "I'm idle: no task right now."


async def test_a_bare_mention_gets_a_greeting_a_question_and_other_text_a_hint(
    chat: tuple[Hub, MemoryTransport],
) -> None:
    _hub, transport = chat
    hello = await transport.say("carol", "@alice")
    assert (await reply(transport, hello, "alice")).text.startswith("Hi carol! I'm alice (developer).")
    odd = await transport.say("carol", "@alice the coffee machine is broken")
    assert (await reply(transport, odd, "alice")).text.startswith("I'm not sure what you need, carol.")
    asked = await transport.say("carol", "@alice what is the capital of France?")
    assert (await reply(transport, asked, "alice")).text.startswith("I can't answer questions, carol")


async def test_each_mentioned_agent_answers_once(chat: tuple[Hub, MemoryTransport]) -> None:
    hub, transport = chat
    asked = await transport.say("carol", "@alice @bob @alice-bot @ALICE hello")
    await reply(transport, asked, "alice")
    await reply(transport, asked, "bob")
    await settle(hub)
    assert sorted(m.sender for m in replies(transport, asked)) == ["alice", "bob"]


async def test_agents_never_answer_agents_or_the_system(chat: tuple[Hub, MemoryTransport]) -> None:
    hub, transport = chat
    from_agent = await hub.send("@alice please fix the build", sender="bob")
    from_system = await hub.send("@alice @bob hello")
    unknown = await transport.say("carol", "@nobody please fix it")
    await settle(hub)
    assert replies(transport, from_agent) == []
    assert replies(transport, from_system) == []
    assert replies(transport, unknown) == []


async def test_commands_are_not_answered_as_mentions(chat: tuple[Hub, MemoryTransport]) -> None:
    hub, transport = chat
    command = await transport.say("carol", "/status @alice")
    answer = await transport.wait_for(lambda m: m.reply_to == command.id, 1.0)
    await settle(hub)
    assert answer.sender == "system"
    assert [m.sender for m in replies(transport, command)] == ["system"]


async def test_an_agent_answers_in_the_room_it_was_asked_in(chat: tuple[Hub, MemoryTransport]) -> None:
    _hub, transport = chat
    asked = await transport.say("carol", "@alice hi", room="ops")
    assert (await reply(transport, asked, "alice")).room == "ops"


# work with a plugin ---------------------------------------------------------
class GatedWork:
    """An agent_work plugin whose tasks finish when the test says so."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}
        self.order: list[str] = []

    def gate(self, task: str) -> asyncio.Event:
        return self.gates.setdefault(task, asyncio.Event())

    @hookimpl
    async def agent_work(self, work: Work) -> WorkResult:
        self.order.append(work.task)
        await work.progress(25)
        await self.gate(work.task).wait()
        return WorkResult(True, output=f"did {work.task} in {work.workdir.name}")


async def test_tasks_queue_in_order_and_say_where_they_stand() -> None:
    worker = GatedWork()
    hub, transport = await start([worker])
    try:
        await hub.hire("alice", "developer")
        first = await transport.say("carol", "@alice please write the spec")
        assert (await reply(transport, first, "alice")).text == "Got it! I'll write the spec."
        await transport.wait_for_event(lambda e: isinstance(e, AgentStatus) and e.progress == 25)
        second = await transport.say("dave", "@alice please add tests")
        third = await transport.say("erin", "@alice could you update the docs")
        assert (await reply(transport, second, "alice")).text == (
            "I'm busy with another task, so I've queued this one (next in my queue): add tests. "
            "Working on now: write the spec."
        )
        assert (await reply(transport, third, "alice")).text == (
            "I'm busy with another task, so I've queued this one (number 2 in my queue): update the docs. "
            "Working on now: write the spec."
        )
        status = await transport.say("carol", "@alice status?")
        assert (await reply(transport, status, "alice")).text == (
            "I'm working on this task (25% done): write the spec. 2 more tasks queued."
        )
        for task in ("write the spec", "add tests", "update the docs"):
            worker.gate(task).set()
        done = await transport.wait_for(lambda m: m.text.startswith("✅ Completed: update the docs"), 5)
        assert done.reply_to == third.id and done.text == "✅ Completed: update the docs\ndid update the docs in alice"
        assert worker.order == ["write the spec", "add tests", "update the docs"]
        completed = [m.reply_to for m in transport.delivered if m.text.startswith("✅")]
        assert completed == [first.id, second.id, third.id]
        assert hub.agent_status("alice") == Agent("alice", "developer", None, "completed", "update the docs", 100)
    finally:
        await hub.stop(timeout=5)


async def test_two_agents_work_at_the_same_time() -> None:
    worker = GatedWork()
    hub, transport = await start([worker])
    try:
        await hub.hire("alice", "developer")
        await hub.hire("bob", "tester")
        asked = await transport.say("carol", "@alice @bob please check the release")
        assert (await reply(transport, asked, "alice")).text == "Got it! I'll check the release."
        assert (await reply(transport, asked, "bob")).text == "Got it! I'll check the release."
        for name in ("alice", "bob"):
            await transport.wait_for_event(
                lambda e, n=name: isinstance(e, AgentStatus) and e.user_id == n and e.status == "working"
            )
        worker.gate("check the release").set()
        await transport.wait_for(lambda m: m.sender == "alice" and m.text.startswith("✅"), 5)
        await transport.wait_for(lambda m: m.sender == "bob" and m.text.startswith("✅"), 5)
    finally:
        await hub.stop(timeout=5)


async def test_an_agent_without_a_worker_asks_for_one() -> None:
    hub, transport = await start()
    try:
        await hub.hire("alice", "developer")
        asked = await transport.say("carol", "@alice please fix the build")
        help_request = await transport.wait_for(lambda m: m.sender == "alice" and m.text.startswith("@team"), 5)
        assert help_request.reply_to == asked.id
        assert "fix the build" in help_request.text and "--command" in help_request.text
        assert hub.agent_status("alice").status == "stuck"  # type: ignore[union-attr]
    finally:
        await hub.stop(timeout=5)


class Replies:
    """An agent_reply plugin that speaks like a pirate, except for help requests."""

    @hookimpl
    def agent_reply(self, agent: Agent, kind: str, details: dict[str, Any]) -> str | None:
        if kind == "help":
            return None
        if kind == "completed":
            return ""  # say nothing
        return f"Arr, {agent.name} {kind}: {details.get('task', '-')}"


async def test_every_text_can_be_replaced_through_agent_reply() -> None:
    worker = GatedWork()
    hub, transport = await start([worker, Replies()])
    try:
        await hub.hire("alice", "developer")
        asked = await transport.say("carol", "@alice please fix the sails")
        assert (await reply(transport, asked, "alice")).text == "Arr, alice acknowledge: fix the sails"
        queued = await transport.say("carol", "@alice please fix the mast")
        assert (await reply(transport, queued, "alice")).text == "Arr, alice queued: fix the mast"
        hello = await transport.say("carol", "@alice")
        assert (await reply(transport, hello, "alice")).text == "Arr, alice greeting: -"
        worker.gate("fix the sails").set()
        await transport.wait_for_event(lambda e: isinstance(e, AgentStatus) and e.current_task == "fix the mast")
        help_message = await hub.pm.get_plugin("agents").request_help("alice", issue="the mast is gone")
        assert (
            help_message.text == "@team I need help with this task (25% done): fix the mast.\nProblem: the mast is gone"
        )
        await settle(hub)
        assert not any(m.text.startswith("✅") for m in transport.delivered)
    finally:
        await hub.stop(timeout=5)


class BrokenPlugin:
    @hookimpl
    def agent_reply(self, kind: str) -> str:
        raise RuntimeError("bug in a plugin")

    @hookimpl
    async def agent_work(self, work: Work) -> WorkResult:
        raise RuntimeError("secret internal detail")


async def test_a_failing_plugin_falls_back_and_asks_for_help_without_leaking_its_error() -> None:
    hub, transport = await start([BrokenPlugin()])
    try:
        await hub.hire("alice", "developer")
        asked = await transport.say("carol", "@alice please fix the build")
        assert (await reply(transport, asked, "alice")).text == "Got it! I'll fix the build."
        help_request = await transport.wait_for(lambda m: m.text.startswith("@team"), 5)
        assert "fix the build" in help_request.text and "server log" in help_request.text
        assert "secret" not in help_request.text
    finally:
        await hub.stop(timeout=5)


# hub-level API ------------------------------------------------------------------
async def test_request_help_posts_as_the_agent_and_marks_it_stuck(chat: tuple[Hub, MemoryTransport]) -> None:
    hub, transport = chat
    message = await hub.pm.get_plugin("agents").request_help(
        "alice", task="deploy to staging", progress=60, issue="the staging server is down"
    )
    assert message.sender == "alice" and message.kind == "agent"
    assert (
        "help" in message.text and "deploy to staging" in message.text and "the staging server is down" in message.text
    )
    assert message.mentions == ("team",)
    assert hub.agent_status("alice") == Agent("alice", "developer", tuple(COMMAND), "stuck", "deploy to staging", 60)
    assert AgentStatus("alice", "stuck", "deploy to staging", 60) in transport.events
    assert hub.agent_status("nobody") is None


async def test_stats_count_agents_by_status_and_transports(chat: tuple[Hub, MemoryTransport]) -> None:
    hub, transport = chat
    await hub.set_agent_status("bob", "working", "x")
    await transport.join("carol")
    stats = hub.stats()
    assert stats["agents"]["total"] == 2
    assert stats["agents"]["by_status"] == {"idle": 1, "working": 1, "stuck": 0, "completed": 0}
    assert stats["transports_running"] == ["memory"]
    assert stats["connected_users"] == 1


# the roster under a running server -----------------------------------------------
async def test_agents_hired_and_fired_from_outside_the_server_are_picked_up(tmp_path: Path) -> None:
    from chatbus.core.store import SQLiteStore

    db = tmp_path / "chat.db"
    transport = MemoryTransport()
    hub = Hub(
        Settings.isolated(db=str(db), agents={"roster_refresh": 0.1}),
        transports=[transport],
        load_entrypoints=False,
    )
    await hub.start()
    other = SQLiteStore(db)  # what `chatbus agents hire` does, from another process
    await other.open()
    try:
        await other.save_agent(Agent("zed", "reviewer"))
        with pytest.raises(AuthError, match="belongs to an agent"):
            await transport.join("zed")
        asked = await transport.say("carol", "@zed hello")
        assert (await reply(transport, asked, "zed")).text.startswith("Hi carol! I'm zed (reviewer).")
        await other.remove_agent("zed")
        await transport.wait_for_event(lambda e: e == Presence("zed", "reviewer", "agent", "offline"), 2)
        again = await transport.say("carol", "@zed hello")
        await settle(hub)
        assert replies(transport, again) == []
    finally:
        await other.close()
        await hub.stop(timeout=5)
