"""When files go: unused uploads after a while, a deleted message's files when the setting says so."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatbus import Attachment, Hub, Identity, MemoryStore, Settings, SQLiteStore, Store
from chatbus.testing import FakeClock, MemoryTransport

ALICE = Identity("alice")
HOUR = 3600.0


class WallClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "chat.db")


def make(store: Store, tmp_path: Path, **files: object) -> tuple[Hub, WallClock]:
    settings = Settings.isolated(db=str(tmp_path / "chat.db"), files=files)
    hub = Hub(settings, store=store, transports=[MemoryTransport()], load_entrypoints=False, clock=FakeClock())
    clock = WallClock()
    hub.files.wall_clock = clock
    return hub, clock


def kept(hub: Hub, attachment: Attachment) -> bool:
    return (hub.files.directory / attachment.id[:2] / attachment.id).is_file()


@pytest.fixture
async def running(store: Store, tmp_path: Path) -> AsyncIterator[tuple[Hub, WallClock]]:
    hub, clock = make(store, tmp_path)
    async with hub:
        yield hub, clock


async def test_an_upload_no_message_carries_is_removed_after_orphan_after(running: tuple[Hub, WallClock]) -> None:
    hub, clock = running
    unused = await hub.files.save_bytes(b"never sent", "draft.txt", "text/plain")
    thumbnail = hub.files.directory / "thumbnails" / unused.id[:2] / f"{unused.id}.webp"
    thumbnail.parent.mkdir(parents=True)
    thumbnail.write_bytes(b"made from it")
    sent = await hub.files.save_bytes(b"sent", "sent.txt", "text/plain")
    await hub.receive(ALICE, "here", attachments=[sent.id])
    clock.now += HOUR - 1
    assert await hub.files.sweep() == 0
    clock.now += 2
    assert await hub.files.sweep() == 1
    assert await hub.files.get(unused.id) is None and not kept(hub, unused) and not thumbnail.exists()
    assert await hub.files.get(sent.id) == sent and kept(hub, sent)
    assert await hub.store.files_total() == len(b"sent")


async def test_uploading_the_same_bytes_again_starts_the_wait_anew(running: tuple[Hub, WallClock]) -> None:
    hub, clock = running
    draft = await hub.files.save_bytes(b"draft", "draft.txt", "text/plain")
    clock.now += HOUR - 10
    await hub.files.save_bytes(b"draft", "draft.txt", "text/plain")
    clock.now += 20
    assert await hub.files.sweep() == 0 and kept(hub, draft)


async def test_a_file_a_message_is_being_accepted_with_is_never_swept(running: tuple[Hub, WallClock]) -> None:
    hub, clock = running
    draft = await hub.files.save_bytes(b"late", "late.txt", "text/plain")
    clock.now += 2 * HOUR
    async with hub.files.use([draft.id]) as files:
        assert files == (draft,)
        assert await hub.files.sweep() == 0
    message = await hub.receive(ALICE, "finally", attachments=[draft.id])
    assert await hub.files.sweep() == 0 and message.attachments == (draft,) and kept(hub, draft)


async def test_deleting_a_message_keeps_its_files_by_default(running: tuple[Hub, WallClock]) -> None:
    hub, clock = running
    report = await hub.files.save_bytes(b"report", "report.txt", "text/plain")
    message = await hub.receive(ALICE, "report", attachments=[report.id])
    await hub.delete(ALICE, message.id)
    await hub.settle()
    clock.now += 10 * HOUR
    assert await hub.files.sweep() == 0
    assert kept(hub, report) and await hub.files.get(report.id) == report
    assert (await hub.store.get(message.id)).attachments == ()  # type: ignore[union-attr]


async def test_with_delete_with_message_a_deleted_message_takes_files_no_one_else_has(
    store: Store, tmp_path: Path
) -> None:
    hub, _ = make(store, tmp_path, delete_with_message=True)
    async with hub:
        mine = await hub.files.save_bytes(b"only here", "mine.txt", "text/plain")
        shared = await hub.files.save_bytes(b"shared", "shared.txt", "text/plain")
        first = await hub.receive(ALICE, "two files", attachments=[mine.id, shared.id])
        second = await hub.receive(Identity("bob"), "again", attachments=[shared.id])
        await hub.delete(ALICE, first.id)
        await hub.settle()
        assert await hub.files.get(mine.id) is None and not kept(hub, mine)
        assert await hub.files.get(shared.id) == shared and kept(hub, shared)
        await hub.delete(Identity("bob"), second.id)
        await hub.settle()
        assert await hub.files.get(shared.id) is None and not kept(hub, shared)
        assert await hub.store.files_total() == 0


async def test_the_sweep_runs_by_itself(store: Store, tmp_path: Path) -> None:
    hub, clock = make(store, tmp_path, orphan_after=1)
    async with hub:
        draft = await hub.files.save_bytes(b"soon gone", "draft.txt", "text/plain")
        clock.now += 5
        for _ in range(40):
            if await hub.files.get(draft.id) is None:
                break
            await asyncio.sleep(0.1)
        assert await hub.files.get(draft.id) is None and not kept(hub, draft)


async def test_the_default_folder_is_beside_the_database_and_a_temporary_one_for_memory(tmp_path: Path) -> None:
    hub, _ = make(MemoryStore(), tmp_path)
    assert hub.files.directory == tmp_path / "chat-files"
    memory = Hub(Settings.isolated(db=":memory:"), transports=[], load_entrypoints=False)
    async with memory:
        folder = memory.files.directory
        await memory.files.save_bytes(b"x", "x.txt", "text/plain")
        assert folder.is_dir()
    assert not folder.exists()
