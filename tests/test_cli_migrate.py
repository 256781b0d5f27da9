"""``chatbus copy``: a chat kept in SQLite moves into Redis with the real command, and reads back
the same through the Redis store: ids, texts, edits, deletions, reactions, agents, files,
Telegram id maps, state and epoch."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from redis import asyncio as aioredis

from chatbus import Agent, Hub, Identity, Settings, SQLiteStore, Store
from chatbus.core.cluster import PLUGINS_DONE
from chatbus.core.engine.redis import RedisEngine
from chatbus.core.engine.redis_store import RedisStore
from chatbus.core.message import Message, utcnow
from chatbus.testing import FakeClock, MemoryTransport
from tests.core.engine.redis_server import RedisServer
from tests.support import chatbus_env, run_chatbus

ALICE = Identity("alice")
BOB = Identity("bob", "developer")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(Path(tmp_path_factory.mktemp("redis"))) as server:
        yield server


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> str:
    async with aioredis.Redis.from_url(redis_server.url) as admin:
        await admin.flushall()
    return redis_server.url


@pytest.fixture
async def chat(tmp_path: Path) -> Path:
    """A chat as a hub keeps it in SQLite: files, an edit, a deletion, reactions, two rooms,
    an agent's answer, an agent in the roster, a Telegram id map and the Telegram offset."""
    path = tmp_path / "chat.db"
    settings = Settings.isolated(db=str(path), files={"dir": str(tmp_path / "files")})
    store = SQLiteStore(path)
    hub = Hub(settings, store=store, transports=[MemoryTransport()], load_entrypoints=False, clock=FakeClock())
    async with hub:
        plan = await hub.files.save_bytes(b"the plan", "plan.txt", "text/plain", uploader="alice")
        draft = await hub.files.save_bytes(b"a draft", "draft.txt", "text/plain", uploader="bob")
        await hub.files.save_bytes(b"never sent", "unused.txt", "text/plain")
        first = await hub.receive(ALICE, "here is the plan", attachments=[plan.id])
        typo = await hub.receive(BOB, "deploy on fryday", room="ops")
        await hub.edit(BOB, typo.id, "deploy on friday")
        await hub.react(BOB, first.id, "👍")
        await hub.react(ALICE, typo.id, "🎉")
        gone = await hub.receive(BOB, "wrong draft", attachments=[draft.id])
        await hub.delete(BOB, gone.id)
        await hub.send("on it", sender="builder", reply_to=first.id)
        await hub.store.save_agent(Agent("builder", "developer", ("make", "{task}"), allow=("developer",)))
        await hub.store.map_external("telegram", first.id, "-100:77")
        await hub.store.set_state("telegram.offset", "4242")
    return path


async def _everything(store: Store) -> dict[str, object]:
    """What a person or a transport could notice of a chat."""
    messages: list[Message] = await store.since(0, 1000)
    ids = [m.id for m in messages]
    files = {fid for m in ids for fid in await store.message_file_ids(m)}
    return {
        "messages": messages,
        "versions": {m: await store.versions(m) for m in ids},
        "file links": {m: await store.message_file_ids(m) for m in ids},
        "files": {fid: await store.get_file(fid) for fid in files},
        "files total": await store.files_total(),
        "orphans": [a.id for a in await store.orphan_files(4e9)],
        "rooms": await store.rooms(),
        "agents": await store.list_agents(),
        "telegram": [await store.external_ids_for("telegram", m) for m in ids],
        "offset": await store.get_state("telegram.offset"),
        "epoch": store.epoch,
        "last id": store.last_id,
    }


async def _opened(store: Store) -> AsyncIterator[Store]:
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def _read(store: Store) -> dict[str, object]:
    async for opened in _opened(store):
        return await _everything(opened)
    raise AssertionError("unreachable")


async def test_a_sqlite_chat_copied_into_redis_reads_back_the_same(chat: Path, redis_url: str) -> None:
    before = await _read(SQLiteStore(chat, create=False))
    copied = run_chatbus("copy", str(chat), redis_url, env=chatbus_env())
    assert copied.returncode == 0, copied.stderr
    assert "4 messages (ids 1 to 4), 2 with their earlier texts (edits, deletions), 2 reactions" in copied.stdout
    assert "1 agent, 1 transport id mapping, 1 state value" in copied.stdout
    assert "3 files' metadata" in copied.stdout
    assert "clients of the SQLite server resume where they were" in copied.stdout

    after = await _read(RedisStore(RedisEngine(redis_url)))
    assert after == before
    async for store in _opened(RedisStore(RedisEngine(redis_url))):
        # the agents and commands answered those messages on SQLite: the nodes start after them
        assert await store.get_state(PLUGINS_DONE) == "4"
    messages: list[Message] = after["messages"]  # type: ignore[assignment]
    assert [(m.id, m.text) for m in messages] == [
        (1, "here is the plan"),
        (2, "deploy on friday"),
        (3, ""),
        (4, "on it"),
    ]
    assert messages[2].deleted and messages[3].sender == "builder" and messages[3].reply_to == 1
    assert messages[0].reactions == (("👍", ("bob",)),) and messages[0].attachments[0].name == "plan.txt"
    assert after["versions"] == {1: [], 2: ["deploy on fryday"], 3: ["wrong draft"], 4: []}
    assert after["telegram"] == [["-100:77"], [], [], []]
    assert after["rooms"] == ["general", "ops"]

    async for store in _opened(RedisStore(RedisEngine(redis_url))):
        assert await store.hub_id_for("telegram", "-100:77") == 1  # a Telegram reply still threads
        assert (await store.add(replace(messages[0], text="next"))).id == 5  # the ids go on from the copied ones


async def test_a_redis_that_holds_a_chat_is_replaced_only_when_asked(chat: Path, redis_url: str) -> None:
    async for store in _opened(RedisStore(RedisEngine(redis_url))):
        await store.add(Message(id=0, text="already here", sender="carol", timestamp=utcnow()))
    refused = run_chatbus("copy", str(chat), redis_url, env=chatbus_env())
    assert refused.returncode == 1
    assert "already holds a chat" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    replaced = run_chatbus("copy", str(chat), redis_url, "--force", env=chatbus_env())
    assert replaced.returncode == 0, replaced.stderr
    assert "keys deleted" in replaced.stdout
    assert await _read(RedisStore(RedisEngine(redis_url))) == await _read(SQLiteStore(chat))


def test_a_copy_with_nothing_to_copy_or_nowhere_to_go_says_what_to_give(tmp_path: Path) -> None:
    missing = run_chatbus("copy", str(tmp_path / "nope.db"), "redis://127.0.0.1:1/0", env=chatbus_env())
    assert missing.returncode == 1 and "there is no database" in missing.stderr
    nowhere = run_chatbus("copy", str(tmp_path / "chat.db"), env=chatbus_env())
    assert nowhere.returncode == 2 and "no Redis to copy into" in nowhere.stderr
    swapped = run_chatbus("copy", "redis://127.0.0.1:6379/0", env=chatbus_env())
    assert swapped.returncode == 2 and "give the SQLite database first" in swapped.stderr
