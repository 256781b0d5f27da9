"""The web page across a graceful restart of a real ``chatbus serve`` process, in Chromium.

SIGTERM makes the server close every client with 1012 and a reconnect hint;
the page says the server is restarting, comes back by itself with jittered
backoff once a new process listens on the same port and database, and shows
every message once, in order, including those posted while it was away.
The backoff itself is checked in a Worker, where ``protocol.js`` runs without
a page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support import ChatbusProcess, chatbus_env

from .conftest import WAIT_MS, ChatServer, Pages, message_items, screenshot, send, shown_texts, wait_until
from .test_protocol_module import START, wait_for_report

LISTENING = re.compile(r"listening on ws://127\.0\.0\.1:(\d+)/")
#: People here type faster than the default rate limit allows.
FAST = {
    "CHATBUS_RATELIMIT__BURST": "1000",
    "CHATBUS_RATELIMIT__PER_SECOND": "1000",
    "CHATBUS_RATELIMIT__PER_HOUR": "100000",
}
#: Longest wait for the page to be back: the process starts again, then the page's next attempt.
BACK_MS = 45_000


class Node:
    """``chatbus serve`` as an operator runs it: a process on one port and database, restarted with SIGTERM."""

    def __init__(self, db: Path, cwd: Path) -> None:
        self.db = db
        self.cwd = cwd
        self.port = 0
        self.process: ChatbusProcess | None = None

    def start(self) -> None:
        args = ("serve", "--host", "127.0.0.1", "--port", str(self.port), "--db", str(self.db))
        self.process = ChatbusProcess(*args, "--log-level", "INFO", env=chatbus_env(FAST), cwd=self.cwd)
        found = LISTENING.search(self.process.stderr.wait_for("listening on", 30))
        assert found is not None
        self.port = int(found.group(1))

    def terminate(self) -> int:
        """SIGTERM; the exit status."""
        assert self.process is not None
        return self.process.terminate(30)

    def close(self) -> None:
        if self.process is not None:
            self.process.__exit__(None, None, None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def socket_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    running = Node(tmp_path / "chat.db", tmp_path)
    try:
        running.start()
        yield running
    finally:
        running.close()


def sign_in(ws: ClientConnection, user: str, last_seen: int | None = None) -> dict[str, Any]:
    """Sign another person in on a plain WebSocket client; the ``auth_response`` data."""
    data: dict[str, Any] = {"userId": user}
    if last_seen is not None:
        data["lastSeenId"] = last_seen
    ws.send(json.dumps({"type": "auth", "data": data}))
    return next_of(ws, "auth_response")


def closed(ws: ClientConnection) -> tuple[int | None, str | None]:
    """Read until the server closes; the close code and reason it sent."""
    with pytest.raises(ConnectionClosed):
        while True:
            ws.recv(timeout=10)
    return ws.close_code, ws.close_reason


def next_of(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """The data of the next frame of type ``kind``."""
    while True:
        frame = json.loads(ws.recv(timeout=10))
        if frame["type"] == kind:
            data: dict[str, Any] = frame["data"]
            return data


def say(ws: ClientConnection, text: str) -> int:
    """Post ``text`` and wait for its echo; its id."""
    ws.send(json.dumps({"type": "message", "data": {"text": text}}))
    while True:
        data = next_of(ws, "message")
        if data["text"] == text:
            return int(data["id"])


def test_page_rides_through_a_sigterm_restart_and_shows_every_message_once(browser: Any, node: Node) -> None:
    pages = Pages(browser, node)  # type: ignore[arg-type]  # Pages needs only the page's url
    try:
        alice = pages.join("alice")
        with connect(node.socket_url, open_timeout=10, close_timeout=2) as bob:
            sign_in(bob, "bob")
            send(alice, "before the restart")
            expect(message_items(alice, "before the restart")).to_have_count(1)
            seen = say(bob, "bob, before the restart")
            expect(message_items(alice)).to_have_count(2)

            assert node.terminate() == 0
            assert closed(bob) == (1012, "service restart; reconnect in 2 s")
        # The page knows it is a restart, not a lost connection.
        expect(alice.locator("#connection-text")).to_contain_text("Server restarting, reconnecting")
        screenshot(alice, "server-restarting")
        # Full jitter from the server's hint: attempt n waits at most 2 s * 2^(n-1).
        wait_until(alice, "() => window.chatbus.state().delays.length >= 1")
        delays = alice.evaluate("window.chatbus.state().delays")
        assert all(0 <= delay <= 2000 * 2**n for n, delay in enumerate(delays)), delays

        # Back on the same port and database; bob posts while the page has not found it yet.
        node.start()
        away = [f"posted while alice was away {n}" for n in range(3)]
        with connect(node.socket_url, open_timeout=10, close_timeout=2) as bob:
            assert sign_in(bob, "bob", last_seen=seen)["missed"] == []
            for text in away:
                say(bob, text)

            expect(alice.locator("#connection")).to_have_attribute("data-state", "ready", timeout=BACK_MS)
            expect(alice.locator("#connection-text")).to_have_text("Connected")
            expected = ["before the restart", "bob, before the restart", *away]
            expect(message_items(alice)).to_have_count(len(expected))
            assert shown_texts(alice) == expected
            # Live again, still once each.
            say(bob, "welcome back")
            send(alice, "thanks, I missed nothing")
        expected += ["welcome back", "thanks, I missed nothing"]
        expect(message_items(alice)).to_have_count(len(expected))
        assert shown_texts(alice) == expected
        ids = alice.evaluate("window.chatbus.state().shown")
        assert ids == list(range(1, len(expected) + 1))
        expect(alice.locator("#error-line")).to_be_hidden()
    finally:
        pages.close()
    assert not pages.errors, f"the page reported errors: {pages.errors}"
    assert node.terminate() == 0


#: The Worker: the backoff of protocol.js, and a Connection told by a fake socket that the server restarts.
BACKOFF_WORKER = """
import { Connection, restartHintMs, retryDelay } from "%(origin)s/static/js/protocol.js";

const sockets = [];
globalThis.WebSocket = class {
  static OPEN = 1;
  constructor(url) { this.readyState = 0; sockets.push(this); }
  send() {}
  close() {}
};
const connection = new Connection("ws://127.0.0.1:9/");
connection.start({ userId: "robot", role: "tester", token: "" });
sockets[0].onclose({ code: 1012, reason: "service restart; reconnect in 4 s" });
const afterRestart = { restarting: connection.restarting, base: connection.retryBaseMs, delays: [...connection.delays] };
connection.stop();

postMessage({
  event: "backoff",
  detail: {
    caps: [1, 2, 3, 4, 5, 6, 7].map((attempt) => retryDelay(attempt, () => 1)),
    floors: [1, 2, 3].map((attempt) => retryDelay(attempt, () => 0)),
    hinted: [1, 2, 3].map((attempt) => retryDelay(attempt, () => 1, 2000)),
    spread: Array.from({ length: 200 }, () => retryDelay(1, Math.random, 2000)),
    hints: [
      "service restart; reconnect in 2 s", "service restart; reconnect in 0.5 s",
      "service restart; reconnect in 0 s", "service restart; reconnect in 3600 s", "chatbus is stopping", "",
    ].map(restartHintMs),
    afterRestart,
    stopped: { restarting: connection.restarting, base: connection.retryBaseMs },
  },
  hasPage: typeof document !== "undefined" || typeof window !== "undefined",
});
"""


def test_backoff_is_full_jitter_from_the_servers_hint(browser: Any, server: ChatServer) -> None:
    # A harness page: its context ignores the server's Content-Security-Policy, which allows no Worker from a Blob.
    context = browser.new_context(bypass_csp=True)
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        page.goto(f"{server.url}healthz")
        page.evaluate(START, BACKOFF_WORKER % {"origin": server.url.rstrip("/")})
        found = wait_for_report(page, "backoff")
    finally:
        context.close()
    result = found["detail"]
    assert found["hasPage"] is False
    # The cap doubles from 1 s up to 30 s; each wait is anywhere from 0 to the cap.
    assert result["caps"] == [1000, 2000, 4000, 8000, 16000, 30000, 30000]
    assert result["floors"] == [0, 0, 0]
    assert result["hinted"] == [2000, 4000, 8000]
    spread = result["spread"]
    assert all(0 <= delay <= 2000 for delay in spread)
    assert min(spread) < 500 and max(spread) > 1500  # spread over the whole range, not bunched
    # The hint in the close reason, in ms; never so small that clients spin, never beyond the longest wait.
    assert result["hints"] == [2000, 500, 250, 30000, None, None]
    # A 1012 close makes the connection wait from the hint and say it is a restart; stopping forgets it.
    after = result["afterRestart"]
    assert after["restarting"] is True and after["base"] == 4000
    assert len(after["delays"]) == 1 and 0 <= after["delays"][0] <= 4000
    assert result["stopped"] == {"restarting": False, "base": 1000}
