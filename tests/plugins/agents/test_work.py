"""Agents doing real work: worker commands run as subprocesses, their status,
help requests, the stuck and timeout limits, and a restart in the middle."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from chatbus import AgentStatus, Hub
from chatbus.core.message import Event
from chatbus.core.settings import Settings
from chatbus.testing import FakeClock, MemoryTransport
from tests.support import alive

WORKER = Path(__file__).parent / "workers" / "worker.py"
COMMAND = [sys.executable, str(WORKER), "{task}"]


async def until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def make(db: str, transport: MemoryTransport, **agents: Any) -> Hub:
    # Everyone here may give work (who may is tested in test_trust.py).
    options = {
        "stuck_after": 30,
        "timeout": 60,
        "kill_grace": 1,
        "roster_refresh": 5,
        "allow_roles": ["user"],
        **agents,
    }
    return Hub(
        Settings.isolated(db=db, agents=options),
        transports=[transport],
        load_entrypoints=False,
        clock=FakeClock(),
    )


def statuses(events: list[Event], name: str = "alice") -> list[tuple[str, str | None, int | None]]:
    return [(e.status, e.current_task, e.progress) for e in events if isinstance(e, AgentStatus) and e.user_id == name]


async def test_a_worker_command_goes_working_to_completed(tmp_path: Path) -> None:
    transport = MemoryTransport()
    hub = make(":memory:", transport)
    async with hub:
        await hub.hire("alice", "developer", COMMAND)
        asked = await transport.say("carol", "@alice please create a login component")
        done = await transport.wait_for(lambda m: m.text.startswith("✅"), 10)
        assert done.sender == "alice" and done.reply_to == asked.id
        assert (
            done.text
            == "✅ Completed: create a login component\nagent alice starting: create a login component\nwrote result.txt in alice"
        )
        assert (tmp_path / "agents" / "alice" / "result.txt").read_text() == "create a login component"
        task = "create a login component"
        assert statuses(transport.events) == [
            ("working", task, None),
            ("working", task, 10),
            ("working", task, 50),
            ("working", task, 90),
            ("completed", task, 100),
        ]
        assert hub.agent_status("alice").status == "completed"  # type: ignore[union-attr]


async def test_a_failing_command_makes_the_agent_ask_for_help() -> None:
    transport = MemoryTransport()
    hub = make(":memory:", transport)
    async with hub:
        await hub.hire("alice", "developer", COMMAND)
        asked = await transport.say("carol", "@alice please fix the failing migration")
        help_request = await transport.wait_for(lambda m: m.text.startswith("@team"), 10)
        assert help_request.sender == "alice" and help_request.reply_to == asked.id
        assert help_request.text == (
            "@team I need help with this task: fix the failing migration.\n"
            "Problem: error: the database is locked\n(exit status 2)"
        )
        assert statuses(transport.events)[-1] == ("stuck", "fix the failing migration", None)


async def test_a_hanging_command_goes_stuck_then_is_stopped_with_everything_it_started(tmp_path: Path) -> None:
    transport = MemoryTransport()
    hub = make(":memory:", transport, stuck_after=0.5, timeout=1.5)
    async with hub:
        await hub.hire("alice", "developer", COMMAND)
        asked = await transport.say("carol", "@alice please run the hang test")
        pids_file = tmp_path / "agents" / "alice" / "pids.txt"
        await until(pids_file.exists)
        await until(lambda: pids_file.read_text().strip() != "")
        pids = [int(pid) for pid in pids_file.read_text().split()]
        assert all(alive(pid) for pid in pids)
        help_request = await transport.wait_for(lambda m: m.text.startswith("@team"), 5)
        assert help_request.reply_to == asked.id
        assert help_request.text == (
            "@team I need help with this task: run the hang test.\n"
            "Problem: it is still running after 1 second; the last output was:\n"
            "agent alice starting: run the hang test\nwaiting for something that never comes"
        )
        assert hub.agent_status("alice").status == "stuck"  # type: ignore[union-attr]
        stopped = await transport.wait_for(lambda m: m.text.startswith("⏹️"), 5)
        assert stopped.reply_to == asked.id
        assert stopped.text.startswith(
            "⏹️ I stopped this task after 2 seconds, as it was still running: run the hang test."
        )
        await until(lambda: not any(alive(pid) for pid in pids), 5)
        assert hub.agent_status("alice").status == "stuck"  # type: ignore[union-attr]
        # The agent takes the next task.
        nxt = await transport.say("carol", "@alice please add a test")
        await transport.wait_for(lambda m: m.reply_to == nxt.id and m.text.startswith("✅"), 10)


async def test_the_task_is_one_argument_and_never_reaches_a_shell(tmp_path: Path) -> None:
    transport = MemoryTransport()
    hub = make(":memory:", transport)
    async with hub:
        await hub.hire("alice", "developer", COMMAND)
        task = "add {agent} $(touch pwned) `touch pwned2`; touch pwned3 && echo hi"
        await transport.say("carol", f"@alice {task}")
        await transport.wait_for(lambda m: m.text.startswith("✅"), 10)
        workdir = tmp_path / "agents" / "alice"
        assert (workdir / "result.txt").read_text() == task
        assert sorted(p.name for p in workdir.iterdir()) == ["result.txt"]


async def test_a_missing_program_is_a_help_request_that_says_so() -> None:
    transport = MemoryTransport()
    hub = make(":memory:", transport)
    async with hub:
        await hub.hire("alice", "developer", ["chatbus-no-such-program", "{task}"])
        await transport.say("carol", "@alice please fix it")
        help_request = await transport.wait_for(lambda m: m.text.startswith("@team"), 10)
        assert "'chatbus-no-such-program' was not found" in help_request.text


async def test_stopping_the_server_stops_running_work_at_once(tmp_path: Path) -> None:
    transport = MemoryTransport()
    hub = make(":memory:", transport)
    await hub.start()
    await hub.hire("alice", "developer", COMMAND)
    await transport.say("carol", "@alice please run the hang test")
    pids_file = tmp_path / "agents" / "alice" / "pids.txt"
    await until(lambda: pids_file.exists() and pids_file.read_text().strip() != "")
    pids = [int(pid) for pid in pids_file.read_text().split()]
    started = time.monotonic()
    await hub.stop(timeout=10)
    await until(lambda: not any(alive(pid) for pid in pids), 2)
    assert time.monotonic() - started < 3


async def test_a_task_in_flight_at_a_restart_is_reported_and_the_queue_carries_on(tmp_path: Path) -> None:
    db = str(tmp_path / "chat.db")
    first = MemoryTransport()
    hub = make(db, first)
    await hub.start()
    await hub.hire("alice", "developer", COMMAND)
    running = await first.say("carol", "@alice please run the hang test")
    await first.wait_for_event(lambda e: isinstance(e, AgentStatus) and e.status == "working")
    queued = await first.say("carol", "@alice please write the notes")
    assert (await first.wait_for(lambda m: m.reply_to == queued.id, 1)).text.startswith(
        "I'm busy with another task, so I've queued this one (next in my queue): write the notes."
    )
    await hub.stop(timeout=10)

    second = MemoryTransport()
    hub = make(db, second)
    async with hub:
        interrupted = await second.wait_for(lambda m: m.sender == "alice", 5)
        assert interrupted.reply_to == running.id
        assert interrupted.text.startswith(
            "⚠️ The server stopped while I was working on this task, so it was interrupted: run the hang test."
        )
        done = await second.wait_for(lambda m: m.text.startswith("✅"), 10)
        assert done.reply_to == queued.id and done.text.startswith("✅ Completed: write the notes")
        assert statuses(second.events)[0] == ("idle", None, None)
        assert statuses(second.events)[-1] == ("completed", "write the notes", 100)
    third = MemoryTransport()
    hub = make(db, third)
    async with hub:
        hello = await third.say("carol", "@alice status?")
        answer = await third.wait_for(lambda m: m.reply_to == hello.id, 1)
        assert answer.text == "I'm free for the next task. Last completed: write the notes."
        assert not any("interrupted" in m.text for m in third.delivered)


async def test_tasks_are_counted_in_the_metrics_by_what_became_of_them() -> None:
    transport = MemoryTransport()
    hub = make(":memory:", transport)
    registry = hub.metrics.registry
    async with hub:
        await hub.hire("alice", "developer", COMMAND)
        await transport.say("carol", "@alice please write the notes")
        await transport.wait_for(lambda m: m.text.startswith("✅"), 10)
        await transport.say("carol", "@alice please fail the build")
        await transport.wait_for(lambda m: m.text.startswith("@team"), 10)
        figures = {
            outcome: registry.get_sample_value("chatbus_agent_tasks_total", {"outcome": outcome})
            for outcome in ("started", "completed", "failed")
        }
    assert figures == {"started": 2, "completed": 1, "failed": 1}
