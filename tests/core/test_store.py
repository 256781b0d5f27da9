"""Every store behaves the same (memory, SQLite, and the Redis engine's, against a real
redis-server); the SQLite one survives restarts and batches commits."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis import asyncio as aioredis

from chatbus import Agent, Message, StoreError
from chatbus.core.engine.redis import RedisEngine
from chatbus.core.engine.redis_store import RedisStore
from chatbus.core.message import utcnow
from chatbus.core.store import MIGRATIONS, MemoryStore, SQLiteStore, Store

from .engine.redis_server import RedisServer


def make_message(store: Store, text: str, room: str = "general", **fields: object) -> Message:
    return Message(id=store.allocate_id(), text=text, sender="alice", timestamp=utcnow(), room=room, **fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Started only for the Redis store's tests: skipped without redis-server, except in CI."""
    with RedisServer(Path(tmp_path_factory.mktemp("redis"))) as server:
        yield server


async def _redis_store(server: RedisServer) -> Store:
    async with aioredis.Redis.from_url(server.url) as admin:
        await admin.flushall()
    return RedisStore(RedisEngine(server.url))


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "redis":
        chosen = await _redis_store(request.getfixturevalue("redis_server"))
    else:
        chosen = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "chat.db")
    await chosen.open()
    yield chosen
    await chosen.close()


async def test_messages_round_trip_with_every_field(store: Store) -> None:
    original = make_message(
        store,
        "hello @bob",
        room="ops",
        kind="agent",
        sender_role="developer",
        mentions=("bob",),
        command="status",
        command_args=("bob", "two words"),
        reply_to=9,
        transport="websocket",
        client_id="c-1",
    )
    await store.append(original)
    assert await store.get(original.id) == original
    assert await store.get(999) is None


async def test_since_and_before_page_through_a_room(store: Store) -> None:
    for i in range(10):
        await store.append(make_message(store, f"g{i}", room="general"))
        await store.append(make_message(store, f"o{i}", room="ops"))
    assert [m.text for m in await store.since(0, 3, "general")] == ["g0", "g1", "g2"]
    assert [m.text for m in await store.since(4, 3)] == ["g2", "o2", "g3"]
    newest, more = await store.before(None, 4, "general")
    assert [m.text for m in newest] == ["g6", "g7", "g8", "g9"]
    assert more is True
    older, more = await store.before(newest[0].id, 10, "general")
    assert [m.text for m in older] == [f"g{i}" for i in range(6)]
    assert more is False
    everything, more = await store.before(None, 100, None)
    assert len(everything) == 20 and more is False


async def test_roster_external_ids_and_state(store: Store) -> None:
    await store.save_agent(Agent("alice", "developer", ("worker", "{task}")))
    await store.save_agent(Agent("bob", "tester"))
    assert [a.name for a in await store.list_agents()] == ["alice", "bob"]
    updated = await store.update_agent("alice", status="working", current_task="fix it", progress=40)
    assert updated == Agent("alice", "developer", ("worker", "{task}"), "working", "fix it", 40)
    assert await store.get_agent("alice") == updated
    assert await store.update_agent("nobody", status="idle") is None
    assert await store.remove_agent("bob") is True
    assert await store.remove_agent("bob") is False

    await store.map_external("telegram", 5, "-100:77")
    await store.map_external("telegram", 5, "-100:78")
    assert await store.hub_id_for("telegram", "-100:78") == 5
    assert await store.hub_id_for("telegram", "nope") is None
    assert await store.external_ids_for("telegram", 5) == ["-100:77", "-100:78"]

    await store.set_state("telegram.offset", "42")
    assert await store.get_state("telegram.offset") == "42"
    await store.set_state("telegram.offset", None)
    assert await store.get_state("telegram.offset") is None


async def test_sqlite_survives_a_restart_and_continues_the_ids(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    first = SQLiteStore(path)
    await first.open()
    for i in range(3):
        await first.append(make_message(first, f"m{i}"))
    await first.save_agent(Agent("alice", "developer"))
    await first.close()

    second = SQLiteStore(path)
    await second.open()
    assert second.last_id == 3
    assert [m.text for m in await second.since(0, 10)] == ["m0", "m1", "m2"]
    assert make_message(second, "next").id == 4
    assert (await second.get_agent("alice")) == Agent("alice", "developer")
    await second.close()

    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


async def test_concurrent_appends_are_committed_in_batches(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "chat.db")
    await store.open()
    commits = 0
    original = store._write_messages

    def counting(rows: list[tuple[object, ...]], links: list[tuple[int, int, str]]) -> None:
        nonlocal commits
        commits += 1
        original(rows, links)

    store._write_messages = counting  # type: ignore[method-assign]
    await asyncio.gather(*(store.append(make_message(store, f"m{i}")) for i in range(500)))
    assert len(await store.since(0, 1000)) == 500
    assert commits < 50  # many appends share one commit
    await store.close()


async def test_a_failed_commit_is_reported_to_the_sender_and_loses_nothing_already_stored(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "chat.db")
    await store.open()
    await store.append(make_message(store, "kept"))
    duplicate = Message(id=1, text="same id again", sender="alice", timestamp=utcnow())
    with pytest.raises(StoreError) as failure:
        await store.append(duplicate)
    assert "could not be stored" in str(failure.value)
    assert [m.text for m in await store.since(0, 10)] == ["kept"]
    await store.append(make_message(store, "still works"))
    assert [m.text for m in await store.since(0, 10)] == ["kept", "still works"]
    await store.close()


async def test_an_unusable_database_path_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store = SQLiteStore(blocker / "chat.db")
    with pytest.raises(StoreError) as failure:
        await store.open()
    assert str(blocker / "chat.db") in str(failure.value)
    assert "--db" in str(failure.value)


async def test_a_database_from_a_newer_chatbus_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version={len(MIGRATIONS) + 5}")
    store = SQLiteStore(path)
    with pytest.raises(StoreError) as failure:
        await store.open()
    assert "newer chatbus" in str(failure.value)


async def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    path.write_bytes(b"this is not sqlite" * 100)
    store = SQLiteStore(path)
    with pytest.raises(StoreError) as failure:
        await store.open()
    assert "cannot open the database" in str(failure.value)


async def test_one_message_that_cannot_be_stored_does_not_fail_the_others_in_its_commit(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "chat.db")
    await store.open()
    try:
        good = [make_message(store, f"fine {n}") for n in range(2)]
        bad = make_message(store, "too big", reply_to=2**63)
        good += [make_message(store, f"fine {n}") for n in range(2, 5)]
        # Appended in one go, so they would share one commit.
        appended = [store.append(m) for m in [*good[:2], bad, *good[2:]]]
        results = await asyncio.gather(*appended, return_exceptions=True)
        assert [isinstance(r, StoreError) for r in results] == [False, False, True, False, False, False]
        assert [m.text for m in await store.since(0, 10)] == [m.text for m in good]
    finally:
        await store.close()


async def test_a_database_keeps_its_epoch_and_a_new_one_has_another(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path / "chat.db")
    await first.open()
    epoch = first.epoch
    await first.close()
    again = SQLiteStore(tmp_path / "chat.db")
    await again.open()
    assert again.epoch == epoch
    await again.close()
    other = SQLiteStore(tmp_path / "other.db")
    await other.open()
    assert other.epoch != epoch and len(other.epoch) == 32
    await other.close()


async def test_rooms_are_listed_most_recently_active_first(store: Store) -> None:
    for room in ("general", "ops", "dev", "ops"):
        await store.append(make_message(store, f"in {room}", room=room))
    assert await store.rooms() == ["ops", "dev", "general"]


async def test_closing_while_another_program_holds_the_write_lock_still_closes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """chatbus stopping (SIGTERM) while a script writes the database: the optional
    optimisation on close is skipped with a warning, instead of a traceback and a
    failed exit, and the database is closed."""
    path = tmp_path / "chat.db"
    store = SQLiteStore(path)
    await store.open()
    for i in range(50):
        await store.append(make_message(store, f"m{i}"))
    await store.since(0, 10)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        await store.close()
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert "skipped optimizing it on close: database is locked" in caplog.text
    reopened = SQLiteStore(path)
    await reopened.open()
    assert [m.text for m in await reopened.since(0, 2)] == ["m0", "m1"]
    await reopened.close()


async def test_the_rooms_are_read_from_the_database_once_and_then_kept(tmp_path: Path) -> None:
    """Every sign-in lists the rooms; scanning every message for it took 0.1 s at a million messages."""
    first = SQLiteStore(tmp_path / "chat.db")
    await first.open()
    for room in ("general", "ops", "dev"):
        await first.append(make_message(first, f"in {room}", room=room))
    await first.close()
    store = SQLiteStore(tmp_path / "chat.db")
    await store.open()
    queries: list[str] = []
    query = store._query

    def counted(sql: str, params: object) -> list[tuple[object, ...]]:
        queries.append(sql)
        return query(sql, params)  # type: ignore[arg-type]

    store._query = counted  # type: ignore[method-assign]
    assert await store.rooms() == ["dev", "ops", "general"]
    await store.append(make_message(store, "back in ops", room="ops"))
    await store.append(make_message(store, "a new room", room="design"))
    assert await store.rooms() == ["design", "ops", "dev", "general"]
    assert await store.rooms() == ["design", "ops", "dev", "general"]
    assert len(queries) == 1
    await store.close()
