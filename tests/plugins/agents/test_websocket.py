"""Agents end to end: real WebSocket clients on loopback talk to agents whose
worker commands are real subprocesses."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chatbus import Settings, SQLiteStore
from tests.transports.websocket.helpers import Client, Server, running

WORKER = Path(__file__).parent / "workers" / "worker.py"
COMMAND = [sys.executable, str(WORKER), "{task}"]
TIMEOUT = 10.0


def agent_settings(db: str = ":memory:", **agents: Any) -> Settings:
    options = {"stuck_after": 30, "timeout": 60, "kill_grace": 1, "roster_refresh": 5, **agents}
    return Settings.isolated(db=db, agents=options)


async def collect(
    client: Client, predicate: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT
) -> list[dict[str, Any]]:
    """Every frame received up to and including the first that matches ``predicate``."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await client.recv(timeout)
            frames.append(frame)
            if predicate(frame):
                return frames


def reply_to(message_id: int, sender: str, starts: str = "") -> Callable[[dict[str, Any]], bool]:
    def match(frame: dict[str, Any]) -> bool:
        data = frame.get("data", {})
        return (
            frame["type"] == "agent_response"
            and data.get("replyTo") == message_id
            and data.get("sender") == sender
            and data.get("text", "").startswith(starts)
        )

    return match


def statuses(frames: list[dict[str, Any]], agent: str) -> list[tuple[str, str | None, int | None]]:
    return [
        (f["data"]["status"], f["data"]["currentTask"], f["data"]["progress"])
        for f in frames
        if f["type"] == "agent_status" and f["data"]["userId"] == agent
    ]


async def ask(client: Client, text: str, **data: Any) -> dict[str, Any]:
    """Send a message; the echo of it (with its server id)."""
    await client.say(text, **data)
    me = client.auth["userId"]
    frames = await collect(
        client, lambda f: f["type"] == "message" and f["data"]["text"] == text and f["data"]["sender"] == me
    )
    return frames[-1]["data"]


async def hire(server: Server, name: str = "alice", role: str = "developer", command: list[str] | None = None) -> None:
    await server.hub.hire(name, role, COMMAND if command is None else command)


async def test_a_mention_is_acknowledged_and_the_work_reported_through_completed(tmp_path: Path) -> None:
    async with running(settings=agent_settings()) as server:
        await hire(server)
        carol = await server.client("carol", role="developer")
        asked = await ask(carol, "@alice please create a login component")
        started = time.monotonic()
        frames = await collect(carol, reply_to(asked["id"], "alice", "Got it!"))
        assert time.monotonic() - started < 1.0
        ack = frames[-1]["data"]
        assert ack["text"] == "Got it! I'll create a login component."
        assert ack["role"] == "developer" and ack["kind"] == "agent"
        frames += await collect(carol, reply_to(asked["id"], "alice", "✅"))
        task = "create a login component"
        assert statuses(frames, "alice") == [
            ("working", task, None),
            ("working", task, 10),
            ("working", task, 50),
            ("working", task, 90),
            ("completed", task, 100),
        ]
        assert frames[-1]["data"]["text"].startswith("✅ Completed: create a login component\n")
        assert (tmp_path / "agents" / "alice" / "result.txt").read_text() == task
        await carol.close()


async def test_a_failing_command_produces_a_help_request() -> None:
    async with running(settings=agent_settings()) as server:
        await hire(server)
        carol = await server.client("carol", role="developer")
        asked = await ask(carol, "@alice please fix the failing import")
        frames = await collect(carol, reply_to(asked["id"], "alice", "@team"))
        assert frames[-1]["data"]["text"] == (
            "@team I need help with this task: fix the failing import.\n"
            "Problem: error: the database is locked\n(exit status 2)"
        )
        assert frames[-1]["data"]["mentions"] == ["team"]
        assert statuses(frames, "alice")[-1] == ("stuck", "fix the failing import", None)
        await carol.close()


async def test_a_hanging_command_goes_stuck_and_is_stopped() -> None:
    async with running(settings=agent_settings(stuck_after=0.5, timeout=1.5)) as server:
        await hire(server)
        carol = await server.client("carol", role="developer")
        asked = await ask(carol, "@alice please run the hang test")
        frames = await collect(carol, reply_to(asked["id"], "alice", "@team"))
        assert "still running after 1 second" in frames[-1]["data"]["text"]
        assert statuses(frames, "alice")[-1] == ("stuck", "run the hang test", None)
        frames = await collect(carol, reply_to(asked["id"], "alice", "⏹️"))
        assert frames[-1]["data"]["text"].startswith(
            "⏹️ I stopped this task after 2 seconds, as it was still running: run the hang test."
        )
        await carol.close()


async def test_two_agents_mentioned_together_both_answer_once() -> None:
    async with running(settings=agent_settings()) as server:
        await hire(server, "alice", "developer")
        await hire(server, "bob", "tester")
        carol = await server.client("carol", role="developer")
        asked = await ask(carol, "@alice @bob @alice please check the release notes")
        answers: list[dict[str, Any]] = []
        frames = await collect(
            carol,
            lambda f: (
                f["type"] == "agent_response"
                and f["data"]["replyTo"] == asked["id"]
                and not f["data"].get("streaming")  # live status messages are tested in test_live.py
                and (answers.append(f["data"]) or len(answers) == 4)
            ),
        )
        acks = [a for a in answers if a["text"].startswith("Got it!")]
        done = [a for a in answers if a["text"].startswith("✅")]
        assert sorted(a["sender"] for a in acks) == ["alice", "bob"]
        assert sorted(a["sender"] for a in done) == ["alice", "bob"]
        assert {a["text"] for a in acks} == {"Got it! I'll check the release notes."}
        assert len(frames) >= 4
        await carol.close()


async def test_a_second_task_is_queued_and_done_after_the_first() -> None:
    async with running(settings=agent_settings()) as server:
        await hire(server)
        carol = await server.client("carol", role="developer")
        await carol.say("@alice please make the slow build")
        await carol.say("@alice please add a news entry")
        frames = await collect(
            carol,
            lambda f: f["type"] == "agent_response" and f["data"]["text"].startswith("✅ Completed: add a news entry"),
        )
        chat = [f["data"] for f in frames if f["type"] in ("message", "agent_response")]
        first, second = (m["id"] for m in chat if m["sender"] == "carol")
        # Live status messages (streaming while the work runs) are tested in test_live.py.
        answers = [(m["replyTo"], m["text"]) for m in chat if m["sender"] == "alice" and not m.get("streaming")]
        assert answers == [
            (first, "Got it! I'll make the slow build."),
            (
                second,
                (
                    "I'm busy with another task, so I've queued this one (next in my queue): add a news entry. "
                    "Working on now: make the slow build."
                ),
            ),
            (
                first,
                "✅ Completed: make the slow build\nagent alice starting: make the slow build\nwrote result.txt in alice",
            ),
            (
                second,
                "✅ Completed: add a news entry\nagent alice starting: add a news entry\nwrote result.txt in alice",
            ),
        ]
        assert [s for s in statuses(frames, "alice") if s[0] != "working" or s[2] is None] == [
            ("working", "make the slow build", None),
            ("completed", "make the slow build", 100),
            ("working", "add a news entry", None),
            ("completed", "add a news entry", 100),
        ]
        await carol.close()


async def test_only_managers_hire_and_fire_from_the_chat() -> None:
    async with running(settings=agent_settings()) as server:
        dev = await server.client("dev", role="developer")
        boss = await server.client("boss", role="manager")
        asked = await ask(dev, "/hire zed reviewer")
        refusal = (await collect(dev, reply_to(asked["id"], "system")))[-1]["data"]
        assert refusal["text"] == "Only managers can hire agents; your role is 'developer'. Ask a manager to do it."
        assert "zed" not in server.hub.agents

        asked = await ask(boss, "/hire zed reviewer")
        frames = await collect(boss, reply_to(asked["id"], "system"))
        assert frames[-1]["data"]["text"] == "Hired zed as reviewer. Say hello: @zed"
        presence = [f["data"] for f in frames if f["type"] == "presence" and f["data"]["userId"] == "zed"]
        assert presence == [
            {
                "userId": "zed",
                "role": "reviewer",
                "kind": "agent",
                "status": "online",
                "displayName": "zed",
                "transport": None,
            }
        ]

        asked = await ask(dev, "/fire zed")
        refusal = (await collect(dev, reply_to(asked["id"], "system")))[-1]["data"]
        assert refusal["text"].startswith("Only managers can fire agents")
        asked = await ask(boss, "/fire zed")
        assert (await collect(boss, reply_to(asked["id"], "system")))[-1]["data"]["text"] == "Fired zed."
        # An agent's name is not a login.
        await hire(server, "alice")
        impostor = await Client.open(server.url)
        await impostor.send("auth", {"userId": "alice"})
        error = await impostor.error()
        assert error["code"] == "AUTH_FAILED" and "agent" in error["message"]
        for client in (dev, boss, impostor):
            await client.close()


async def test_a_task_in_flight_at_a_restart_is_reported_after_it(tmp_path: Path) -> None:
    db = str(tmp_path / "chat.db")
    async with running(settings=agent_settings(db), store=SQLiteStore(db)) as server:
        await hire(server)
        carol = await server.client("carol", role="developer")
        asked = await ask(carol, "@alice please run the hang test")
        frames = await collect(carol, lambda f: f["type"] == "agent_status" and f["data"]["status"] == "working")
        ack = next(f["data"] for f in frames if reply_to(asked["id"], "alice", "Got it!")(f))
        last_seen = ack["id"]
        await carol.close()

    async with running(settings=agent_settings(db), store=SQLiteStore(db)) as server:
        carol = await server.client("carol", role="developer", lastSeenId=last_seen)
        seen = [f["data"] for f in carol.auth.get("missed", [])]
        if not any(m["sender"] == "alice" for m in seen):
            frames = await collect(carol, lambda f: f["type"] == "agent_response" and f["data"]["sender"] == "alice")
            seen.append(frames[-1]["data"])
        report = next(m for m in seen if m["sender"] == "alice")
        assert report["replyTo"] == asked["id"]
        assert report["text"].startswith(
            "⚠️ The server stopped while I was working on this task, so it was interrupted: run the hang test."
        )
        assert server.hub.agent_status("alice").status == "idle"  # type: ignore[union-attr]
        await carol.close()
