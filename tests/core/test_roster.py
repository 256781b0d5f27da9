"""The roster on its own: people's connections counted, agents hired over a bare store."""

from __future__ import annotations

import pytest

from chatbus import AgentStatus, Event, Identity, InvalidMessage, MemoryStore, Presence, SQLiteStore
from chatbus.core.roster import Roster


async def test_the_first_connection_puts_a_person_online_and_the_last_takes_them_off() -> None:
    events: list[Event] = []
    roster = Roster(MemoryStore(), events.append)
    ann = Identity("ann", "developer")
    assert roster.arrive(ann) is True
    assert roster.arrive(ann) is False
    assert roster.leave(ann) is False
    assert roster.is_online("ann")
    assert roster.leave(ann) is True
    assert not roster.is_online("ann")
    assert events == [Presence("ann", "developer", "human", "online"), Presence("ann", "developer", "human", "offline")]


async def test_members_are_people_then_agents_and_cached_until_something_changes() -> None:
    roster = Roster(MemoryStore())
    await roster.hire("alice", "developer")
    roster.arrive(Identity("ann"))
    first = roster.members()
    assert [m.user_id for m in first] == ["ann", "alice"]
    assert roster.members() is first
    version = roster.version
    await roster.set_status("alice", "working", "add a test", 40)
    assert roster.version > version
    alice = roster.members()[1]
    assert (alice.status, alice.current_task, alice.progress) == ("working", "add a test", 40)


async def test_hiring_needs_only_a_store_and_survives_a_reopen(tmp_path: object) -> None:
    path = f"{tmp_path}/chat.db"
    store = SQLiteStore(path)
    await store.open()
    roster = Roster(store)  # nobody listens: the command line hires this way
    await roster.hire("alice", "developer", ["worker", "{task}"])
    await store.close()

    store = SQLiteStore(path)
    await store.open()
    again = Roster(store)
    await again.load()
    assert again.agents["alice"].command == ("worker", "{task}")
    assert await again.fire("alice") is True
    assert await again.fire("alice") is False
    await store.close()


async def test_status_changes_are_announced_and_checked() -> None:
    events: list[Event] = []
    roster = Roster(MemoryStore(), events.append)
    await roster.hire("alice", "developer")
    await roster.set_status("alice", "stuck", "deploy", 150)
    assert events[-1] == AgentStatus("alice", "stuck", "deploy", 100)
    with pytest.raises(InvalidMessage, match="no agent called 'bob'"):
        await roster.set_status("bob", "idle")
    with pytest.raises(InvalidMessage, match="one of idle, working, stuck, completed"):
        await roster.set_status("alice", "asleep")  # type: ignore[arg-type]


async def test_an_agent_cannot_take_the_name_of_a_person_online_or_the_system() -> None:
    roster = Roster(MemoryStore())
    roster.arrive(Identity("ann"))
    with pytest.raises(InvalidMessage, match="person who is online"):
        await roster.hire("ann", "developer")
    with pytest.raises(InvalidMessage, match="not 'system'"):
        await roster.hire("system", "developer")
