"""The page trusts no gap across logs: when the server's database was replaced, it shows the new one.

Message ids mean the same messages only within one log (its ``epoch``). A page
that resumes after its server came back with another database sends the last
id and the epoch it had; the server answers ``missedReset``, and the page drops
what it showed and loads the room's history afresh, instead of showing the old
log's messages with the new log's newest ones under them.
"""

from __future__ import annotations

from playwright.sync_api import expect

from chatbus.core.hub import Hub
from chatbus.core.message import Identity

from .conftest import ChatServer, Pages, message_items, send, shown_texts, wait_until


def test_page_shows_the_new_log_after_the_database_was_replaced(pages: Pages, server: ChatServer) -> None:
    alice = pages.join("alice")
    for text in ("old log 1", "old log 2"):
        send(alice, text)
        expect(message_items(alice, text)).to_have_count(1)
    epoch = server.hub.store.epoch  # type: ignore[union-attr]

    server.stop()
    for suffix in ("", "-wal", "-shm"):
        server.db.with_name(server.db.name + suffix).unlink(missing_ok=True)

    async def new_log(hub: Hub) -> None:
        bob = Identity("bob", "tester")
        for n in range(1, 5):  # more messages than the old log had: ids 3 and 4 look like "missed"
            await hub.receive(bob, f"new log {n}")

    server.offline(new_log)
    server.start()
    assert server.hub.store.epoch != epoch  # type: ignore[union-attr]

    expect(alice.locator("#connection")).to_have_attribute("data-state", "ready", timeout=20_000)
    expect(message_items(alice)).to_have_count(4)
    assert shown_texts(alice) == ["new log 1", "new log 2", "new log 3", "new log 4"]
    expect(alice.locator("#announcer")).to_contain_text("history was replaced")
    expect(alice.locator("#log-top-text")).to_have_text("This is the start of #general.")
    wait_until(alice, "() => window.chatbus.state().lastSeenId === 4")

    # The chat goes on in the new log, each message once.
    send(alice, "hello again")
    expect(message_items(alice, "hello again")).to_have_count(1)
    assert shown_texts(alice)[-2:] == ["new log 4", "hello again"]
    ids = alice.evaluate("window.chatbus.state().shown")
    assert ids == [1, 2, 3, 4, 5]
