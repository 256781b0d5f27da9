"""Files in message, history and missed frames over a real WebSocket (PROTOCOL.md "Files")."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from chatbus import Settings, SQLiteStore
from chatbus.transports.websocket.wire import parse_message

from .helpers import running


def png(width: int = 4, height: int = 3) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(out, "PNG")
    return out.getvalue()


async def test_a_message_with_files_reaches_everyone_with_their_descriptions() -> None:
    async with running() as server:
        ann, bob = await server.client("ann"), await server.client("bob")
        picture = await server.hub.files.save_bytes(png(), "red dot.png", "image/png", uploader="ann")
        report = await server.hub.files.save_bytes(b"1,2\n", "numbers.csv", "text/csv", uploader="ann")
        await ann.send("message", {"attachments": [picture.id, report.id], "id": "c1"})
        got = await bob.expect("message")
        assert got["text"] == "" and got["clientId"] == "c1"
        assert got["attachments"] == [
            {
                "id": picture.id,
                "name": "red dot.png",
                "size": picture.size,
                "contentType": "image/png",
                "url": f"/files/{picture.id}/red%20dot.png",
                "width": 4,
                "height": 3,
                "thumbnailUrl": f"/files/{picture.id}/red%20dot.png?thumb=1",
            },
            {
                "id": report.id,
                "name": "numbers.csv",
                "size": 4,
                "contentType": "text/csv",
                "url": f"/files/{report.id}/numbers.csv",
                "width": None,
                "height": None,
            },
        ]
        await ann.expect("message")  # the echo
        await ann.say("no files")
        assert (await bob.expect("message"))["attachments"] == []
        await bob.send("history", {})
        frames = (await bob.expect("history"))["messages"]
        assert [f["data"]["attachments"] for f in frames] == [got["attachments"], []]
        late = await server.client("cat", lastSeenId=0)
        assert [f["data"]["attachments"] for f in late.auth["missed"]] == [got["attachments"], []]


async def test_a_deleted_message_no_longer_offers_its_files() -> None:
    async with running() as server:
        ann = await server.client("ann")
        report = await server.hub.files.save_bytes(b"secret", "keys.txt", "text/plain", uploader="ann")
        await ann.say("oops", attachments=[report.id])
        sent = await ann.expect("message")
        await ann.send("delete", {"id": sent["id"]})
        await ann.expect("message_deleted")
        await ann.send("history", {})
        [kept] = (await ann.expect("history"))["messages"]
        assert kept["data"]["deleted"] is True and kept["data"]["attachments"] == []


async def test_unknown_or_malformed_file_ids_are_refused_with_words() -> None:
    async with running() as server:
        ann = await server.client("ann")
        await ann.send("message", {"text": "see this", "attachments": ["a" * 32]})
        refused = await ann.error()
        assert refused["code"] == "NOT_FOUND"
        assert refused["message"] == f"There is no file {'a' * 32}; upload it again, then send the message."
        await ann.send("message", {"text": "see this", "attachments": ["../../etc/passwd"]})
        refused = await ann.error()
        assert refused["code"] == "INVALID_MESSAGE" and "file ids" in refused["message"]
        await ann.send("message", {"attachments": "abc"})
        assert (await ann.error())["code"] == "INVALID_MESSAGE"
        await ann.send("message", {"attachments": []})
        assert (await ann.error())["code"] == "INVALID_MESSAGE"
        await ann.still_works()


def test_the_wire_reads_attachment_ids_and_lets_text_be_left_out() -> None:
    frame = parse_message({"attachments": ["0123456789abcdef" * 2]})
    assert frame.text == "" and frame.attachments == ("0123456789abcdef" * 2,)
    assert parse_message({"text": "hi"}).attachments == ()


async def test_after_a_restart_missed_messages_still_carry_their_files(tmp_path: Path) -> None:
    settings = Settings.isolated(db=str(tmp_path / "chat.db"))
    async with running(settings=settings, store=SQLiteStore(tmp_path / "chat.db")) as server:
        ann = await server.client("ann")
        picture = await server.hub.files.save_bytes(png(), "dot.png", "image/png", uploader="ann")
        await ann.say("before the restart", attachments=[picture.id])
        sent = await ann.expect("message")
        await ann.close()
    async with running(settings=settings, store=SQLiteStore(tmp_path / "chat.db")) as server:
        bob = await server.client("bob", lastSeenId=0)
        [again] = bob.auth["missed"]
        assert again["data"]["attachments"] == sent["attachments"]
        stored = await server.hub.files.open(picture.id)
        assert stored is not None and await stored.read_all() == png()


async def test_the_sign_in_tells_the_chats_file_limits() -> None:
    settings = Settings.isolated(db=":memory:", files={"max_per_message": 3, "max_file_bytes": 2_000_000})
    async with running(settings=settings) as server:
        ann = await server.client("ann")
        assert ann.auth["files"] == {"maxPerMessage": 3, "maxFileBytes": 2_000_000}
