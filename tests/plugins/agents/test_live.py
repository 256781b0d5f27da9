"""A task's live status message: posted once, edited in place with the latest
output and progress at most once every ``agents.live_interval`` seconds, ending
with how the task went; a queued task says when it starts. Over WebSocket and
through the fake Bot API (where Telegram's own edit pacing applies too)."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio

from chatbus import Settings
from tests.plugins.agents.test_websocket import agent_settings, ask, collect, reply_to
from tests.transports.telegram.conftest import CHAT, build_hub
from tests.transports.telegram.fakebot import FakeBotAPI
from tests.transports.websocket.helpers import Client, running

STEERABLE = [sys.executable, str(Path(__file__).parent / "workers" / "steerable.py"), "{task}"]


def live_frames(frames: list[dict[str, Any]], sender: str = "alice") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The live status message as first posted, and its edits in order."""
    posted = next(f["data"] for f in frames if f["type"] == "agent_response" and f["data"].get("streaming"))
    edits = [f["data"] for f in frames if f["type"] == "message_edited" and f["data"]["id"] == posted["id"]]
    return posted, edits


async def timed(client: Client, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """Frames up to the first matching ``predicate``, each with the time it arrived (``at``)."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(15):
        while True:
            frame = await client.recv(15)
            frame["at"] = time.monotonic()
            frames.append(frame)
            if predicate(frame):
                return frames


async def test_the_live_status_is_one_message_edited_in_place_and_throttled() -> None:
    async with running(settings=agent_settings(live_interval=0.4, live_lines=3)) as server:
        await server.hub.hire("alice", "developer", STEERABLE)
        carol = await server.client("carol", role="developer")
        asked = await ask(carol, "@alice please count ticks 30")
        frames = await timed(carol, reply_to(asked["id"], "alice", "✅"))
        if not any(f["type"] == "message_edited" and not f["data"]["streaming"] for f in frames):
            frames += await timed(carol, lambda f: f["type"] == "message_edited" and not f["data"]["streaming"])
        posted, edits = live_frames(frames)
        assert posted["replyTo"] == asked["id"] and posted["text"].startswith("⏳ Working on this task")
        # 30 lines in about 1.5 s: a handful of edits, never closer than the interval.
        assert 2 <= len(edits) <= 7
        times = [f["at"] for f in frames if f["type"] == "message_edited"]
        assert all(later - earlier >= 0.3 for earlier, later in itertools.pairwise(times[:-1]))
        growing = edits[:-1]
        assert all(e["streaming"] for e in growing) and all("%)" in e["text"] for e in growing)
        assert edits[-1]["text"] == "✅ Done (100%): count ticks 30\ntick 28\ntick 29\ntick 30"
        assert not edits[-1]["streaming"]
        await carol.close()


async def test_a_queued_task_says_when_it_starts() -> None:
    async with running(settings=agent_settings(live_interval=0.1)) as server:
        await server.hub.hire("alice", "developer", STEERABLE)
        carol = await server.client("carol", role="developer")
        await ask(carol, "@alice please count ticks 10")
        second = await ask(carol, "@alice please write the summary")
        frames = await collect(carol, reply_to(second["id"], "alice", "✅"))
        started = [f["data"] for f in frames if f["type"] == "agent_response" and f["data"]["text"].startswith("▶️")]
        assert [(m["replyTo"], m["text"]) for m in started] == [
            (second["id"], "▶️ Starting this task now: write the summary.")
        ]
        texts = [
            f["data"]["text"] for f in frames if f["type"] == "agent_response" and f["data"]["replyTo"] == second["id"]
        ]
        assert texts.index(started[0]["text"]) < len(texts) - 1  # before the result
        await carol.close()


@pytest_asyncio.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    server = FakeBotAPI()
    server.add_chat(CHAT, "Team", username="team_chat")
    async with server:
        yield server


async def test_live_output_in_telegram_is_edited_in_place_within_its_edit_limit(api: FakeBotAPI) -> None:
    settings = Settings.isolated(db=":memory:", agents={"live_interval": 0.05, "live_lines": 2})
    hub, web, _telegram = build_hub(api, settings=settings, edit_interval=0.5)
    async with hub:
        await hub.hire("alice", "developer", STEERABLE)
        await web.join("carol", "developer")
        await web.say("carol", "@alice please count ticks 30")
        await api.wait_for(lambda: any(s.text.startswith("alice: ✅ Completed") for s in api.sent), timeout=15)
        live = next(s for s in api.sent if "Working on this task" in (s.edits[0] if s.edits else s.text))
        await api.wait_for(lambda: live.text.startswith("alice: ✅ Done (100%): count ticks 30"), timeout=10)
        edits = [
            call for call in api.calls_of("editMessageText") if int(call.params.get("message_id", 0)) == live.message_id
        ]
        assert 1 <= len(edits) <= 6  # 30 lines in 1.5 s, not 30 edits
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(edits)]
        assert all(gap >= 0.45 for gap in gaps)


async def test_long_output_lines_keep_the_live_status_short() -> None:
    lines = "; ".join(f"print({letter!r} * 490, flush=True)" for letter in "wxyz")
    async with running(settings=agent_settings(live_interval=0.1, output_chars=600)) as server:
        await server.hub.hire("alice", "developer", [sys.executable, "-c", lines, "{task}"])
        carol = await server.client("carol", role="developer")
        asked = await ask(carol, "@alice please print long lines")
        frames = await collect(carol, reply_to(asked["id"], "alice", "✅"))
        _posted, edits = live_frames(frames)  # its last edit comes before the result
        head, shown = edits[-1]["text"].split("\n", 1)
        assert head == "✅ Done: print long lines"
        assert len(shown) == 600 and shown.startswith("…") and shown.endswith("z" * 490)
        await carol.close()


async def test_a_task_done_short_of_100_percent_ends_as_done_at_100() -> None:
    async with running(settings=agent_settings(live_interval=0.2)) as server:
        script = "import time; print('PROGRESS 40'); print('half way', flush=True); time.sleep(0.5)"
        await server.hub.hire("alice", "developer", [sys.executable, "-c", script])
        carol = await server.client("carol", role="developer")
        asked = await ask(carol, "@alice please do the half job")
        frames = await timed(carol, reply_to(asked["id"], "alice", "✅"))
        if not any(f["type"] == "message_edited" and not f["data"]["streaming"] for f in frames):
            frames += await timed(carol, lambda f: f["type"] == "message_edited" and not f["data"]["streaming"])
        _posted, edits = live_frames(frames)
        assert edits[-1]["text"] == "✅ Done (100%): do the half job\nhalf way"
        await carol.close()
