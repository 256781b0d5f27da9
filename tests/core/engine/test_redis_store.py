"""The Redis engine's store against a real redis-server: files kept as every store keeps them,
fenced state, history dropped by age, ids copied in only upward, and two nodes sharing it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from redis import asyncio as aioredis

from chatbus import ConfigError, Settings, StoreError
from chatbus.core.engine.redis import RedisEngine
from chatbus.core.engine.redis_store import RedisStore
from chatbus.core.message import Attachment, Message, utcnow
from chatbus.core.store import MemoryStore, SQLiteStore, Store, open_engine_store

from .redis_server import RedisServer

Nodes = Callable[..., Awaitable[RedisStore]]

PLAN = Attachment("a1" * 16, "plan.pdf", 1000, "application/pdf", uploader="alice")
PHOTO = Attachment("b2" * 16, "photo.png", 300, "image/png", 4, 3, "bob")


def note(text: str, room: str = "general", **fields: object) -> Message:
    fields.setdefault("timestamp", utcnow())
    return Message(id=0, text=text, sender="alice", room=room, **fields)  # type: ignore[arg-type]


@pytest.fixture
async def node(redis_server: RedisServer) -> AsyncIterator[Nodes]:
    """Opens stores (one per node) on the test's Redis, emptied first; all closed at the end."""
    await redis_server.emptied()
    opened: list[RedisStore] = []

    async def make(**options: object) -> RedisStore:
        store = RedisStore(RedisEngine(redis_server.url, **options))  # type: ignore[arg-type]
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "redis":
        store: Store = RedisStore(RedisEngine((await request.getfixturevalue("redis_server").emptied()).url))
    else:
        store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "chat.db")
    await store.open()
    yield store
    await store.close()


async def _stored(store: Store, message: Message) -> Message:
    message = replace(message, id=store.allocate_id())
    await store.append(message)
    return message


async def test_files_are_kept_linked_and_removed_as_every_store_does(any_store: Store) -> None:
    store = any_store
    await store.add_file(PLAN, 100.0)
    await store.add_file(replace(PLAN, name="other.pdf"), 150.0)  # the same bytes: the first is kept
    await store.add_file(PHOTO, 200.0)
    assert await store.get_file(PLAN.id) == PLAN
    assert await store.get_file("ff" * 16) is None
    assert await store.files_total() == 1300
    assert await store.orphan_files(150.0) == [PLAN]
    assert await store.orphan_files(1000.0) == [PLAN, PHOTO]
    assert await store.orphan_files(1000.0, limit=1) == [PLAN]

    carrier = await _stored(store, note("the plan", attachments=(PLAN,)))
    assert (await store.get(carrier.id)) == carrier
    assert await store.message_file_ids(carrier.id) == [PLAN.id]
    assert await store.orphan_files(1000.0) == [PHOTO]
    assert await store.remove_file(PLAN.id, unused_since=1000.0) is None  # a message carries it
    assert await store.remove_file(PLAN.id, unused_since=None) is None  # and it is not deleted

    assert await store.touch_file(PHOTO.id, 500.0) == PHOTO
    assert await store.touch_file("ff" * 16, 500.0) is None
    assert await store.orphan_files(400.0) == []
    assert await store.remove_file(PHOTO.id, unused_since=400.0) is None  # uploaded again since
    assert await store.remove_file(PHOTO.id, unused_since=600.0) == PHOTO
    assert await store.get_file(PHOTO.id) is None
    assert await store.files_total() == 1000

    deleted = replace(carrier, text="", deleted_at=utcnow(), deleted_by="alice", attachments=())
    await store.replace(deleted, carrier)
    assert (await store.get(carrier.id)) == deleted
    assert await store.message_file_ids(carrier.id) == [PLAN.id]  # still known after the deletion
    assert await store.orphan_files(1000.0) == []  # a deleted message still counts as carrying it
    assert await store.remove_file(PLAN.id, unused_since=None) == PLAN
    assert await store.message_file_ids(carrier.id) == []
    assert await store.files_total() == 0


async def test_a_message_is_copied_in_under_its_own_id_only_above_every_id_given(node: Nodes) -> None:
    store = await node()
    for text in ("one", "two", "three"):
        await store.add(note(text))
    with pytest.raises(StoreError) as refused:
        await store.append(replace(note("again"), id=2))
    assert "message 2 cannot be stored under its own id" in str(refused.value)
    assert "already has ids up to 3" in str(refused.value)
    await store.append(replace(note("copied"), id=10))
    assert store.last_id == 10
    assert (await store.add(note("next"))).id == 11  # the counter went on from the copied id
    assert [m.text for m in await store.since(0, 10)] == ["one", "two", "three", "copied", "next"]
    other = await node()
    assert other.last_id == 11 and other.epoch == store.epoch
    other.heard(12)
    assert other.last_id == 12
    with pytest.raises(StoreError, match="message 15 cannot be stored"):
        await store.append_many([(replace(note("a"), id=20), None), (replace(note("b"), id=15), None)])
    assert [m.id for m in await store.since(11, 10)] == [20]


async def test_rooms_are_listed_by_their_latest_message_on_any_node(node: Nodes) -> None:
    a, b = await node(), await node()
    await a.add(note("hi", room="general"))
    await b.add(note("deploy?", room="ops"))
    await a.add(note("later", room="dev"))
    await b.add(note("back", room="general"))
    assert await a.rooms() == ["general", "dev", "ops"]
    assert await b.rooms() == ["general", "dev", "ops"]


async def test_a_fenced_write_is_made_only_by_the_current_holder_of_the_duty(node: Nodes) -> None:
    a, b = await node(), await node()
    lease = await a.redis_engine.acquire("transport:telegram", "node-a", 0.3)
    assert lease is not None
    assert await a.set_state_fenced("telegram.offset", "10", lease) is True
    assert await b.get_state("telegram.offset") == "10"
    await asyncio.sleep(0.4)  # node a stalled past its lease; node b takes the duty over
    taken = await b.redis_engine.acquire("transport:telegram", "node-b", 5)
    assert taken is not None and taken.token > lease.token
    assert await a.set_state_fenced("telegram.offset", "11", lease) is False
    assert await a.set_state_fenced("telegram.offset", None, lease) is False
    assert await a.get_state("telegram.offset") == "10"
    assert await b.set_state_fenced("telegram.offset", "12", taken) is True
    assert await b.set_state_fenced("telegram.chat", None, taken) is True
    assert await a.get_state("telegram.offset") == "12"
    await b.redis_engine.release(taken)
    assert await b.set_state_fenced("telegram.offset", "13", taken) is False


async def test_trim_drops_history_older_than_the_age_with_its_changes_rooms_and_file_links(node: Nodes) -> None:
    store = await node()
    old = utcnow() - timedelta(hours=2)
    await store.add_file(PLAN, 100.0)
    first = await store.add(note("old plan", room="archive", timestamp=old, attachments=(PLAN,)))
    second = await store.add(note("old chat", timestamp=old + timedelta(seconds=1)))
    await store.replace(replace(second, text="old chat, edited", edited_at=utcnow()), second)
    await store.react(second.id, "👍", "bob", True)
    kept = [await store.add(note(f"new {n}")) for n in range(3)]
    assert await store.orphan_files(1000.0) == []

    assert await store.trim(3600) == 2
    assert [m.text for m in await store.since(0, 10)] == ["new 0", "new 1", "new 2"]
    assert await store.kept_from() == kept[0].id
    assert await store.get(first.id) is None and await store.versions(second.id) == []
    assert await store.rooms() == ["general"]  # the archive has no message left
    assert await store.before(None, 10, "archive") == ([], False)
    assert [m.id for m in (await store.before(None, 10, "general"))[0]] == [m.id for m in kept]
    assert await store.orphan_files(1000.0) == [PLAN]  # no message carries it any more: the sweep may go
    assert await store.message_file_ids(first.id) == []
    assert await store.trim(3600) == 0
    assert await store.trim(0) == 0  # nothing by age
    assert (await store.add(note("after"))).id == kept[-1].id + 1


async def test_everything_older_than_the_age_leaves_an_empty_log_that_goes_on_numbering(node: Nodes) -> None:
    store = await node()
    for n in range(4):
        await store.add(note(f"old {n}", timestamp=utcnow() - timedelta(days=2, seconds=-n)))
    assert await store.trim(3600) == 4
    assert await store.since(0, 10) == [] and await store.kept_from() == 0
    assert await store.rooms() == []
    assert (await store.add(note("fresh"))).id == 5


async def test_a_reader_behind_what_the_log_keeps_gets_what_is_kept_and_where_it_starts(node: Nodes) -> None:
    store = await node(max_length=3)
    await store.add_file(PHOTO, 100.0)
    await store.add(note("with a photo", attachments=(PHOTO,)))
    for n in range(5):
        await store.add(note(f"m{n}", room="ops" if n % 2 else "general"))
    assert [m.text for m in await store.since(0, 10)] == ["m2", "m3", "m4"]
    assert await store.kept_from() == 4
    assert [m.text for m in await store.since(0, 10, "general")] == ["m2", "m4"]
    assert await store.orphan_files(1000.0) == []  # linked until the trimmed messages are tidied
    assert await store.trim(0) == 0
    assert await store.orphan_files(1000.0) == [PHOTO]


async def test_the_store_reports_how_long_redis_takes(node: Nodes) -> None:
    store = await node()
    seen: list[str] = []
    store.observe = lambda operation, seconds: seen.append(operation)
    stored = await store.add(note("hi"))
    await store.get(stored.id)
    await store.react(stored.id, "👍", "bob", True)
    assert seen[:2] == ["append", "read"] and "react" in seen


async def test_the_engine_url_opens_the_shared_store_and_none_the_sqlite_one(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    await redis_server.emptied()
    settings = Settings.isolated(db=str(tmp_path / "chat.db"), engine={"url": redis_server.url, "prefix": "team"})
    store = open_engine_store(settings)
    assert isinstance(store, RedisStore) and store.shared and store.engine is store.redis_engine
    await store.open()
    try:
        await store.add(note("hi"))
        assert store.epoch == store.redis_engine.epoch and await store.rooms() == ["general"]
        async with aioredis.Redis.from_url(redis_server.url) as admin:
            assert await admin.exists("team:log") == 1
    finally:
        await store.close()
    sqlite = open_engine_store(Settings.isolated(db=str(tmp_path / "chat.db")))
    assert isinstance(sqlite, SQLiteStore) and not sqlite.shared


def test_an_engine_url_without_the_redis_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "redis" or n.startswith(("redis.", "chatbus.core.engine.redis"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "redis", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r"pip install 'chatbus\[redis\]'"):
        open_engine_store(Settings.isolated(engine={"url": "redis://127.0.0.1:6390/0"}))


async def test_after_the_log_was_replaced_the_ids_are_read_again(node: Nodes, redis_server: RedisServer) -> None:
    store = await node()
    for text in ("one", "two", "three"):
        await store.add(note(text))
    async with aioredis.Redis.from_url(redis_server.url) as admin:
        await admin.flushall()  # a Redis restarted without its data
    assert store.last_id == 3
    assert await store.reload_last_id() == 0 and store.last_id == 0
