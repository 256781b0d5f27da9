"""Stopping and steering agents end to end: real WebSocket clients, real worker
processes. /cancel and "@alice stop", /retry, /reset, completed back to idle,
/fire of a working agent, and a help request that cannot be posted."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from chatbus import SQLiteStore
from chatbus.plugins.agents.control import is_stop
from tests.plugins.agents.test_websocket import COMMAND, agent_settings, ask, collect, reply_to, statuses
from tests.support import alive
from tests.transports.websocket.helpers import Client, Server, running

STEERABLE = [sys.executable, str(Path(__file__).parent / "workers" / "steerable.py"), "{task}"]


async def pids_of(workdir: Path, timeout: float = 10.0) -> list[int]:
    """The pids the hanging worker wrote, once it has."""
    path = workdir / "pids.txt"
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, "the worker did not start"
        await asyncio.sleep(0.05)
    return [int(pid) for pid in path.read_text().split()]


async def hanging(server: Server, client: Client, tmp_path: Path) -> tuple[dict[str, Any], list[int]]:
    await server.hub.hire("alice", "developer", COMMAND)
    asked = await ask(client, "@alice please run the hang test")
    pids = await pids_of(tmp_path / "agents" / "alice")
    assert all(alive(pid) for pid in pids)
    return asked, pids


async def gone(pids: list[int], timeout: float = 2.0) -> bool:
    """The worker (the first pid) is gone already; what it started is gone within ``timeout`` (killed, exiting)."""
    if alive(pids[0]):
        return False
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def status_is(agent: str, status: str) -> Any:
    return lambda f: f["type"] == "agent_status" and f["data"]["userId"] == agent and f["data"]["status"] == status


async def test_cancel_stops_the_worker_and_everything_it_started_and_says_so(tmp_path: Path) -> None:
    async with running(settings=agent_settings(kill_grace=0.5)) as server:
        carol = await server.client("carol", role="developer")
        asked, pids = await hanging(server, carol, tmp_path)
        command = await ask(carol, "/cancel alice")
        frames = await collect(carol, lambda f: f["type"] == "agent_response" and f["data"]["text"].startswith("⏹️"))
        said = frames[-1]["data"]
        assert said["sender"] == "alice" and said["replyTo"] == asked["id"]
        assert said["text"].startswith(
            "⏹️ I cancelled this task as carol asked: run the hang test. My worker is stopped; /retry alice starts it again."
        )
        assert await gone(pids)  # gone before it is reported
        assert statuses(frames, "alice")[-1] == ("idle", None, None)
        # The live status message ends saying so too.
        edits = [f["data"] for f in frames if f["type"] == "message_edited" and f["data"]["editedBy"] == "alice"]
        assert edits and edits[-1]["text"].startswith("⏹️ Cancelled: run the hang test") and not edits[-1]["streaming"]
        # Nothing left to stop.
        again = await ask(carol, "/cancel alice")
        frames = await collect(carol, reply_to(again["id"], "alice"))
        assert frames[-1]["data"]["text"] == "I'm not running a task right now, so there is nothing to stop."
        assert command["id"] < again["id"]
        await carol.close()


async def test_at_alice_stop_stops_the_running_task(tmp_path: Path) -> None:
    async with running(settings=agent_settings(kill_grace=0.5)) as server:
        carol = await server.client("carol", role="developer")
        _asked, pids = await hanging(server, carol, tmp_path)
        await ask(carol, "@alice please stop!")
        await collect(carol, lambda f: f["type"] == "agent_response" and f["data"]["text"].startswith("⏹️ I cancelled"))
        assert await gone(pids)
        assert server.hub.agent_status("alice").status == "idle"  # type: ignore[union-attr]
        assert server.hub.pm.get_plugin("agents").queue("alice") == []  # "stop" was not queued as a task
        await carol.close()


async def test_stop_asked_in_other_words_stops_the_task_and_is_never_run_as_one(tmp_path: Path) -> None:
    async with running(settings=agent_settings(kill_grace=0.5)) as server:
        carol = await server.client("carol", role="developer")
        _asked, pids = await hanging(server, carol, tmp_path)
        await ask(carol, "@alice please stop what you're doing")
        await collect(carol, lambda f: f["type"] == "agent_response" and f["data"]["text"].startswith("⏹️ I cancelled"))
        assert await gone(pids)
        assert server.hub.pm.get_plugin("agents").queue("alice") == []
        await carol.close()


def test_a_task_that_starts_with_a_stop_verb_is_a_task() -> None:
    for words in ("@alice stop the staging server", "@alice cancel the subscription for bob", "@alice halt deploys"):
        assert not is_stop(words), words
    stops = ("@alice can you stop?", "@alice stop working on that", "@alice could you please cancel the task")
    for words in (*stops, "@alice stop", "@alice stop it now!", "@alice abort"):
        assert is_stop(words), words


async def test_retry_runs_the_last_failed_task_again() -> None:
    async with running(settings=agent_settings()) as server:
        await server.hub.hire("alice", "developer", STEERABLE)
        carol = await server.client("carol", role="developer")
        asked = await ask(carol, "@alice please sync the flaky mirror")
        frames = await collect(carol, reply_to(asked["id"], "alice", "@team"))
        assert "error: the network is down" in frames[-1]["data"]["text"]
        retry = await ask(carol, "/retry alice")
        frames = await collect(carol, reply_to(retry["id"], "alice", "✅"))
        texts = [f["data"]["text"] for f in frames if f["type"] == "agent_response" and not f["data"].get("streaming")]
        assert texts[0] == "🔁 Trying again: sync the flaky mirror."
        assert texts[-1] == "✅ Completed: sync the flaky mirror\nworked the second time"
        nothing = await ask(carol, "/retry alice")
        frames = await collect(carol, reply_to(nothing["id"], "alice"))
        assert frames[-1]["data"]["text"] == "I have no failed task to try again."
        await carol.close()


async def test_reset_clears_stuck_and_completed_goes_back_to_idle() -> None:
    async with running(settings=agent_settings(idle_after=0.5)) as server:
        await server.hub.hire("alice", "developer", COMMAND)
        carol = await server.client("carol", role="developer")
        asked = await ask(carol, "@alice please fix the failing import")
        await collect(carol, reply_to(asked["id"], "alice", "@team"))
        assert server.hub.agent_status("alice").status == "stuck"  # type: ignore[union-attr]
        reset = await ask(carol, "/reset alice")
        frames = await collect(carol, reply_to(reset["id"], "alice"))
        assert frames[-1]["data"]["text"] == "Reset: I'm idle and ready for a task."
        assert statuses(frames, "alice")[-1] == ("idle", None, None)

        asked = await ask(carol, "@alice please write the notes")
        frames = await collect(carol, reply_to(asked["id"], "alice", "✅"))
        done_at = time.monotonic()
        frames += await collect(carol, status_is("alice", "idle"))
        assert time.monotonic() - done_at >= 0.3
        assert [s[0] for s in statuses(frames, "alice")][-2:] == ["completed", "idle"]
        await carol.close()


async def test_fire_stops_the_work_of_a_working_agent_first(tmp_path: Path) -> None:
    async with running(settings=agent_settings(kill_grace=0.5)) as server:
        boss = await server.client("boss", role="manager")
        _asked, pids = await hanging(server, boss, tmp_path)
        await ask(boss, "@alice please write the notes")
        fired = await ask(boss, "/fire alice")
        frames = await collect(boss, reply_to(fired["id"], "system"))
        assert frames[-1]["data"]["text"] == (
            "Fired alice. Its worker is stopped; the task it was doing is not done: run the hang test. "
            "1 queued task was dropped."
        )
        assert await gone(pids)
        await boss.close()


async def test_a_help_request_that_fails_still_times_the_worker_out(tmp_path: Path) -> None:
    settings = agent_settings(stuck_after=0.5, timeout=2.5, kill_grace=0.5, roster_refresh=60)
    async with running(settings=settings) as server:
        carol = await server.client("carol", role="developer")
        asked, pids = await hanging(server, carol, tmp_path)
        # Fired behind the plugin's back: its help request at stuck_after cannot be posted.
        await server.hub.roster.fire("alice")
        await asyncio.sleep(1.0)
        assert all(alive(pid) for pid in pids)  # still running, and still watched
        await server.hub.hire("alice", "developer", COMMAND)
        queued = await ask(carol, "@alice please write the notes")
        frames = await collect(carol, reply_to(queued["id"], "alice"))
        assert frames[-1]["data"]["text"].startswith("I'm busy with another task")  # never beside it
        frames = await collect(carol, reply_to(queued["id"], "alice", "✅"), timeout=15)
        assert await gone(pids)
        stopped = [f["data"]["text"] for f in frames if f["type"] == "agent_response" and f["data"]["text"][:2] == "⏹️"]
        assert stopped and "run the hang test" in stopped[0]
        assert asked["id"] < queued["id"]
        await carol.close()


async def test_retry_works_after_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "chat.db")
    async with running(settings=agent_settings(db), store=SQLiteStore(db)) as server:
        await server.hub.hire("alice", "developer", STEERABLE)
        carol = await server.client("carol", role="developer")
        asked = await ask(carol, "@alice please sync the flaky mirror")
        await collect(carol, reply_to(asked["id"], "alice", "@team"))
        await carol.close()
    async with running(settings=agent_settings(db), store=SQLiteStore(db)) as server:
        carol = await server.client("carol", role="developer")
        retry = await ask(carol, "/retry alice")
        frames = await collect(carol, reply_to(retry["id"], "alice", "✅"))
        assert frames[-1]["data"]["text"] == "✅ Completed: sync the flaky mirror\nworked the second time"
        await carol.close()
