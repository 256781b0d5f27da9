"""The agents' roster options (model, stdin, who may give work): kept by both
stores, brought to an existing database by a migration, and kept by a new hire."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatbus import Agent
from chatbus.core.roster import Roster
from chatbus.core.store import MIGRATIONS, MemoryStore, SQLiteStore, Store


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    chosen: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "chat.db")
    await chosen.open()
    yield chosen
    await chosen.close()


async def test_the_options_round_trip(store: Store) -> None:
    alice = Agent("alice", "developer", ("w", "{task}"), model="echo", stdin=True, allow=("manager", "carol"))
    await store.save_agent(alice)
    await store.save_agent(Agent("bob", "tester"))
    assert await store.get_agent("alice") == alice
    bob = await store.get_agent("bob")
    assert bob is not None and (bob.model, bob.stdin, bob.allow) == (None, False, None)
    await store.update_agent("bob", allow=())
    assert (await store.get_agent("bob")) == Agent("bob", "tester", allow=())


async def test_hiring_again_keeps_what_is_not_given(store: Store) -> None:
    roster = Roster(store)
    await roster.hire("alice", "developer", ["w", "{task}"], model="echo", stdin=True, allow=["carol"])
    again = await roster.hire("alice", "reviewer")
    assert again == Agent("alice", "reviewer", ("w", "{task}"), model="echo", stdin=True, allow=("carol",))
    changed = await roster.hire("alice", "reviewer", ["x"], model="other", stdin=False, allow=[])
    assert (changed.command, changed.model, changed.stdin, changed.allow) == (("x",), "other", False, ())
    assert await store.get_agent("alice") == changed


async def test_an_existing_database_gains_the_options(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:
        for number, script in enumerate(MIGRATIONS[:3], start=1):
            raw.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")
        raw.execute("INSERT INTO agents (name, role, command, status) VALUES ('alice', 'developer', '[\"w\"]', 'idle')")
    store = SQLiteStore(path)
    await store.open()
    try:
        assert await store.get_agent("alice") == Agent("alice", "developer", ("w",))
        await store.update_agent("alice", model="echo", stdin=True)
        assert (await store.get_agent("alice")) == Agent("alice", "developer", ("w",), model="echo", stdin=True)
    finally:
        await store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
