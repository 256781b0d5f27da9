"""What the agents' work keeps when the server running them starts again (or another node of a
cluster takes them over, through the same resume): an agent shown ``completed`` still goes back
to ``idle`` after ``agents.idle_after``, though the server that would have done it is gone."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from chatbus import AgentStatus
from chatbus.plugins.agents.jobs import dump_desks, load_desks
from chatbus.testing import MemoryTransport

from .test_work import COMMAND, make


async def test_completed_goes_back_to_idle_after_a_restart_too(tmp_path: Path) -> None:
    db = str(tmp_path / "chat.db")
    chat = MemoryTransport()
    async with make(db, chat) as hub:
        await hub.hire("alice", "developer", COMMAND)
        await chat.say("carol", "@alice please write the notes")
        await chat.wait_for(lambda m: m.text.startswith("✅"), 10)
        assert hub.agent_status("alice").status == "completed"  # type: ignore[union-attr]

    again = MemoryTransport()
    async with make(db, again, idle_after=0.3) as hub:
        started = time.monotonic()
        assert hub.agent_status("alice").status == "completed"  # type: ignore[union-attr]
        idle = await again.wait_for_event(lambda e: isinstance(e, AgentStatus) and e.status == "idle", 5)
        assert idle == AgentStatus("alice", "idle", None, None)
        assert time.monotonic() - started >= 0.25
        await asyncio.sleep(0.1)
        assert hub.agent_status("alice").status == "idle"  # type: ignore[union-attr]


async def test_a_reply_to_an_agents_message_reaches_its_task_after_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "chat.db")
    chat = MemoryTransport()
    async with make(db, chat) as hub:
        await hub.hire("alice", "developer", COMMAND)
        await chat.say("carol", "@alice please run the hang test")
        await chat.wait_for_event(lambda e: isinstance(e, AgentStatus) and e.status == "working")
        second = await chat.say("carol", "@alice please run the other hang test")
        queued = await chat.wait_for(lambda m: m.reply_to == second.id and m.text.startswith("I'm busy"))

    again = MemoryTransport()
    async with make(db, again):
        await again.wait_for_event(lambda e: isinstance(e, AgentStatus) and e.current_task == "run the other hang test")
        said = await again.say("carol", "use the staging data", reply_to=queued.id)
        answer = await again.wait_for(lambda m: m.reply_to == said.id, 5)
        assert answer.text == "🔁 Starting this task again with your reply: run the other hang test."


def test_threads_saved_with_the_work_point_at_its_jobs_and_a_damaged_one_is_only_forgotten() -> None:
    saved = {
        "current": {"task": "build alpha"},
        "pending": [{"task": "build beta"}],
        "last_failed": None,
        "threads": [[5, "current"], [6, "pending:0"], ["x", "current"], [7, "pending:9"], "junk"],
    }
    desk = load_desks(json.dumps({"version": 1, "agents": {"alice": saved}}))["alice"]
    assert desk.threads == {5: desk.interrupted, 6: desk.pending[0]}
    assert desk.threads[5] is desk.interrupted and desk.threads[6] is desk.pending[0]
    desk.current, desk.interrupted = desk.interrupted, None  # as when the server carries on with it
    again = json.loads(dump_desks({"alice": desk}) or "{}")["agents"]["alice"]
    assert again["threads"] == [[5, "current"], [6, "pending:0"]]
