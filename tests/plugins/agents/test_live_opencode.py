"""The opencode worker profile (examples/opencode/opencode_worker.py) end to end,
with a stand-in ``opencode`` that prints JSON events as opencode does: its tool
uses show in the live status, its final answer is the completion message, an
error event becomes the help request, replies reach it as the conversation."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.plugins.agents.test_websocket import agent_settings, ask, collect, reply_to
from tests.transports.websocket.helpers import running

ROOT = Path(__file__).parents[3]
PROFILE = [sys.executable, str(ROOT / "examples" / "opencode" / "opencode_worker.py"), "{task}"]
STAND_IN = Path(__file__).parent / "workers"


@pytest.fixture(autouse=True)
def opencode_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{STAND_IN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("OPENCODE_MODEL", "anthropic/claude-test")


async def test_opencode_works_with_its_tools_shown_live_and_its_answer_as_the_result(tmp_path: Path) -> None:
    async with running(settings=agent_settings(live_interval=0.1)) as server:
        await server.hub.hire("alice", "developer", PROFILE)
        carol = await server.client("carol", role="developer")
        asked = await ask(carol, "@alice please write the release notes")
        frames = await collect(carol, reply_to(asked["id"], "alice", "✅"))
        assert frames[-1]["data"]["text"] == (
            "✅ Completed: write the release notes\n"
            "🔧 read: README.md\n🔧 write: notes.md\nDone. I wrote notes.md about: write the release notes"
        )
        shown = " ".join(f["data"]["text"] for f in frames if f["type"] in ("agent_response", "message_edited"))
        assert "🔧 read: README.md" in shown
        workdir = tmp_path / "agents" / "alice"
        assert json.loads((workdir / "opencode-args.json").read_text()) == [
            "run", "--format", "json", "--model", "anthropic/claude-test", "write the release notes",
        ]  # fmt: skip
        progress = [f["data"]["progress"] for f in frames if f["type"] == "agent_status"]
        assert 10 in progress and 20 in progress
        await carol.close()


async def test_an_opencode_error_is_the_help_request_and_a_reply_runs_it_with_the_conversation(
    tmp_path: Path,
) -> None:
    async with running(settings=agent_settings()) as server:
        await server.hub.hire("alice", "developer", PROFILE)
        carol = await server.client("carol", role="developer")
        asked = await ask(carol, "@alice please fix the broken build")
        help_request = (await collect(carol, reply_to(asked["id"], "alice", "@team")))[-1]["data"]
        assert "opencode: the model is not available" in help_request["text"]
        assert "(exit status 1)" in help_request["text"]
        answer = await ask(carol, "skip the flaky test for now", replyTo=help_request["id"])
        frames = await collect(carol, reply_to(answer["id"], "alice", "@team"))
        prompt = json.loads((tmp_path / "agents" / "alice" / "opencode-args.json").read_text())[-1]
        assert prompt == (
            "fix the broken build\n\nWhat the team said about this task since you started it:\n"
            "carol: skip the flaky test for now"
        )
        assert frames
        await carol.close()


async def test_a_long_answer_is_attached_whole() -> None:
    async with running(settings=agent_settings()) as server:
        await server.hub.hire("alice", "developer", PROFILE)
        carol = await server.client("carol", role="developer")
        asked = await ask(carol, "@alice please write the long plan")
        done = (await collect(carol, reply_to(asked["id"], "alice", "✅")))[-1]["data"]
        assert done["text"].endswith("line 7\n… (the whole answer is in opencode-answer.md)")
        assert [a["name"] for a in done["attachments"]] == ["opencode-answer.md"]
        await carol.close()
