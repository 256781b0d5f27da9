"""The embedded engine: one node over the SQLite or memory store, whose behaviour it keeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatbus.core.engine import LISTENING, EmbeddedEngine, Gap, Lease, Missed, Reset
from chatbus.core.engine.duty import Duty
from chatbus.core.message import Message, utcnow
from chatbus.core.store import MemoryStore, SQLiteStore


def note(text: str, room: str = "general") -> Message:
    return Message(id=0, text=text, sender="alice", timestamp=utcnow(), room=room)


@pytest.fixture(params=["memory", "sqlite"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EmbeddedEngine]:
    chosen = EmbeddedEngine(MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "chat.db"))
    await chosen.open()
    yield chosen
    await chosen.close()


async def test_ids_come_from_the_store_and_the_log_is_the_stores(engine: EmbeddedEngine) -> None:
    stored = [await engine.append(note(f"m{i}", room="ops" if i % 2 else "general")) for i in range(6)]
    assert [m.id for m in stored] == [1, 2, 3, 4, 5, 6]
    assert await engine.last_id() == engine.store.last_id == 6
    assert await engine.since(0, 100) == Missed(await engine.store.since(0, 100))
    assert (await engine.since(0, 100)).reset is False
    assert await engine.before(None, 2, "ops") == await engine.store.before(None, 2, "ops")
    assert engine.epoch == engine.store.epoch


async def test_the_epoch_and_ids_survive_a_restart(tmp_path: Path) -> None:
    first = EmbeddedEngine(SQLiteStore(tmp_path / "chat.db"))
    await first.open()
    await first.append(note("hi"))
    epoch = first.epoch
    await first.close()
    again = EmbeddedEngine(SQLiteStore(tmp_path / "chat.db"))
    await again.open()
    try:
        assert again.epoch == epoch
        assert (await again.append(note("again"))).id == 2
        got = await asyncio.wait_for(_take(again, 0, 2), 5)
        assert [m.id for m in got if isinstance(m, Message)] == [1, 2]
    finally:
        await again.close()


async def _take(engine: EmbeddedEngine, after_id: int, count: int) -> list[Message | Gap | Reset]:
    out: list[Message | Gap | Reset] = []
    async for item in engine.subscribe(after_id):
        out.append(item)
        if len(out) == count:
            break
    return out


async def test_subscribers_get_what_was_stored_before_and_after_once_in_id_order(engine: EmbeddedEngine) -> None:
    for i in range(3):
        await engine.append(note(f"early{i}"))
    got = asyncio.create_task(_take(engine, 1, 22))
    await asyncio.sleep(0)
    await asyncio.gather(*(engine.append(note(f"m{i}")) for i in range(20)))
    items = await asyncio.wait_for(got, 5)
    assert [m.id for m in items if isinstance(m, Message)] == list(range(2, 24))


async def test_presence_and_leases_of_one_node(engine: EmbeddedEngine) -> None:
    await engine.set_present("here", "alice", 30)
    await engine.set_present("here", "bob", 30)
    await engine.set_absent("here", "bob")
    assert await engine.present() == {"alice": {"here"}}
    lease = await engine.acquire("telegram-poller", "poller", 30)
    assert lease is not None
    assert await engine.acquire("telegram-poller", "someone-else", 30) is None
    assert await engine.acquire("telegram-poller", "poller", 30) == lease
    assert await engine.renew(lease) is True
    await engine.release(lease)
    assert await engine.renew(lease) is False
    again = await engine.acquire("telegram-poller", "someone-else", 30)
    assert again is not None and again.token > lease.token


async def test_closing_ends_subscriptions(engine: EmbeddedEngine) -> None:
    got = asyncio.create_task(_take(engine, 0, 5))
    await asyncio.sleep(0)
    await engine.append(note("one"))
    await engine.close()
    assert [m.id for m in await asyncio.wait_for(got, 5) if isinstance(m, Message)] == [1]
    await engine.open()


async def test_a_duty_on_one_node_runs_its_work_and_lets_the_lease_go(engine: EmbeddedEngine) -> None:
    ran: list[int] = []

    async def work(lease: Lease) -> None:
        ran.append(lease.token)

    await asyncio.wait_for(Duty(engine, "cleanup", "here", 30, work).run(), 5)
    assert len(ran) == 1
    assert await engine.acquire("cleanup", "another", 30) is not None


async def test_one_node_has_no_events_from_others(engine: EmbeddedEngine) -> None:
    async def listen() -> list[dict[str, object]]:
        return [event async for event in engine.events("here")]

    listening = asyncio.create_task(listen())
    await engine.broadcast("here", {"type": "typing"})
    await asyncio.sleep(0.05)
    assert not listening.done()
    await engine.close()
    assert await asyncio.wait_for(listening, 5) == [LISTENING]  # listening, and nothing else came
    await engine.open()


async def test_rate_limits_of_one_node(engine: EmbeddedEngine) -> None:
    waits = [await engine.take("alice", burst=2, per_second=0.5, per_hour=None) for _ in range(3)]
    assert waits[:2] == [0.0, 0.0] and 0.0 < waits[2] <= 2.0
    assert await engine.take("bob", burst=9, per_second=9, per_hour=1) == 0.0
    assert await engine.take("bob", burst=9, per_second=9, per_hour=1) > 3590  # the hourly cap
