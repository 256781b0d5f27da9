"""/metrics and /readyz on the chat port, read the way Prometheus and a load balancer read them."""

from __future__ import annotations

import asyncio
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chatbus import MemoryStore, Settings, SQLiteStore, StoreError

from .helpers import Client, http_get, running, wait_until

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of a Prometheus exposition, parsed by prometheus_client's own parser."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(port: int) -> Samples:
    status, headers, body = await http_get(port, "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=")
    return samples(body.decode())


async def test_metrics_count_what_happens_in_the_chat() -> None:
    settings = Settings.isolated(db=":memory:", ratelimit={"burst": 1, "per_second": 0.001})
    async with running(settings=settings) as server:
        ann, bob = await server.client("ann"), await server.client("bob")
        await ann.say("hello")
        await bob.expect("message")
        await ann.expect("message")  # the echo
        await ann.say("too fast")
        assert (await ann.error())["code"] == "RATE_LIMITED"
        await ann.send_raw("{not json")
        assert (await ann.error())["code"] == "INVALID_JSON"
        found = await scrape(server.port)
        assert value(found, "chatbus_connections", transport="websocket") == 2
        assert value(found, "chatbus_members_online", kind="human") == 2
        received = {"transport": "websocket", "kind": "human"}
        assert value(found, "chatbus_messages_received_total", **received, type="message") == 1
        assert value(found, "chatbus_rate_limited_total", transport="websocket") == 1
        assert value(found, "chatbus_errors_total", code="RATE_LIMITED") == 1
        assert value(found, "chatbus_errors_total", code="INVALID_JSON") == 1
        assert value(found, "chatbus_messages_sent_total", transport="websocket", type="message") == 1
        # "hello" reached both people; presence frames count as deliveries too.
        assert value(found, "chatbus_deliveries_total", transport="websocket") >= 2
        assert value(found, "chatbus_delivery_latency_seconds_count", transport="websocket") == 1
        assert value(found, "chatbus_delivery_latency_seconds_bucket", transport="websocket", le="+Inf") == 1
        assert value(found, "chatbus_messages_sent_total", transport="websocket", type="presence") >= 1
        # Changes to messages are counted in by their type too.
        hello = next(f["data"]["id"] for f in ann.received if f["type"] == "message")
        await ann.send("edit", {"id": hello, "text": "hello again"})
        await ann.send("react", {"id": hello, "emoji": "👍", "on": True})
        await ann.send("delete", {"id": hello})
        await ann.expect("message_deleted", skip=frozenset({"message_edited", "reaction", "presence"}))
        found = await scrape(server.port)
        for kind in ("edit", "reaction", "delete"):
            assert value(found, "chatbus_messages_received_total", **received, type=kind) == 1
        await ann.close()
        await bob.close()
        await wait_until(lambda: not server.transport.connected_users())
        found = await scrape(server.port)
        assert value(found, "chatbus_connections_closed_total", transport="websocket", code="1000") == 2
        assert value(found, "chatbus_connections", transport="websocket") == 0
        assert value(found, "chatbus_members_online", kind="human") == 0


async def test_store_latency_is_measured(tmp_path: Path) -> None:
    async with running(store=SQLiteStore(tmp_path / "chat.db")) as server:
        await server.hub.send("stored on disk")
        found = await scrape(server.port)
    assert value(found, "chatbus_store_operation_seconds_count", operation="append") >= 1
    assert value(found, "chatbus_messages_received_total", transport="hub", kind="system", type="message") == 1


async def fetch(url: str) -> tuple[int, str]:
    """What a plain HTTP client gets (from a thread: urllib blocks)."""

    def get() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    return await asyncio.to_thread(get)


async def test_metrics_on_a_port_of_their_own_and_turned_off_on_the_chat_port() -> None:
    settings = Settings.isolated(db=":memory:", metrics={"port": 0, "host": "127.0.0.1"})
    async with running(settings=settings) as server:
        await server.hub.hire("alice", "developer")
        await server.hub.set_agent_status("alice", "working", "add a test", 10)
        port = server.hub.metrics.port
        assert port is not None and port != server.port
        status, body = await fetch(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        found = samples(body)
        assert value(found, "chatbus_agents", status="working") == 1
        assert value(found, "chatbus_up") == 1
    assert server.hub.metrics.port is None  # the port of its own closes with the hub

    # A public chat port can keep them to the port of their own.
    settings = Settings.isolated(db=":memory:", metrics={"port": 0, "on_chat_port": False})
    async with running(settings=settings) as server:
        status, _, _ = await http_get(server.port, "/metrics")
        assert status == 404
        port = server.hub.metrics.port
        assert (await fetch(f"http://127.0.0.1:{port}/metrics"))[0] == 200

    async with running(settings=Settings.isolated(db=":memory:", metrics={"enabled": False})) as server:
        status, _, _ = await http_get(server.port, "/metrics")
    assert status == 404


class SilentStore(MemoryStore):
    """A store that stops answering (a disk gone read-only, a lost volume)."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False

    async def ping(self) -> None:
        if self.broken:
            raise StoreError("the database file is gone")


async def test_readyz_says_ready_and_why_not() -> None:
    store = SilentStore()
    async with running(store=store) as server:
        assert await fetch(f"http://127.0.0.1:{server.port}/readyz") == (200, "ready\n")
        store.broken = True
        status, body = await fetch(f"http://127.0.0.1:{server.port}/readyz")
        assert status == 503
        assert body == "not ready: the message store does not answer: the database file is gone\n"
        assert (await http_get(server.port, "/healthz"))[0] == 200  # alive, just not ready


@pytest.mark.parametrize("path", ["/readyz", "/metrics"])
async def test_head_requests_answer_without_a_body(path: str) -> None:
    async with running() as server:
        status, _, body = await http_get(server.port, path, method="HEAD")
    assert (status, body) == (200, b"")


async def test_readyz_of_the_sqlite_store_fails_while_it_cannot_write(tmp_path: Path) -> None:
    """The real store, not a stand-in: another program holding the database's write
    lock (every message would fail) and the file removed under a running chatbus
    (every message would be lost) both take the node out of rotation."""
    path = tmp_path / "chat.db"
    async with running(store=SQLiteStore(path)) as server:
        url = f"http://127.0.0.1:{server.port}/readyz"
        assert await fetch(url) == (200, "ready\n")
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # e.g. a maintenance script in the middle of a write
        try:
            status, body = await fetch(url)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert status == 503
        assert (
            body
            == f"not ready: the message store does not answer: cannot write the database {path} now: database is locked\n"
        )
        assert await fetch(url) == (200, "ready\n")  # ready again once the lock is let go
        path.unlink()
        status, body = await fetch(url)
        assert status == 503
        assert f"the database file {path} was removed or replaced while chatbus ran" in body
        assert (await http_get(server.port, "/healthz"))[0] == 200


async def test_connections_turned_away_count_with_their_close_code() -> None:
    """A full chat's 1013 shows in the close codes, where an operator looks for it."""
    async with running(max_connections=1) as server:
        ann = await server.client("ann")
        turned_away = await Client.open(server.url)
        assert (await turned_away.closed())[0] == 1013
        registry = server.hub.metrics.registry
        labels = {"transport": "websocket", "code": "1013"}
        await wait_until(lambda: registry.get_sample_value("chatbus_connections_closed_total", labels) == 1)
        await ann.close()
