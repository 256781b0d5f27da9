"""The agents example: the worker script, the planner plugin, and the runnable chat."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from run_agents import WORKER, build_hub, hire_team
from todo_planner import TodoPlanner, steps_of
from websockets.asyncio.client import connect

from chatbus import AgentStatus, Settings
from chatbus.testing import MemoryTransport, make_hub


@pytest.fixture(autouse=True)
def _in_a_temporary_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)


def test_steps_are_split_at_commas_and_ands() -> None:
    assert steps_of("plan the launch: tag the version, build the wheels and announce it") == [
        "tag the version",
        "build the wheels",
        "announce it",
    ]
    assert steps_of("write docs; then review them") == ["write docs", "review them"]


async def test_the_worker_writes_notes_in_the_agents_directory(tmp_path: Path) -> None:
    transport = MemoryTransport()
    hub = make_hub([TodoPlanner()], transports=[transport])
    async with hub:
        await transport.join("carol", "developer")  # developers and managers may give agents work
        await hub.hire("builder", "developer", [sys.executable, str(WORKER), "{task}"])
        asked = await transport.say("carol", "@builder please write the release notes")
        done = await transport.wait_for(lambda m: m.text.startswith("✅"), 10)
        assert done.reply_to == asked.id and done.sender == "builder"
        assert done.text == (
            "✅ Completed: write the release notes\nwrote notes/write-the-release-notes.md and a line in worklog.md"
        )
        workdir = tmp_path / "agents" / "builder"
        note = (workdir / "notes" / "write-the-release-notes.md").read_text()
        assert note.startswith("# write the release notes\n\nWritten by builder on ")
        (attached,) = done.attachments
        assert (attached.name, attached.content_type) == ("write-the-release-notes.md", "text/markdown")
        stored = await hub.files.open(attached.id)
        assert stored is not None and (await stored.read_all()).decode() == note
        assert "write the release notes" in (workdir / "worklog.md").read_text()
        progress = [(e.status, e.progress) for e in transport.events if isinstance(e, AgentStatus)]
        assert progress == [("working", None), ("working", 10), ("working", 60), ("working", 100), ("completed", 100)]

        impossible = await transport.say("carol", "@builder please do the impossible")
        help_request = await transport.wait_for(lambda m: m.text.startswith("@team"), 10)
        assert help_request.reply_to == impossible.id
        assert help_request.text == (
            "@team I need help with this task (10% done): do the impossible.\n"
            "Problem: I do not know how to do the impossible: nobody does.\n(exit status 1)"
        )


async def test_the_planner_plugin_replaces_the_work_of_planners(tmp_path: Path) -> None:
    transport = MemoryTransport()
    hub = make_hub([TodoPlanner()], transports=[transport])
    async with hub:
        await transport.join("carol", "developer")  # developers and managers may give agents work
        await hub.hire("planner", "planner")
        asked = await transport.say(
            "carol", "@planner please plan the launch: tag the version, build the wheels and announce it"
        )
        done = await transport.wait_for(lambda m: m.text.startswith("✅"), 5)
        assert done.reply_to == asked.id
        checklist = "- [ ] tag the version\n- [ ] build the wheels\n- [ ] announce it"
        assert (
            done.text
            == f"✅ Completed: plan the launch: tag the version, build the wheels and announce it\n{checklist}"
        )
        todo = (tmp_path / "agents" / "planner" / "TODO.md").read_text()
        assert todo.endswith(checklist + "\n")
        assert [a.name for a in done.attachments] == ["TODO.md"]
        progress = [(e.status, e.progress) for e in transport.events if isinstance(e, AgentStatus)]
        assert progress == [("working", None), ("working", 33), ("working", 66), ("working", 100), ("completed", 100)]


async def test_the_runnable_example_over_websocket(tmp_path: Path) -> None:
    settings = Settings.isolated(db=str(tmp_path / "chat.db"), websocket={"host": "127.0.0.1", "port": 0})
    hub = build_hub(settings)
    async with asyncio.timeout(30):
        await hub.start()
        try:
            await hire_team(hub)
            port = hub.transports["websocket"].port  # type: ignore[attr-defined]
            async with connect(f"ws://127.0.0.1:{port}") as ws:
                await ws.send(json.dumps({"type": "auth", "data": {"userId": "carol", "role": "developer"}}))
                await ws.send(json.dumps({"type": "message", "data": {"text": "@builder please write the faq"}}))
                await ws.send(json.dumps({"type": "message", "data": {"text": "@planner please plan it: a, b"}}))
                done: dict[str, dict[str, Any]] = {}
                while len(done) < 2:
                    frame = json.loads(await ws.recv())
                    if frame["type"] == "agent_response" and frame["data"]["text"].startswith("✅"):
                        done[frame["data"]["sender"]] = frame["data"]
            assert done["builder"]["text"].startswith("✅ Completed: write the faq")
            assert [a["name"] for a in done["builder"]["attachments"]] == ["write-the-faq.md"]
            assert done["planner"]["text"] == "✅ Completed: plan it: a, b\n- [ ] a\n- [ ] b"
            assert [a["name"] for a in done["planner"]["attachments"]] == ["TODO.md"]
            assert (tmp_path / "agents" / "builder" / "notes" / "write-the-faq.md").exists()
        finally:
            await hub.stop()
