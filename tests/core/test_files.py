"""Files sent with messages: kept by content, carried by messages, kept across restarts."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path

import pytest

from chatbus import Attachment, Hub, Identity, InvalidMessage, NotFound, Settings, StoredFile, StoreError, hookimpl
from chatbus.core.files import valid_file_id
from chatbus.core.store import MIGRATIONS
from chatbus.testing import MemoryTransport, make_hub

ALICE = Identity("alice")
REPORT = b"quarterly numbers\n" * 100


def file_id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


async def test_a_file_is_kept_by_its_content_and_read_back() -> None:
    async with make_hub() as hub:
        attachment = await hub.files.save_bytes(REPORT, "report.txt", "text/plain", uploader="alice")
        assert attachment == Attachment(file_id(REPORT), "report.txt", len(REPORT), "text/plain", uploader="alice")
        assert attachment.url == f"/files/{attachment.id}/report.txt"
        assert attachment.thumbnail_url is None
        assert (hub.files.directory / attachment.id[:2] / attachment.id).read_bytes() == REPORT
        assert await hub.files.get(attachment.id) == attachment
        stored = await hub.files.open(attachment.id)
        assert stored is not None and stored.size == len(REPORT) and stored.path is not None
        assert await stored.read_all() == REPORT
        assert b"".join([chunk async for chunk in stored.read(18, 17)]) == b"quarterly numbers"
        assert await hub.files.get("0" * 32) is None and await hub.files.open("../../etc/passwd") is None


async def test_the_same_bytes_uploaded_twice_are_one_file() -> None:
    async with make_hub() as hub:
        first = await hub.files.save_bytes(REPORT, "report.txt", "text/plain", uploader="alice")
        again = await hub.files.save_bytes(REPORT, "copy.txt", "text/plain", uploader="bob")
        assert again == first
        kept = [path for path in hub.files.directory.rglob("*") if path.is_file()]
        assert kept == [hub.files.directory / first.id[:2] / first.id]
        assert await hub.store.files_total() == len(REPORT)


async def test_an_upload_is_streamed_through_a_spool_that_leaves_nothing_behind() -> None:
    async with make_hub() as hub:
        async with hub.files.spool() as spool:
            for _ in range(100):
                spool.write(b"quarterly numbers\n")
            attachment = await hub.files.save(spool, "report.md", None, "alice")
        assert attachment.id == file_id(REPORT) and attachment.content_type == "text/markdown"
        async with hub.files.spool() as spool:
            spool.write(b"never saved")
        assert list((hub.files.directory / ".spool").iterdir()) == []


async def test_save_path_copies_a_file_and_keeps_the_original(tmp_path: Path) -> None:
    source = tmp_path / "notes.csv"
    source.write_bytes(b"a,b\n1,2\n")
    async with make_hub() as hub:
        attachment = await hub.files.save_path(source, uploader="agent")
        assert (attachment.name, attachment.content_type, attachment.size) == ("notes.csv", "text/csv", 8)
        assert source.read_bytes() == b"a,b\n1,2\n"


async def test_a_message_carries_files_to_every_transport_and_into_history() -> None:
    transport = MemoryTransport()
    async with make_hub(transports=[transport]) as hub:
        report = await hub.files.save_bytes(REPORT, "report.txt", "text/plain", uploader="alice")
        other = await hub.files.save_bytes(b"second", "b.txt", "text/plain", uploader="alice")
        message = await hub.receive(ALICE, "", attachments=[other.id, report.id])
        assert message.text == "" and message.attachments == (other, report)
        delivered = await transport.wait_for(lambda m: m.id == message.id)
        assert delivered.attachments == (other, report)
        [stored] = await hub.since(0, 10)
        assert stored.attachments == (other, report)
        answer = await hub.send("here is the summary", sender="system", attachments=[report.id])
        assert answer.attachments == (report,)
        # Blank text beside files is no text: Telegram's caption would otherwise say "(empty message)".
        blank = await hub.receive(ALICE, " \n ", attachments=[report.id])
        assert blank.text == ""
        assert (await hub.send("  ", sender="system", attachments=[report.id])).text == ""


async def test_a_message_with_unknown_or_too_many_files_is_refused_and_not_stored() -> None:
    settings = Settings.isolated(db=":memory:", files={"max_per_message": 2})
    async with make_hub(settings=settings) as hub:
        with pytest.raises(NotFound, match="There is no file 0000"):
            await hub.receive(ALICE, "see attached", attachments=["0" * 32])
        ids = [(await hub.files.save_bytes(bytes([n]) * 10, f"{n}.txt", "text/plain")).id for n in range(3)]
        with pytest.raises(InvalidMessage, match="at most 2 files"):
            await hub.receive(ALICE, "three", attachments=ids)
        with pytest.raises(InvalidMessage, match="empty"):
            await hub.receive(ALICE, "  ")
        assert await hub.since(0, 10) == []


async def test_files_and_the_messages_carrying_them_survive_a_restart(tmp_path: Path) -> None:
    settings = Settings.isolated(db=str(tmp_path / "chat.db"))

    def hub() -> Hub:
        return Hub(settings, transports=[], load_entrypoints=False)

    async with hub() as first:
        picture = await first.files.save_bytes(REPORT, "report.txt", "text/plain", uploader="alice")
        sent = await first.receive(ALICE, "the report", attachments=[picture.id])
    assert (tmp_path / "chat-files" / picture.id[:2] / picture.id).is_file()
    async with hub() as second:
        assert await second.files.get(picture.id) == picture
        stored = await second.files.open(picture.id)
        assert stored is not None and await stored.read_all() == REPORT
        messages, _ = await second.history()
        assert [(m.id, m.attachments) for m in messages] == [(sent.id, (picture,))]


def test_file_ids_are_32_lowercase_hex_digits() -> None:
    assert valid_file_id("0123456789abcdef" * 2)
    assert not valid_file_id("0123456789ABCDEF" * 2) and not valid_file_id("../x") and not valid_file_id(None)


class MemoryBackend:
    """A file store of its own (as an S3-style plugin would be): it answers before the local folder."""

    def __init__(self) -> None:
        self.kept: dict[str, bytes] = {}

    @hookimpl
    def store_file(self, attachment: Attachment, source: Path) -> bool:
        self.kept[attachment.id] = source.read_bytes()
        return True

    @hookimpl
    async def open_file(self, attachment: Attachment) -> StoredFile | None:
        data = self.kept.get(attachment.id)
        return StoredFile(attachment, data=data) if data is not None else None

    @hookimpl
    def delete_file(self, attachment: Attachment) -> bool:
        return self.kept.pop(attachment.id, None) is not None


async def test_a_plugin_replaces_the_local_folder_through_the_hooks() -> None:
    backend = MemoryBackend()
    async with make_hub([backend]) as hub:
        attachment = await hub.files.save_bytes(REPORT, "report.txt", "text/plain")
        assert backend.kept == {attachment.id: REPORT}
        assert [path for path in hub.files.directory.rglob("*") if path.is_file()] == []
        stored = await hub.files.open(attachment.id)
        assert stored is not None and stored.path is None
        assert b"".join([chunk async for chunk in stored.read(5)]) == REPORT[5:]


async def test_the_test_kit_sends_files_as_a_person() -> None:
    transport = MemoryTransport()
    async with make_hub(transports=[transport]) as hub:
        report = await hub.files.save_bytes(REPORT, "report.txt", "text/plain", uploader="alice")
        sent = await transport.say("alice", "", attachments=[report.id])
        assert sent.attachments == (report,) and sent.sender == "alice"


async def test_concurrent_uploads_never_pass_the_total_limit_together(tmp_path: Path) -> None:
    settings = Settings.isolated(db=str(tmp_path / "chat.db"), files={"max_total_bytes": 1500})
    async with Hub(settings, transports=[], load_entrypoints=False) as hub:
        results = await asyncio.gather(
            *(hub.files.save_bytes(bytes([n]) * 1000, f"{n}.txt", "text/plain") for n in range(3)),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["Attachment", "FileRefused", "FileRefused"]
        assert await hub.store.files_total() == 1000


async def test_a_database_from_before_files_is_migrated_and_keeps_its_messages(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    raw = sqlite3.connect(path)
    for number, script in enumerate(MIGRATIONS[:2], start=1):
        raw.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")
    raw.execute(
        "INSERT INTO messages (id, room, sender, sender_role, kind, text, mentions, command_args, timestamp)"
        " VALUES (1, 'general', 'alice', 'user', 'human', 'from before', '[]', '[]', '2026-01-01T00:00:00+00:00')"
    )
    raw.commit()
    raw.close()
    settings = Settings.isolated(db=str(path))
    async with Hub(settings, transports=[], load_entrypoints=False) as hub:
        [old] = await hub.since(0, 10)
        assert (old.text, old.attachments) == ("from before", ())
        report = await hub.files.save_bytes(REPORT, "report.txt", "text/plain")
        sent = await hub.receive(ALICE, "", attachments=[report.id])
        assert (await hub.store.get(sent.id)).attachments == (report,)  # type: ignore[union-attr]


async def test_without_any_file_store_an_upload_is_refused_and_nothing_is_left() -> None:
    settings = Settings.isolated(db=":memory:", plugins={"disable": ["files"]})
    async with make_hub(settings=settings) as hub:
        with pytest.raises(StoreError, match="no file store is installed"):
            await hub.files.save_bytes(REPORT, "report.txt", "text/plain")
        assert [path for path in hub.files.directory.rglob("*") if path.is_file()] == []
        assert await hub.store.files_total() == 0


async def test_work_on_one_file_is_done_one_at_a_time(tmp_path: Path) -> None:
    settings = Settings.isolated(db=str(tmp_path / "chat.db"))
    async with Hub(settings, transports=[], load_entrypoints=False) as hub:
        inside: list[int] = []
        most = 0

        async def hold(number: int) -> None:
            nonlocal most
            for _ in range(number):  # some arrive while others wait, some after a release
                await asyncio.sleep(0)
            async with hub.files._lock("f" * 32):
                inside.append(number)
                most = max(most, len(inside))
                await hub.store.files_total()  # a real wait on the store's thread
                inside.remove(number)

        await asyncio.gather(*(hold(n) for n in range(30)))
        assert most == 1 and hub.files._locks == {}


async def test_uploading_a_file_whose_bytes_were_lost_brings_them_back() -> None:
    async with make_hub() as hub:
        report = await hub.files.save_bytes(REPORT, "report.txt", "text/plain")
        (hub.files.directory / report.id[:2] / report.id).unlink()
        assert await hub.files.open(report.id) is None
        assert await hub.files.save_bytes(REPORT, "report.txt", "text/plain") == report
        stored = await hub.files.open(report.id)
        assert stored is not None and await stored.read_all() == REPORT
