"""Edits, deletions and reactions: who may make them, what is kept, who hears of them."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from chatbus import (
    Forbidden,
    Hub,
    Identity,
    InvalidMessage,
    Message,
    MessageDeleted,
    MessageEdited,
    NotFound,
    Reaction,
    Settings,
    SQLiteStore,
    hookimpl,
)
from chatbus.core.store import MIGRATIONS
from chatbus.testing import FakeClock, MemoryTransport, make_hub

ANN = Identity("ann", "developer")
BOB = Identity("bob", "developer")
MANAGER = Identity("meg", "manager")


class Listener:
    def __init__(self) -> None:
        self.heard: list[tuple[str, Any]] = []

    @hookimpl
    def on_edit(self, message: Message, previous: Message) -> None:
        self.heard.append(("edit", (previous.text, message.text)))

    @hookimpl
    def on_delete(self, message: Message) -> None:
        self.heard.append(("delete", message.id))

    @hookimpl
    async def on_reaction(self, message: Message, emoji: str, user_id: str, on: bool) -> None:
        self.heard.append(("reaction", (emoji, user_id, on, message.reaction_counts())))


async def test_the_sender_edits_and_everyone_hears_the_new_text_after_the_message() -> None:
    listener = Listener()
    hub = make_hub([listener])
    async with hub:
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        sent = await hub.receive(ANN, "deploy to stagin @bob", transport="memory")
        edited = await hub.edit(ANN, sent.id, "deploy to staging @carol")
        assert (edited.id, edited.text, edited.mentions) == (sent.id, "deploy to staging @carol", ("carol",))
        assert edited.edited_by == "ann" and edited.edited_at is not None
        change = await memory.wait_for_change(lambda c: isinstance(c, MessageEdited))
        assert change == MessageEdited(edited)
        assert [m.id for m in memory.delivered] == [sent.id]  # the message itself came first
        assert await hub.store.get(sent.id) == edited
        assert await hub.store.versions(sent.id) == ["deploy to stagin @bob"]
        await hub.settle()
    assert listener.heard == [("edit", ("deploy to stagin @bob", "deploy to staging @carol"))]


async def test_only_the_sender_or_a_manager_may_change_a_message() -> None:
    hub = make_hub()
    async with hub:
        sent = await hub.receive(ANN, "my words", transport="memory")
        with pytest.raises(Forbidden, match="Only ann \\(or a manager\\) may edit"):
            await hub.edit(BOB, sent.id, "not my words")
        with pytest.raises(Forbidden, match="may delete"):
            await hub.delete(BOB, sent.id)
        assert (await hub.edit(MANAGER, sent.id, "moderated")).edited_by == "meg"
        assert (await hub.store.get(sent.id)).text == "moderated"  # type: ignore[union-attr]


async def test_a_deleted_message_is_a_tombstone_that_keeps_its_place() -> None:
    listener = Listener()
    hub = make_hub([listener])
    async with hub:
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        first = await hub.receive(ANN, "oops, a password", transport="memory")
        second = await hub.receive(BOB, "after it", transport="memory")
        gone = await hub.delete(ANN, first.id)
        assert (gone.text, gone.deleted, gone.deleted_by) == ("", True, "ann")
        assert [(m.id, m.text, m.deleted) for m in await hub.since(0, 10)] == [
            (first.id, "", True),
            (second.id, "after it", False),
        ]
        assert await hub.store.versions(first.id) == ["oops, a password"]  # kept for the record, not shown
        await memory.wait_for_change(lambda c: isinstance(c, MessageDeleted) and c.message.id == first.id)
        for action in (hub.edit(ANN, first.id, "again"), hub.delete(ANN, first.id), hub.react(BOB, first.id, "👍")):
            with pytest.raises(NotFound, match=f"There is no message {first.id}"):
                await action
        await hub.settle()
    assert ("delete", first.id) in listener.heard


async def test_reactions_are_added_and_removed_with_counts() -> None:
    listener = Listener()
    hub = make_hub([listener])
    async with hub:
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        sent = await hub.receive(ANN, "shipped!", transport="memory")
        await hub.react(BOB, sent.id, "🎉")
        await hub.react(MANAGER, sent.id, "🎉")
        await hub.react(BOB, sent.id, "🎉")  # again: still one from bob
        last = await hub.react(ANN, sent.id, "+1")
        assert last.message.reactions == (("🎉", ("bob", "meg")), ("+1", ("ann",)))
        off = await hub.react(BOB, sent.id, "🎉", on=False)
        assert off.message.reaction_counts() == {"🎉": 1, "+1": 1}
        assert (await hub.store.get(sent.id)).reactions == (("🎉", ("meg",)), ("+1", ("ann",)))  # type: ignore[union-attr]
        await memory.wait_for_change(lambda c: isinstance(c, Reaction) and not c.on)
        for bad in ("", "two words", "x" * 17, "\n"):
            with pytest.raises(InvalidMessage, match="emoji must be"):
                await hub.react(BOB, sent.id, bad)
        with pytest.raises(NotFound):
            await hub.react(BOB, 999, "👍")
        await hub.settle()
    assert ("reaction", ("🎉", "bob", False, {"🎉": 1, "+1": 1})) in listener.heard


async def test_an_answer_being_written_grows_and_ends() -> None:
    hub = make_hub()
    async with hub:
        await hub.hire("alice", "developer")
        alice = Identity("alice", "developer", "agent")
        answer = await hub.send("The plan", sender="alice", streaming=True)
        assert answer.streaming
        grown = await hub.edit(alice, answer.id, "The plan: first the tests", streaming=True)
        done = await hub.edit(alice, answer.id, "The plan: first the tests, then the code.")
        assert (grown.streaming, done.streaming) == (True, False)
        assert await hub.store.versions(answer.id) == []  # partial texts of an answer are not history
        with pytest.raises(InvalidMessage, match="empty"):
            await hub.edit(alice, answer.id, "   ")


async def test_changes_survive_a_restart_on_sqlite(tmp_path: Path) -> None:
    def hub() -> Hub:
        return Hub(
            Settings.isolated(db=str(tmp_path / "chat.db")),
            transports=[MemoryTransport()],
            load_entrypoints=False,
            clock=FakeClock(),
        )

    first = hub()
    async with first:
        sent = await first.receive(ANN, "first draft", transport="memory")
        other = await first.receive(BOB, "to be deleted", transport="memory")
        await first.edit(ANN, sent.id, "final text")
        await first.react(BOB, sent.id, "👍")
        await first.delete(BOB, other.id)
    again = hub()
    async with again:
        kept, gone = await again.since(0, 10)
        assert (kept.text, kept.edited_by, kept.reactions) == ("final text", "ann", (("👍", ("bob",)),))
        assert (gone.text, gone.deleted) == ("", True)
        assert await again.store.versions(sent.id) == ["first draft"]


async def test_a_database_of_the_first_schema_is_migrated_with_its_messages(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:
        raw.executescript(MIGRATIONS[0])
        raw.execute(
            "INSERT INTO messages VALUES (1, 'general', 'ann', 'user', 'human', 'from before', '[]', NULL, '[]',"
            " NULL, 'websocket', NULL, '2026-11-01T10:00:00+00:00')"
        )
        raw.execute("PRAGMA user_version=1")
    store = SQLiteStore(path)
    await store.open()
    try:
        [old] = await store.since(0, 10)
        assert (old.text, old.edited_at, old.deleted, old.reactions) == ("from before", None, False, ())
        assert await store.react(1, "👍", "bob", True) == (("👍", ("bob",)),)
    finally:
        await store.close()


async def test_changes_reach_only_transports_that_take_them() -> None:
    class Plain:
        """A transport with only the required methods: it never hears of changes."""

        name = "plain"

        def __init__(self) -> None:
            self.delivered: list[Message] = []

        async def start(self, hub: Hub) -> None: ...

        async def stop(self) -> None: ...

        async def deliver(self, message: Message) -> None:
            self.delivered.append(message)

        def is_connected(self) -> bool:
            return True

    plain, memory = Plain(), MemoryTransport()
    hub = make_hub(transports=[plain, memory], settings=Settings.isolated(db=":memory:"))
    async with hub:
        sent = await hub.receive(ANN, "hello", transport="memory")
        await hub.edit(ANN, sent.id, "hello there")
        await memory.wait_for_change(lambda c: True)
    assert [m.text for m in plain.delivered] == ["hello"]
