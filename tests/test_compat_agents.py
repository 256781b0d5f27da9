"""A small agent manager written only against the earlier CommunicationManager
interface, driven end to end by a real WebSocket client."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from chatbus import Settings
from chatbus.compat import CommunicationManager

TIMEOUT = 5.0


class NoteTakerManager:
    """Agent manager code as the earlier system had it: a handler that answers
    mentions of its agents, does the work on a thread of its own and reports
    back with ``send_message``. It uses nothing but the facade."""

    def __init__(self, comm: Any, folder: Path) -> None:
        self.comm = comm
        self.folder = folder
        self.agents = {"scribe": "note taker"}
        self.busy: dict[str, str | None] = {"scribe": None}
        comm.add_message_handler(self.handle)

    def handle(self, message: Any) -> None:
        if message.is_command and message.command == "team":
            lines = [f"{name} ({role}): {self.busy[name] or 'idle'}" for name, role in self.agents.items()]
            self.comm.send_message("\n".join(lines), reply_to=message.message_id)
            return
        for name in message.mentions:
            if name not in self.agents:
                continue
            if "write" in message.text:
                task = message.text.split("write", 1)[1].strip(" .!?")
                self.busy[name] = task
                self.comm.send_message(f"On it: writing {task}", sender_name=name, reply_to=message.message_id)
                threading.Thread(target=self.work, args=(name, task, message.message_id)).start()
            else:
                self.comm.send_message(f"Hello {message.sender}!", sender_name=name, reply_to=message.message_id)

    def work(self, name: str, task: str, reply_to: int) -> None:
        path = self.folder / "notes.txt"
        path.write_text(f"{task}\n")
        self.busy[name] = None
        self.comm.send_message(f"Done: {task} is in {path.name}", sender_name=name, reply_to=reply_to)


@pytest.fixture
def comm(tmp_path: Path) -> Iterator[CommunicationManager]:
    settings = Settings.isolated(db=str(tmp_path / "chat.db"), websocket={"host": "127.0.0.1", "port": 0})
    manager = CommunicationManager("websocket", settings=settings)
    yield manager
    manager.stop_polling()


def test_an_agent_manager_written_for_the_earlier_system_works_end_to_end(
    comm: CommunicationManager, tmp_path: Path
) -> None:
    NoteTakerManager(comm, tmp_path)
    comm.start_polling()
    assert comm.is_connected() and comm.get_transport_type() == "websocket"
    assert comm.hub is not None
    port = comm.hub.transports["websocket"].port  # type: ignore[attr-defined]

    with connect(f"ws://127.0.0.1:{port}", open_timeout=TIMEOUT) as ws:

        def expect(predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
            deadline = time.monotonic() + TIMEOUT
            while (left := deadline - time.monotonic()) > 0:
                frame = json.loads(ws.recv(timeout=left))
                if predicate(frame):
                    return frame["data"]  # type: ignore[no-any-return]
            raise AssertionError("the expected frame did not come")

        def say(text: str) -> int:
            ws.send(json.dumps({"type": "message", "data": {"text": text}}))
            return int(expect(lambda f: f["type"] == "message" and f["data"]["text"] == text)["id"])

        def answer(to: int, starts: str) -> dict[str, Any]:
            return expect(
                lambda f: (
                    f["type"] == "agent_response"
                    and f["data"]["replyTo"] == to
                    and f["data"]["text"].startswith(starts)
                )
            )

        ws.send(json.dumps({"type": "auth", "data": {"userId": "carol", "role": "developer"}}))
        assert expect(lambda f: f["type"] == "auth_response")["success"] is True

        hello = say("@scribe hi there")
        assert answer(hello, "Hello")["text"] == "Hello carol!"

        asked = say("@scribe please write the meeting minutes")
        ack = answer(asked, "On it")
        assert ack["sender"] == "scribe" and ack["text"] == "On it: writing the meeting minutes"
        done = answer(asked, "Done")
        assert done["text"] == "Done: the meeting minutes is in notes.txt"
        assert (tmp_path / "notes.txt").read_text() == "the meeting minutes\n"

        team = say("/team")
        report = answer(team, "scribe")
        assert report["sender"] == "system" and report["text"] == "scribe (note taker): idle"

    comm.stop_polling()
    assert comm.is_connected() is False
    assert comm.send_message("anyone?") is False
