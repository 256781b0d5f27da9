"""Agents with the real ``chatbus`` command: hiring from the command line while
``chatbus serve`` runs, and stopping the server in the middle of a task."""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from tests.support import ChatbusProcess, alive, chatbus_env, run_chatbus

WORKER = Path(__file__).parent / "workers" / "worker.py"
COMMAND = shlex.join([sys.executable, str(WORKER)]) + " {task}"
TIMEOUT = 10.0
LISTENING = re.compile(r"listening on ws://127\.0\.0\.1:(\d+)/")


def serve(tmp_path: Path) -> tuple[ChatbusProcess, int]:
    env = chatbus_env({"CHATBUS_AGENTS__ROSTER_REFRESH": "0.3", "CHATBUS_AGENTS__KILL_GRACE": "1"})
    server = ChatbusProcess("serve", "--port", "0", "--db", "chat.db", env=env, cwd=tmp_path)
    match = LISTENING.search(server.stderr.wait_for("listening on", 30))
    assert match is not None
    return server, int(match.group(1))


class Client:
    def __init__(self, port: int, user: str, **auth: Any) -> None:
        self.ws: ClientConnection = connect(f"ws://127.0.0.1:{port}", open_timeout=TIMEOUT, legacy=True)
        self.ws.send(json.dumps({"type": "auth", "data": {"userId": user, **auth}}))
        self.auth = self.expect(lambda f: f["type"] == "auth_response")

    def say(self, text: str) -> int:
        self.ws.send(json.dumps({"type": "message", "data": {"text": text}}))
        return int(self.expect(lambda f: f["type"] == "message" and f["data"]["text"] == text)["id"])

    def expect(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            frame = json.loads(self.ws.recv(timeout=left))
            if predicate(frame):
                return frame["data"]  # type: ignore[no-any-return]
        raise AssertionError("the expected frame did not come")

    def close(self) -> None:
        self.ws.close()


def answer(to: int, sender: str, starts: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: (
        f["type"] == "agent_response"
        and f["data"]["replyTo"] == to
        and f["data"]["sender"] == sender
        and f["data"]["text"].startswith(starts)
    )


def test_agents_hired_and_fired_with_the_cli_join_and_leave_a_running_server(tmp_path: Path) -> None:
    server, port = serve(tmp_path)
    with server:
        carol = Client(port, "carol", role="developer")
        hired = run_chatbus(
            "agents", "hire", "alice", "developer", "--command", COMMAND, "--db", "chat.db", cwd=tmp_path
        )
        assert hired.returncode == 0, hired.stderr
        asked = carol.say("@alice please write the plan")
        assert carol.expect(answer(asked, "alice", "Got it!"))["text"] == "Got it! I'll write the plan."
        done = carol.expect(answer(asked, "alice", "✅"))
        assert done["text"].startswith("✅ Completed: write the plan")
        assert (tmp_path / "agents" / "alice" / "result.txt").read_text() == "write the plan"
        listed = run_chatbus("agents", "list", "--db", "chat.db", cwd=tmp_path)
        assert re.search(r"^alice\s+developer\s+completed\s+write the plan$", listed.stdout, re.MULTILINE), (
            listed.stdout
        )

        fired = run_chatbus("agents", "fire", "alice", "--db", "chat.db", cwd=tmp_path)
        assert fired.returncode == 0, fired.stderr
        left = carol.expect(lambda f: f["type"] == "presence" and f["data"]["userId"] == "alice")
        assert left == {
            "userId": "alice",
            "role": "developer",
            "kind": "agent",
            "status": "offline",
            "displayName": "alice",
            "transport": None,
        }
        carol.close()
        assert server.terminate() == 0


def test_a_task_running_when_the_server_stops_is_reported_when_it_starts_again(tmp_path: Path) -> None:
    hired = run_chatbus(
        "agents", "hire", "alice", "developer", "--command", COMMAND, "--db", "chat.db", "--create", cwd=tmp_path
    )
    assert hired.returncode == 0, hired.stderr
    server, port = serve(tmp_path)
    with server:
        carol = Client(port, "carol", role="developer")
        asked = carol.say("@alice please run the hang test")
        ack = carol.expect(answer(asked, "alice", "Got it!"))
        carol.expect(lambda f: f["type"] == "agent_status" and f["data"]["status"] == "working")
        pids_file = tmp_path / "agents" / "alice" / "pids.txt"
        deadline = time.monotonic() + TIMEOUT
        while not (pids_file.exists() and pids_file.read_text().strip()):
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.05)
        pids = [int(pid) for pid in pids_file.read_text().split()]
        carol.close()
        started = time.monotonic()
        assert server.terminate() == 0
        assert time.monotonic() - started < 8
    assert not any(alive(pid) for pid in pids)

    server, port = serve(tmp_path)
    with server:
        carol = Client(port, "carol", role="developer", lastSeenId=ack["id"])
        seen = [frame["data"] for frame in carol.auth.get("missed", [])]
        # (the live status message of the interrupted work is not the report)
        seen = [m for m in seen if not m.get("streaming") and not m["text"].startswith("⏳")]
        if not any(m["sender"] == "alice" for m in seen):
            seen.append(
                carol.expect(
                    lambda f: (
                        f["type"] == "agent_response"
                        and f["data"]["sender"] == "alice"
                        and not f["data"]["text"].startswith("⏳")
                    )
                )
            )
        report = next(m for m in seen if m["sender"] == "alice")
        assert report["replyTo"] == asked
        assert report["text"].startswith(
            "⚠️ The server stopped while I was working on this task, so it was interrupted: run the hang test."
        )
        carol.close()
        assert server.terminate() == 0
    listed = run_chatbus("agents", "list", "--db", "chat.db", cwd=tmp_path)
    assert re.search(r"^alice\s+developer\s+idle\s+-$", listed.stdout, re.MULTILINE), listed.stdout
