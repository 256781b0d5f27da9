"""The page's protocol module works without a page: in a Worker, against a real chatbus server.

``static/js/protocol.js`` holds the frames and the connection (sign in,
ping/pong, reconnect, resume with ``lastSeenId``). A module Worker has no
``document`` or ``window`` at all, so running it there shows that the module
never reaches for the page. The Worker is started from ``/healthz``, a page of
the server's own origin with no chat on it, and reports every event back. (The
server's Content-Security-Policy allows no Worker from a Blob; the browser
context of this harness page ignores it, which the chat page's never do.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chatbus.core.hub import Hub
from chatbus.core.message import Identity

from .conftest import WAIT_MS, ChatServer, wait_until

#: The Worker: records the frames it sends, drives a Connection and posts every event to the page.
WORKER = """
import { Connection, decodeFrame } from "%(origin)s/static/js/protocol.js";

const sent = [];
const NativeWebSocket = WebSocket;
globalThis.WebSocket = class extends NativeWebSocket {
  send(text) {
    sent.push(decodeFrame(text));
    super.send(text);
  }
};
const connection = new Connection("%(socket)s", %(options)s);
const report = (event, detail) =>
  postMessage({ event, detail, lastSeenId: connection.lastSeenId, hasPage: typeof document !== "undefined" || typeof window !== "undefined" });
const lastAuth = () => sent.filter((frame) => frame.type === "auth").at(-1).data;

connection.on("status", (kind) => report("status", kind));
connection.on("frame", (type, data) => report("frame", { type, id: data.id, text: data.text }));
connection.on("joined", (data, info) =>
  report("joined", {
    userId: data.userId,
    resumed: info.resumed,
    resumedFrom: info.resumedFrom,
    missed: info.missed && info.missed.map((frame) => frame.data.text),
    reset: info.reset,
    epoch: connection.epoch,
    auth: lastAuth(),
  }),
);
connection.start({ userId: "robot", role: "tester", token: "" });
"""

#: Starts the Worker from a Blob (no file on the server) and collects its reports in ``window.reports``.
START = """
source => {
  window.reports = [];
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module" });
  worker.onmessage = (event) => window.reports.push(event.data);
  worker.onerror = (event) => window.reports.push({ event: "error", detail: String(event.message) });
  window.worker = worker;
}
"""


@pytest.fixture
def connection_options() -> str:
    """The options the Worker's Connection is made with (JavaScript)."""
    return "{ pingEveryMs: 300 }"


@pytest.fixture
def worker_page(browser: Any, server: ChatServer, connection_options: str) -> Iterator[Any]:
    """A page on the server's origin (``/healthz``: no chat page) running the protocol module in a Worker."""
    context = browser.new_context(bypass_csp=True)
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        page.goto(f"{server.url}healthz")
        source = WORKER % {
            "origin": server.url.rstrip("/"),
            "socket": f"ws://127.0.0.1:{server.port}/",
            "options": connection_options,
        }
        page.evaluate(START, source)
        yield page
    finally:
        context.close()


def reports(page: Any, event: str) -> list[dict[str, Any]]:
    """What the Worker reported so far about ``event``."""
    found: list[dict[str, Any]] = page.evaluate("event => window.reports.filter((r) => r.event === event)", event)
    return found


def wait_for_report(page: Any, event: str, count: int = 1, timeout_ms: int = WAIT_MS) -> dict[str, Any]:
    """The ``count``-th report about ``event``, once it came."""
    wait_until(
        page,
        "([event, count]) => window.reports.filter((r) => r.event === event || r.event === 'error').length >= count",
        arg=[event, count],
        timeout_ms=timeout_ms,
    )
    assert reports(page, "error") == []
    return reports(page, event)[count - 1]


def wait_for_text(page: Any, text: str) -> dict[str, Any]:
    """The report of the chat frame whose text is ``text``."""
    expression = "text => window.reports.some((r) => r.event === 'frame' && r.detail.text === text)"
    wait_until(page, expression, arg=text)
    return next(r for r in reports(page, "frame") if r["detail"]["text"] == text)


def test_protocol_module_signs_in_receives_and_resumes_without_a_page(worker_page: Any, server: ChatServer) -> None:
    page = worker_page
    joined = wait_for_report(page, "joined")
    assert joined["detail"]["userId"] == "robot"
    assert joined["detail"]["resumed"] is False
    assert "lastSeenId" not in joined["detail"]["auth"]
    statuses = [r["detail"] for r in reports(page, "status")]
    assert statuses[:2] == ["connecting", "ready"]

    # A message reaches it, and it remembers the id to resume from.
    bob = Identity("bob", "tester")
    server.call(server.hub.receive(bob, "hello robot"))  # type: ignore[union-attr]
    received = wait_for_text(page, "hello robot")
    assert received["detail"]["type"] == "message"
    seen = received["detail"]["id"]
    assert received["lastSeenId"] == seen

    # Keepalive: its pings are answered.
    wait_until(page, "() => window.reports.some((r) => r.event === 'frame' && r.detail.type === 'pong')")

    # The server goes away; a message arrives meanwhile; the connection resumes after the last id it saw.
    server.stop()
    wait_until(page, "() => window.reports.some((r) => r.event === 'status' && r.detail === 'waiting')")

    async def meanwhile(hub: Hub) -> None:
        await hub.receive(bob, "sent while you were away")

    server.offline(meanwhile)
    server.start()
    resumed = wait_for_report(page, "joined", 2, timeout_ms=20_000)
    assert resumed["detail"]["resumed"] is True
    assert resumed["detail"]["resumedFrom"] == seen
    assert resumed["detail"]["auth"]["lastSeenId"] == seen
    assert resumed["detail"]["missed"] == ["sent while you were away"]
    assert resumed["lastSeenId"] > seen

    assert all(report["hasPage"] is False for report in page.evaluate("window.reports"))


def replace_database(server: ChatServer) -> None:
    """Stop the server and throw its database away, as an operator starting over would."""
    server.stop()
    for suffix in ("", "-wal", "-shm"):
        server.db.with_name(server.db.name + suffix).unlink(missing_ok=True)


@pytest.mark.parametrize("connection_options", ['{ pingEveryMs: 300, rooms: ["general"] }'])
def test_protocol_module_resumes_within_one_log_and_starts_over_in_another(
    worker_page: Any, server: ChatServer
) -> None:
    page = worker_page
    joined = wait_for_report(page, "joined")
    epoch = joined["detail"]["epoch"]
    assert isinstance(epoch, str) and epoch
    # A first sign-in names the rooms it shows, and neither a last id nor an epoch.
    assert joined["detail"]["auth"] == {"userId": "robot", "role": "tester", "rooms": ["general"]}
    bob = Identity("bob", "tester")
    for text in ("old log 1", "old log 2"):
        server.call(server.hub.receive(bob, text))  # type: ignore[union-attr]
    seen = wait_for_text(page, "old log 2")["lastSeenId"]

    # A restart on the same database: the same log, resumed after the last id.
    server.restart()
    same = wait_for_report(page, "joined", 2, timeout_ms=20_000)["detail"]
    assert same["auth"] == {
        "userId": "robot",
        "role": "tester",
        "lastSeenId": seen,
        "epoch": epoch,
        "rooms": ["general"],
    }
    assert same["reset"] is False and same["epoch"] == epoch
    assert same["missed"] == []

    # A new database, with more messages than the old one had: ids that look like a gap are not one.
    replace_database(server)

    async def new_log(hub: Hub) -> None:
        for n in range(1, 5):
            await hub.receive(bob, f"new log {n}")

    server.offline(new_log)
    server.start()
    other = wait_for_report(page, "joined", 3, timeout_ms=20_000)
    assert other["detail"]["auth"]["lastSeenId"] == seen
    assert other["detail"]["auth"]["epoch"] == epoch
    assert other["detail"]["reset"] is True
    assert other["detail"]["epoch"] not in (None, epoch)
    # It counts again from the new log: its newest message, not the old log's last id.
    assert other["detail"]["missed"] == ["new log 1", "new log 2", "new log 3", "new log 4"]
    assert other["lastSeenId"] == 4
