"""What the agents' work keeps when the server running them starts again (or another node of a
cluster takes them over, through the same resume): an agent shown ``completed`` still goes back
to ``idle`` after ``agents.idle_after``, though the server that would have done it is gone."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from chatbus import AgentStatus
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
