"""Files through the CommunicationManager facade: ``send_message(files=...)`` and
the attachments of the messages handlers receive, with real WebSocket and HTTP clients."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatbus import Settings
from chatbus.cli.uploads import check_files, upload
from chatbus.compat import CommunicationManager, CompatMessage
from tests.test_compat import TIMEOUT, Client, port_of


@pytest.fixture
def comm(tmp_path: Path) -> Iterator[CommunicationManager]:
    settings = Settings.isolated(
        db=str(tmp_path / "chat.db"),
        websocket={"host": "127.0.0.1", "port": 0},
        files={"max_file_bytes": 20000},
    )
    manager = CommunicationManager("websocket", settings=settings)
    manager.start_polling()
    yield manager
    manager.stop_polling()


def test_send_message_attaches_files(tmp_path: Path, comm: CommunicationManager) -> None:
    report = tmp_path / "report.csv"
    report.write_text("task,minutes\nlogin,42\n")
    port = port_of(comm)
    client = Client(port, "carol")
    try:
        assert comm.send_message("the weekly figures", sender_name="helper", files=[report])
        frame = client.expect(lambda f: f["type"] == "agent_response")["data"]
        assert frame["text"] == "the weekly figures" and frame["sender"] == "helper"
        (attached,) = frame["attachments"]
        size = report.stat().st_size
        assert (attached["name"], attached["contentType"], attached["size"]) == ("report.csv", "text/csv", size)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{attached['url']}", timeout=TIMEOUT) as answer:
            assert answer.read() == report.read_bytes()
        assert comm.send_message("", sender_name="helper", files=[str(report)])  # a file needs no text
        again = client.expect(lambda f: f["type"] == "agent_response")["data"]
        assert again["text"] == "" and [a["id"] for a in again["attachments"]] == [attached["id"]]
    finally:
        client.close()


def test_files_that_cannot_be_sent_are_errors_and_nothing_is_posted(tmp_path: Path, comm: CommunicationManager) -> None:
    (tmp_path / "huge.txt").write_bytes(b"x" * 30000)
    client = Client(port_of(comm), "carol")
    try:
        with pytest.raises(FileNotFoundError, match="no file .*missing.txt"):
            comm.send_message("see attached", files=[tmp_path / "missing.txt"])
        with pytest.raises(FileNotFoundError, match="is a directory, not a file"):
            comm.send_message("see attached", files=[tmp_path])
        with pytest.raises(ValueError, match="too big|larger|limit"):
            comm.send_message("see attached", files=[tmp_path / "huge.txt"])
        with pytest.raises(TypeError, match="list of paths"):
            comm.send_message("see attached", files=str(tmp_path / "huge.txt"))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="empty"):
            comm.send_message("  ", files=[])
        assert comm.send_message("only this one")
        frame = client.expect(lambda f: f["type"] == "agent_response")["data"]
        assert frame["text"] == "only this one" and frame["attachments"] == []
    finally:
        client.close()


def test_handlers_get_the_files_people_send_and_can_read_them(tmp_path: Path, comm: CommunicationManager) -> None:
    received: list[CompatMessage] = []
    arrived = threading.Event()

    def handler(message: CompatMessage) -> None:
        received.append(message)
        arrived.set()

    comm.add_message_handler(handler)
    port = port_of(comm)
    (tmp_path / "screenshot.txt").write_text("what I saw")
    (local,) = check_files([str(tmp_path / "screenshot.txt")])
    stored = upload(f"http://127.0.0.1:{port}", local, user="carol", token=None, timeout=TIMEOUT, context=None)
    client = Client(port, "carol")
    try:
        client.send("message", {"text": "look at this", "attachments": [stored["id"]]})
        assert arrived.wait(TIMEOUT)
        (message,) = received
        assert message.text == "look at this"
        (attachment,) = message.attachments
        assert (attachment.id, attachment.name, attachment.size) == (stored["id"], "screenshot.txt", 10)
        assert attachment.url == stored["url"]
        assert comm.read_file(attachment) == b"what I saw"
        assert comm.read_file(attachment.id) == b"what I saw"
        with pytest.raises(FileNotFoundError):
            comm.read_file("0" * 32)
    finally:
        client.close()
