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
const connection = new Connection("%(socket)s", { pingEveryMs: 300 });
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
def worker_page(browser: Any, server: ChatServer) -> Iterator[Any]:
    """A page on the server's origin (``/healthz``: no chat page) running the protocol module in a Worker."""
    context = browser.new_context(bypass_csp=True)
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        page.goto(f"{server.url}healthz")
        source = WORKER % {"origin": server.url.rstrip("/"), "socket": f"ws://127.0.0.1:{server.port}/"}
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
