"""A reply to an agent's running task reaches its worker, end to end over
WebSocket with real worker processes: on standard input when the roster says
``stdin``, otherwise by running the task again with the conversation."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tests.plugins.agents.test_control import gone, pids_of
from tests.plugins.agents.test_websocket import agent_settings, ask, collect, reply_to
from tests.transports.websocket.helpers import running

STEERABLE = [sys.executable, str(Path(__file__).parent / "workers" / "steerable.py"), "{task}"]


async def test_a_reply_to_a_running_task_reaches_the_workers_standard_input() -> None:
    async with running(settings=agent_settings(live_interval=0.1)) as server:
        await server.hub.hire("alice", "developer", STEERABLE, stdin=True)
        carol = await server.client("carol", role="developer")
        asked = await ask(carol, "@alice please listen to the plan")
        ack = (await collect(carol, reply_to(asked["id"], "alice", "Got it!")))[-1]["data"]
        # A reply to the acknowledgement, written on the worker's standard input.
        answer = await ask(carol, "use postgres, not mysql", replyTo=ack["id"])
        frames = await collect(carol, reply_to(answer["id"], "alice"))
        assert frames[-1]["data"]["text"] == "I've passed your reply on to my work on this task: listen to the plan."

        # The live status message shows what the worker made of it; a reply to that one ends it.
        def heard(frame: dict[str, Any]) -> bool:
            return (
                frame["type"] in ("agent_response", "message_edited") and "heard: use postgres" in frame["data"]["text"]
            )

        if not any(heard(f) for f in frames):
            frames = await collect(carol, heard)
        live_id = next(f["data"]["id"] for f in frames if heard(f))
        await ask(carol, "done", replyTo=live_id)
        frames = await collect(carol, reply_to(asked["id"], "alice", "✅"))
        assert frames[-1]["data"]["text"] == (
            "✅ Completed: listen to the plan\nlistening\nheard: use postgres, not mysql\nheard: done"
        )
        # No new task was made of the replies.
        assert server.hub.pm.get_plugin("agents").queue("alice") == []  # type: ignore[union-attr]
        await carol.close()


async def test_a_reply_runs_a_worker_without_stdin_again_with_the_conversation(tmp_path: Path) -> None:
    async with running(settings=agent_settings(kill_grace=0.5)) as server:
        await server.hub.hire("alice", "developer", STEERABLE)
        carol = await server.client("carol", role="developer")
        asked = await ask(carol, "@alice please ask about the schema")
        ack = (await collect(carol, reply_to(asked["id"], "alice", "Got it!")))[-1]["data"]
        pids = await pids_of(tmp_path / "agents" / "alice")
        answer = await ask(carol, "the users table has an email column", replyTo=ack["id"])
        frames = await collect(carol, reply_to(answer["id"], "alice"))
        assert frames[-1]["data"]["text"] == "🔁 Starting this task again with your reply: ask about the schema."
        frames = await collect(carol, reply_to(asked["id"], "alice", "✅"))
        assert await gone(pids)
        assert frames[-1]["data"]["text"] == (
            "✅ Completed: ask about the schema\n"
            "conversation: carol: the users table has an email column\n"
            "reply: the users table has an email column"
        )
        await carol.close()


async def test_a_reply_to_a_help_request_gives_the_task_again_with_the_conversation() -> None:
    async with running(settings=agent_settings()) as server:
        await server.hub.hire("alice", "developer", STEERABLE)
        carol = await server.client("carol", role="developer")
        asked = await ask(carol, "@alice please sync the flaky mirror")
        help_request = (await collect(carol, reply_to(asked["id"], "alice", "@team")))[-1]["data"]
        answer = await ask(carol, "the network is back, try again", replyTo=help_request["id"])
        frames = await collect(carol, reply_to(answer["id"], "alice", "✅"))
        texts = [f["data"]["text"] for f in frames if f["type"] == "agent_response" and not f["data"].get("streaming")]
        assert texts == [
            "🔁 Trying again: sync the flaky mirror.",
            "✅ Completed: sync the flaky mirror\nworked the second time",
        ]
        conversation = (
            Path(server.hub.pm.get_plugin("agents").settings.workdir) / "alice" / ".chatbus" / "conversation.txt"
        )  # type: ignore[union-attr]
        assert conversation.read_text() == "carol: the network is back, try again\n\n"
        await carol.close()


async def test_a_reply_to_a_finished_task_is_conversation_not_work() -> None:
    async with running(settings=agent_settings()) as server:
        await server.hub.hire("alice", "developer", STEERABLE)
        carol = await server.client("carol", role="developer")
        asked = await ask(carol, "@alice please write the summary")
        frames = await collect(carol, reply_to(asked["id"], "alice", "✅"))
        ack = next(
            f["data"] for f in frames if f["type"] == "agent_response" and f["data"]["text"].startswith("Got it")
        )
        thanks = await ask(carol, "@alice thanks, great work", replyTo=ack["id"])
        frames = await collect(carol, reply_to(thanks["id"], "alice"))
        assert not frames[-1]["data"]["text"].startswith(("🔁", "Got it"))
        assert not [f for f in frames if f["type"] == "agent_status" and f["data"]["status"] == "working"]
        await carol.close()


async def test_a_reply_to_a_queued_task_is_kept_for_when_it_starts() -> None:
    async with running(settings=agent_settings(live_interval=0.1)) as server:
        await server.hub.hire("alice", "developer", STEERABLE, stdin=True)
        carol = await server.client("carol", role="developer")
        first = await ask(carol, "@alice please listen to the plan")
        first_ack = (await collect(carol, reply_to(first["id"], "alice", "Got it!")))[-1]["data"]
        second = await ask(carol, "@alice please ask about the schema")
        queued = (await collect(carol, reply_to(second["id"], "alice")))[-1]["data"]
        assert "queued" in queued["text"]
        # A reply to the queued task's acknowledgement is answered, and kept with that task.
        answer = await ask(carol, "the users table has an email column", replyTo=queued["id"])
        frames = await collect(carol, reply_to(answer["id"], "alice"))
        assert frames[-1]["data"]["text"] == (
            "📝 Noted: I'll start this queued task with your reply in mind: ask about the schema."
        )
        await ask(carol, "done", replyTo=first_ack["id"])  # the first task ends
        frames = await collect(carol, reply_to(second["id"], "alice", "✅"))
        assert frames[-1]["data"]["text"] == (
            "✅ Completed: ask about the schema\n"
            "conversation: carol: the users table has an email column\n"
            "reply: the users table has an email column"
        )
        assert server.hub.pm.get_plugin("agents").queue("alice") == []  # type: ignore[union-attr]
        await carol.close()
