"""The synchronous CommunicationManager facade, driven the way the earlier
system's code drove it, with real WebSocket clients on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from chatbus import Settings, TransportError
from chatbus.compat import CommunicationManager, CompatMessage

TIMEOUT = 5.0


def settings(tmp_path: Path, port: int = 0) -> Settings:
    return Settings.isolated(db=str(tmp_path / "chat.db"), websocket={"host": "127.0.0.1", "port": port})


class Client:
    """A blocking WebSocket client that speaks chatbus frames."""

    def __init__(self, port: int, user: str, role: str = "user") -> None:
        self.ws: ClientConnection = connect(
            f"ws://127.0.0.1:{port}/", open_timeout=TIMEOUT, close_timeout=2, legacy=True
        )
        self.send("auth", {"userId": user, "role": role})
        self.auth = self.expect(lambda f: f["type"] == "auth_response")["data"]

    def send(self, kind: str, data: dict[str, Any]) -> None:
        self.ws.send(json.dumps({"type": kind, "data": data}))

    def say(self, text: str, **data: Any) -> dict[str, Any]:
        """Send a message and return the server's echo of it (with its id)."""
        self.send("message", {"text": text, **data})
        return self.expect(lambda f: f["type"] == "message" and f["data"]["text"] == text)["data"]

    def expect(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("the expected frame did not come")
            frame = json.loads(self.ws.recv(timeout=left))
            if predicate(frame):
                return frame

    def close(self) -> None:
        self.ws.close()


def port_of(comm: CommunicationManager) -> int:
    assert comm.hub is not None
    return comm.hub.transports["websocket"].port  # type: ignore[attr-defined, no-any-return]


@pytest.fixture
def comm(tmp_path: Path) -> Iterator[CommunicationManager]:
    manager = CommunicationManager("websocket", settings=settings(tmp_path))
    yield manager
    manager.stop_polling()


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_the_transport_type_comes_from_the_argument_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert CommunicationManager().get_transport_type() == "websocket"
    monkeypatch.setenv("COMMUNICATION_TRANSPORT", "telegram")
    assert CommunicationManager().get_transport_type() == "telegram"
    assert CommunicationManager("both").get_transport_type() == "both"
    assert CommunicationManager("websocket").get_transport_type() == "websocket"


@pytest.mark.parametrize("name", ["carrier-pigeon", "websocket,irc", ","])
def test_an_unknown_transport_type_is_a_value_error(name: str) -> None:
    with pytest.raises(ValueError, match="websocket"):
        CommunicationManager(name)


def test_an_unknown_transport_from_the_environment_is_a_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMUNICATION_TRANSPORT", "smoke-signals")
    with pytest.raises(ValueError, match="smoke-signals"):
        CommunicationManager()


def test_nothing_is_sent_or_connected_before_start(comm: CommunicationManager) -> None:
    assert comm.is_connected() is False
    assert comm.send_message("hello") is False
    comm.stop_polling()  # stopping what never started is fine


def test_handlers_receive_people_messages_with_the_earlier_fields(comm: CommunicationManager) -> None:
    received: list[CompatMessage] = []
    arrived = threading.Event()
    loop_threads: list[str] = []

    def handler(message: CompatMessage) -> None:
        loop_threads.append(threading.current_thread().name)
        received.append(message)
        arrived.set()

    comm.add_message_handler(handler)
    comm.start_polling()
    comm.start_polling()  # a second start is a no-op
    assert comm.is_connected()
    client = Client(port_of(comm), "carol")
    try:
        first = client.say("hello everyone")
        echo = client.say("/status @alice now", replyTo=first["id"])
        wait_until(lambda: len(received) == 2)
        hello, command = received
        assert hello.message_id == first["id"] and hello.text == "hello everyone" and hello.sender == "carol"
        assert hello.timestamp.utcoffset() is not None and hello.is_command is False and hello.command is None
        assert command.message_id == echo["id"] and command.reply_to == first["id"]
        assert command.is_command is True and command.command == "status" and command.command_args == ["@alice", "now"]
        assert command.mentions == ["alice"]
        assert all(name.startswith("chatbus-handler") for name in loop_threads)
        # The system's answer to /status and the handler's own messages are not handed back.
        assert comm.send_message("a note from the manager")
        client.expect(lambda f: f["type"] == "agent_response" and f["data"]["text"] == "a note from the manager")
        time.sleep(0.2)
        assert len(received) == 2
    finally:
        client.close()


def test_send_message_from_many_threads_reaches_clients(comm: CommunicationManager) -> None:
    comm.start_polling()
    client = Client(port_of(comm), "carol")
    try:
        asked = client.say("@helper anyone there?")
        results: list[bool] = []

        def post(number: int) -> None:
            results.append(comm.send_message(f"note {number}", sender_name="helper", reply_to=asked["id"]))

        threads = [threading.Thread(target=post, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        assert results == [True] * 20
        seen: set[str] = set()
        while len(seen) < 20:
            frame = client.expect(lambda f: f["type"] == "agent_response")["data"]
            assert frame["sender"] == "helper" and frame["replyTo"] == asked["id"]
            seen.add(frame["text"])
        assert seen == {f"note {n}" for n in range(20)}
        assert comm.send_message("as a string id", reply_to=str(asked["id"]))
        with pytest.raises(ValueError):
            comm.send_message("   ")
        with pytest.raises(ValueError):
            comm.send_message("hi", sender_name="not a name")
        with pytest.raises(ValueError):
            comm.send_message("hi", reply_to="the last one")
    finally:
        client.close()


def test_a_slow_or_failing_handler_affects_no_other(comm: CommunicationManager) -> None:
    release = threading.Event()
    fast: list[str] = []
    slow: list[str] = []

    def stuck_handler(message: CompatMessage) -> None:
        release.wait(TIMEOUT)
        slow.append(message.text)

    def broken_handler(message: CompatMessage) -> None:
        raise RuntimeError("a bug in someone's handler")

    async def async_handler(message: CompatMessage) -> None:
        fast.append(message.text)

    comm.add_message_handler(stuck_handler)
    comm.add_message_handler(broken_handler)
    comm.add_message_handler(async_handler)
    comm.start_polling()
    client = Client(port_of(comm), "carol")
    try:
        for text in ("one", "two", "three"):
            client.say(text)
        wait_until(lambda: fast == ["one", "two", "three"], timeout=2)
        assert slow == []
        assert comm.send_message("still answering")
        release.set()
        wait_until(lambda: slow == ["one", "two", "three"])
    finally:
        release.set()
        client.close()


def test_stop_polling_stops_the_chat_and_it_can_start_again(comm: CommunicationManager) -> None:
    comm.start_polling()
    port = port_of(comm)
    client = Client(port, "carol")
    comm.stop_polling()
    assert comm.is_connected() is False
    assert comm.send_message("anyone?") is False
    with pytest.raises(Exception):  # noqa: B017 - any close is fine: the server went away
        client.expect(lambda f: False, timeout=2)
    client.close()
    comm.start_polling()
    assert comm.is_connected()
    again = Client(port_of(comm), "carol")
    again.close()


def test_a_port_in_use_is_reported_by_start_polling(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        comm = CommunicationManager("websocket", settings=settings(tmp_path, port=port))
        with pytest.raises(TransportError, match=f"port {port} .* in use"):
            comm.start_polling()
        assert comm.is_connected() is False
        assert comm.send_message("hello") is False
