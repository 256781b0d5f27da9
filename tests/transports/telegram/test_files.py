"""Files both ways between Telegram and the web chat, with real python-telegram-bot against the fake Bot API.

A photo, document, voice note or video posted in Telegram arrives in the hub
as an attachment with the caption as text; one too big for the bot, or one
that cannot be fetched, arrives with a note naming it. A message with files
from the web goes to Telegram as a photo, a document or an album, the sender
named in the caption. The bot token never reaches the web chat.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from chatbus import Hub, MemoryStore, Settings
from chatbus.core.message import Message
from chatbus.testing import FakeClock, MemoryTransport
from chatbus.transports.telegram import TelegramTransport, files_out
from chatbus.transports.websocket import WebSocketTransport
from tests.support import free_port

from .conftest import CHAT, build_hub, sqlite, telegram_options
from .fakebot import FakeBotAPI
from .test_bridge import WebClient, chat_message
from .test_metrics import counts

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

ALICE: dict[str, Any] = FakeBotAPI.user(42, username="alice", first_name="Alice")


def picture(width: int = 64, height: int = 48, kind: str = "JPEG", color: str = "teal") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, kind)
    return out.getvalue()


async def stored_bytes(hub: Hub, file_id: str) -> bytes:
    found = await hub.files.open(file_id)
    assert found is not None
    return await found.read_all()


def from_telegram(message: Message) -> bool:
    return message.transport == "telegram"


# Telegram to the hub ---------------------------------------------------------------------------
async def test_a_photo_arrives_as_its_largest_size_with_the_caption_as_text(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    photo = picture(320, 200)
    async with hub:
        api.post_media(CHAT, "photo", photo, user=ALICE, caption="the whiteboard")
        message = await web.wait_for(from_telegram)
        assert message.text == "the whiteboard"
        [attachment] = message.attachments
        assert (attachment.content_type, attachment.width, attachment.height) == ("image/jpeg", 320, 200)
        assert attachment.name.startswith("photo_") and attachment.name.endswith(".jpg")
        assert await stored_bytes(hub, attachment.id) == photo
        assert attachment.uploader == "tg:42"
        # One download counted as such, without the token or the file's path in a label.
        exposition = hub.metrics.exposition()
        assert counts(exposition, "chatbus_telegram_api_calls_total")[("download", "ok")] == 1
        assert api.token.encode() not in exposition and b"photos/" not in exposition


async def test_a_document_voice_note_and_video_arrive_as_attachments(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        api.post_media(CHAT, "document", b"%PDF-1.4 the report", user=ALICE, caption="Q3 numbers",
                       file_name="report.pdf", mime_type="application/pdf")  # fmt: skip
        api.post_media(CHAT, "voice", b"OggS voice", user=ALICE, mime_type="audio/ogg")
        api.post_media(CHAT, "video", b"\x00\x00\x00\x18ftypmp42 video", user=ALICE, caption="demo",
                       file_name="demo.mp4", mime_type="video/mp4")  # fmt: skip
        await web.wait_for(lambda m: from_telegram(m) and m.text == "demo")
        document, voice, video = [m for m in web.delivered if from_telegram(m)]
        assert document.text == "Q3 numbers"
        assert [(a.name, a.content_type) for a in document.attachments] == [("report.pdf", "application/pdf")]
        assert await stored_bytes(hub, document.attachments[0].id) == b"%PDF-1.4 the report"
        assert voice.text == "" and voice.attachments[0].content_type == "audio/ogg"
        assert voice.attachments[0].name.startswith("voice_") and voice.attachments[0].name.endswith(".ogg")
        assert [(a.name, a.content_type) for a in video.attachments] == [("demo.mp4", "video/mp4")]


async def test_a_file_too_big_for_the_bot_arrives_as_a_note_with_its_name_and_size(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        api.post_media(CHAT, "document", None, user=ALICE, caption="all of it", file_name="dump.zip",
                       mime_type="application/zip", file_size=48 * 1024 * 1024)  # fmt: skip
        message = await web.wait_for(from_telegram)
        assert message.attachments == ()
        assert (
            message.text == "[document dump.zip, 48 MiB — too big for the bot to fetch; open it in Telegram] all of it"
        )
        assert api.calls_of("getFile") == []  # the update said how big it is: not even asked


async def test_a_file_telegram_says_is_too_big_only_when_asked_arrives_as_a_note(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        api.post_media(CHAT, "video", None, user=ALICE, file_name="talk.mp4", mime_type="video/mp4",
                       file_size=25_000_000, size_known=False)  # fmt: skip
        message = await web.wait_for(from_telegram)
        assert message.text == "[video talk.mp4 — too big for the bot to fetch; open it in Telegram]"
        assert [c.status for c in api.calls_of("getFile")] == [400] and not api.calls_of("download")


async def test_a_download_that_keeps_failing_arrives_as_a_note(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        api.fail("download", times=3, status=502, description="Bad Gateway")
        api.post_media(CHAT, "document", b"some notes", user=ALICE, file_name="notes.txt", mime_type="text/plain")
        message = await web.wait_for(from_telegram)
        assert message.attachments == ()
        assert message.text == (
            "[document notes.txt, 10 bytes — could not be fetched from Telegram; open it in Telegram]"
        )
        assert len(api.calls_of("download")) == 3


async def test_a_download_that_fails_once_is_tried_again(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        api.fail("download", drop=True)
        api.post_media(CHAT, "document", b"some notes", user=ALICE, file_name="notes.txt", mime_type="text/plain")
        message = await web.wait_for(from_telegram)
        assert [a.name for a in message.attachments] == ["notes.txt"]


async def test_a_slow_download_holds_up_only_its_own_chat_which_keeps_its_order(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api, chat_ids=f"{CHAT},{-1009999999999}")
    other = -1009999999999
    async with hub:
        api.download_gate = asyncio.Event()  # the download takes as long as the test says
        api.post_media(CHAT, "document", b"slow file", user=ALICE, file_name="slow.txt", mime_type="text/plain")
        api.post(CHAT, "after the file", user=ALICE)
        api.post(other, "meanwhile elsewhere", user=FakeBotAPI.user(7, username="bob"))
        await web.wait_for(lambda m: m.text == "meanwhile elsewhere")
        await asyncio.sleep(0.2)
        assert not any(m.text == "after the file" for m in web.delivered)  # still behind the file
        api.download_gate.set()
        await web.wait_for(lambda m: m.text == "after the file")
        ours = [m for m in web.delivered if from_telegram(m) and m.sender == "tg:42"]
        assert [m.attachments[0].name if m.attachments else m.text for m in ours] == ["slow.txt", "after the file"]


# the hub to Telegram -----------------------------------------------------------------------------
async def say_with_files(
    hub: Hub, web: MemoryTransport, user: str, text: str, *files: tuple[str, bytes, str]
) -> Message:
    """``user`` sends ``text`` from the web side with ``files`` (name, bytes, type) uploaded first."""
    identity = await web.join(user)
    ids = [(await hub.files.save_bytes(data, name, kind, identity.user_id)).id for name, data, kind in files]
    return await hub.receive(identity, text, transport=web.name, attachments=ids)


async def test_one_picture_goes_as_a_photo_with_the_sender_in_the_caption(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    image = picture(80, 60, "PNG")
    async with hub:
        await say_with_files(hub, web, "ana", "look at <this> & that", ("sketch.png", image, "image/png"))
        [sent] = await api.wait_sent(1)
        assert (sent.kind, sent.text, sent.bold()) == ("photo", "ana: look at <this> & that", ["ana"])
        assert [(f.filename, f.data) for f in sent.files] == [("sketch.png", image)]
        assert api.calls_of("sendPhoto") and not api.calls_of("sendMessage")


async def test_one_other_file_goes_as_a_document(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        await say_with_files(hub, web, "ana", "", ("report.pdf", b"%PDF-1.4 numbers", "application/pdf"))
        [sent] = await api.wait_sent(1)
        assert (sent.kind, sent.text, sent.bold()) == ("document", "ana: report.pdf", ["ana"])
        assert [(f.filename, f.content_type, f.data) for f in sent.files] == [
            ("report.pdf", "application/pdf", b"%PDF-1.4 numbers")
        ]


async def test_several_files_go_as_one_album_captioned_once(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        pictures = [
            (f"p{n}.jpg", picture(40 + n, 30, color=color), "image/jpeg")
            for n, color in enumerate(["red", "blue", "green"])
        ]
        await say_with_files(hub, web, "ana", "three views", *pictures)
        sent = await api.wait_sent(3)
        assert [s.kind for s in sent] == ["photo"] * 3
        assert len({s.group for s in sent}) == 1 and sent[0].group is not None
        assert [s.text for s in sent] == ["ana: three views", "", ""]
        assert [s.files[0].filename for s in sent] == ["p0.jpg", "p1.jpg", "p2.jpg"]
        assert len(api.calls_of("sendMediaGroup")) == 1

        # A picture with a PDF: Telegram takes no such album, so both go as documents in one.
        await say_with_files(hub, web, "ana", "", ("chart.png", picture(kind="PNG"), "image/png"),
                             ("notes.pdf", b"%PDF-1.4 notes", "application/pdf"))  # fmt: skip
        sent = await api.wait_sent(5)
        assert [(s.kind, s.text) for s in sent[3:]] == [("document", "ana: chart.png, notes.pdf"), ("document", "")]
        assert sent[3].group == sent[4].group != sent[0].group


async def test_a_text_longer_than_a_caption_goes_first_and_the_file_follows(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    long_text = "word " * 400  # 2,000 characters: more than a caption's 1,024
    async with hub:
        await say_with_files(hub, web, "ana", long_text, ("plan.png", picture(kind="PNG"), "image/png"))
        text, photo = await api.wait_sent(2)
        assert (text.kind, text.text) == ("text", "ana: " + long_text.strip())
        assert (photo.kind, photo.text, photo.bold()) == ("photo", "ana: plan.png", ["ana"])


async def test_edits_and_deletions_reach_the_caption_and_every_file(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        ana = await web.join("ana")
        message = await say_with_files(hub, web, "ana", "first draft", ("a.png", picture(kind="PNG"), "image/png"),
                                       ("b.png", picture(kind="PNG", color="red"), "image/png"))  # fmt: skip
        first, second = await api.wait_sent(2)
        await hub.edit(ana, message.id, "final version")
        await api.wait_for(lambda: first.text == "ana: final version")
        assert first.edits == ["ana: first draft"] and second.edits == []
        assert not api.calls_of("editMessageText")

        # Someone replies to the album in Telegram: the reply is to the hub message.
        api.post(CHAT, "nice", user=ALICE, reply_to=first.message_id)
        reply = await web.wait_for(lambda m: m.text == "nice")
        assert reply.reply_to == message.id

        await hub.delete(ana, message.id)
        await api.wait_for(lambda: first.deleted and second.deleted)


async def test_files_from_one_telegram_chat_reach_the_other_natively(api: FakeBotAPI) -> None:
    other = -1009999999999
    hub, _web, _telegram = build_hub(api, chat_ids=f"{CHAT},{other}")
    photo = picture(120, 90)
    async with hub:
        api.post_media(CHAT, "photo", photo, user=ALICE, caption="from chat one")
        [sent] = await api.wait_sent(1)
        assert (sent.chat_id, sent.kind, sent.text) == (other, "photo", "alice: from chat one")
        assert sent.files[0].data == photo
        api.post_media(CHAT, "voice", b"OggS a voice note", user=ALICE, mime_type="audio/ogg")
        _, voice = await api.wait_sent(2)
        assert (voice.chat_id, voice.kind, voice.files[0].data) == (other, "voice", b"OggS a voice note")


# what the web chat sees, and a restart ------------------------------------------------------------
async def test_the_web_chat_sees_the_hubs_own_file_addresses_and_never_the_bot_token(api: FakeBotAPI) -> None:
    web_transport = WebSocketTransport({"host": "127.0.0.1", "port": 0})
    telegram = TelegramTransport(telegram_options(api))
    hub = Hub(Settings.isolated(db=":memory:"), store=MemoryStore(), transports=[web_transport, telegram],
              load_entrypoints=False, clock=FakeClock())  # fmt: skip
    async with hub:
        ana = await WebClient.join(web_transport.port, "ana")
        try:
            api.post_media(CHAT, "document", b"%PDF-1.4 minutes", user=ALICE, caption="minutes",
                           file_name="minutes.pdf", mime_type="application/pdf")  # fmt: skip
            frame = await ana.wait_for(chat_message("minutes"))
            api.post_media(CHAT, "document", None, user=ALICE, file_name="huge.mkv", file_size=30_000_000)
            api.fail("download", times=3, status=502, description="Bad Gateway")
            api.post_media(CHAT, "photo", picture(), user=ALICE, caption="broken")
            [attachment] = frame["data"]["attachments"]
            assert attachment["url"] == f"/files/{attachment['id']}/minutes.pdf"
            assert (attachment["name"], attachment["contentType"]) == ("minutes.pdf", "application/pdf")
            await ana.wait_for(lambda f: f["type"] == "message" and "huge.mkv" in f["data"]["text"])
            await ana.wait_for(lambda f: f["type"] == "message" and f["data"]["text"].endswith("broken"))
            await ana.ws.send(json.dumps({"type": "history", "data": {"limit": 50}}))
            await ana.wait_for(lambda f: f["type"] == "history")
            assert api.downloads  # the bot did fetch the file, through the token's address
            wire = json.dumps(ana.frames)
            assert api.token not in wire and api.token.split(":")[1] not in wire
            assert "/file/bot" not in wire and "api.telegram.org" not in wire
        finally:
            await ana.close()


async def test_files_from_telegram_are_still_there_after_a_restart(api: FakeBotAPI, db_path: Path) -> None:
    photo = picture(200, 100)
    settings = Settings.isolated(db=str(db_path), max_text_length=20_000)
    hub, web, _telegram = build_hub(api, store=sqlite(db_path), settings=settings)
    async with hub:
        api.post_media(CHAT, "photo", photo, user=ALICE, caption="keep this")
        first = await web.wait_for(from_telegram)
    secret = api.token.split(":")[1].encode()
    kept = [path for path in db_path.parent.rglob("*") if path.is_file()]
    assert kept and not any(secret in path.read_bytes() for path in kept)  # nothing kept holds the token
    hub, web, _telegram = build_hub(api, store=sqlite(db_path), settings=settings)
    async with hub:
        [again] = [m for m in await hub.store.since(0, 10) if m.id == first.id]
        assert again.text == "keep this" and again.attachments == first.attachments
        assert await stored_bytes(hub, first.attachments[0].id) == photo
        # And it goes to Telegram as a photo from the web side too, after the restart.
        ana = await web.join("ana")
        await hub.receive(ana, "the same picture", transport=web.name, attachments=[first.attachments[0].id])
        [sent] = await api.wait_sent(1)
        assert (sent.kind, sent.files[0].data) == ("photo", photo)


# more of Telegram to the hub ---------------------------------------------------------------------
async def test_audio_and_gifs_arrive_as_attachments_too(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        api.post_media(CHAT, "audio", b"ID3 song", user=ALICE, file_name="song.mp3", mime_type="audio/mpeg",
                       performer="Band", title="Song")  # fmt: skip
        api.post_media(CHAT, "animation", b"\x00\x00\x00\x18ftypmp42 gif", user=ALICE, caption="lol",
                       file_name="funny.mp4", mime_type="video/mp4")  # fmt: skip
        await web.wait_for(lambda m: m.text == "lol")
        song, gif = [m for m in web.delivered if from_telegram(m)]
        assert [(a.name, a.content_type) for a in song.attachments] == [("song.mp3", "audio/mpeg")]
        assert [(a.name, a.content_type) for a in gif.attachments] == [("funny.mp4", "video/mp4")]


async def test_a_file_of_a_type_the_chat_does_not_keep_arrives_as_a_note(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        api.post_media(CHAT, "document", b"MZ\x90\x00 program", user=ALICE, caption="try this",
                       file_name="setup.exe", mime_type="application/x-msdownload")  # fmt: skip
        message = await web.wait_for(from_telegram)
        assert message.attachments == ()
        assert message.text == (
            "[document setup.exe, 12 bytes — files of this type are not kept in the chatbus chat; "
            "open it in Telegram] try this"
        )


async def test_an_edited_caption_edits_the_text_and_keeps_the_file(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        posted = api.post_media(CHAT, "photo", picture(), user=ALICE, caption="draft")
        message = await web.wait_for(from_telegram)
        api.edit(CHAT, posted["message_id"], "", user=ALICE, caption="final")
        change = await web.wait_for_change(lambda c: c.message.id == message.id)
        assert change.message.text == "final"
        assert change.message.attachments == message.attachments


async def test_files_arrive_by_webhook_too(api: FakeBotAPI) -> None:
    port = free_port()
    hub, web, _telegram = build_hub(api, webhook_url=f"http://127.0.0.1:{port}/hook", webhook_port=port)
    async with hub:
        posted = api.post_media(CHAT, "document", b"by webhook", user=ALICE, file_name="hook.txt",
                                mime_type="text/plain")  # fmt: skip
        message = await web.wait_for(from_telegram)
        assert [a.name for a in message.attachments] == ["hook.txt"]
        assert api.webhook_answered and posted["message_id"]
        # An album, though Telegram posts its messages to the webhook several at once.
        for n in range(4):
            api.post_media(CHAT, "photo", picture(40 + n, 30), user=ALICE, caption="four" if n == 0 else None,
                           media_group_id="77")  # fmt: skip
        album = await web.wait_for(lambda m: m.text == "four")
        assert [a.width for a in album.attachments] == [40, 41, 42, 43]


async def test_a_download_cut_short_by_a_stop_is_finished_after_the_restart(api: FakeBotAPI, db_path: Path) -> None:
    settings = Settings.isolated(db=str(db_path), max_text_length=20_000)
    hub, web, _telegram = build_hub(api, store=sqlite(db_path), settings=settings)
    async with hub:
        api.download_gate = asyncio.Event()  # the download hangs past the stop's grace
        api.post_media(CHAT, "document", b"late but there", user=ALICE, file_name="late.txt", mime_type="text/plain")
        await api.wait_for(lambda: len(api.calls_of("getFile")) == 1)
        await api.wait_for(lambda: not api.updates)  # Telegram was told the update is handled
    assert not any(from_telegram(m) for m in web.delivered)
    api.download_gate = None
    hub, web, _telegram = build_hub(api, store=sqlite(db_path), settings=settings)
    async with hub:
        message = await web.wait_for(from_telegram)
        assert [a.name for a in message.attachments] == ["late.txt"]
        assert await stored_bytes(hub, message.attachments[0].id) == b"late but there"
        await asyncio.sleep(0.3)
        assert len([m for m in await hub.store.since(0, 50) if m.transport == "telegram"]) == 1


# more of the hub to Telegram ---------------------------------------------------------------------
async def test_files_wait_out_a_flood_limit_and_network_trouble(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        api.fail("sendPhoto", status=429, retry_after=1)
        api.fail("sendMediaGroup", status=502, description="Bad Gateway")
        await say_with_files(hub, web, "ana", "one", ("one.png", picture(kind="PNG"), "image/png"))
        await say_with_files(hub, web, "ana", "two", ("a.png", picture(kind="PNG"), "image/png"),
                             ("b.png", picture(kind="PNG", color="red"), "image/png"))  # fmt: skip
        sent = await api.wait_sent(3)
        assert [(s.kind, s.text) for s in sent] == [("photo", "ana: one"), ("photo", "ana: two"), ("photo", "")]
        assert [c.status for c in api.calls_of("sendPhoto")] == [429, 200]
        assert [c.status for c in api.calls_of("sendMediaGroup")] == [502, 200]


async def test_a_picture_telegram_refuses_as_a_photo_goes_as_a_document(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        api.fail("sendPhoto", status=400, description="Bad Request: PHOTO_INVALID_DIMENSIONS")
        await say_with_files(hub, web, "ana", "panorama", ("wide.png", picture(kind="PNG"), "image/png"))
        [sent] = await api.wait_sent(1)
        assert (sent.kind, sent.text, sent.files[0].filename) == ("document", "ana: panorama", "wide.png")


async def test_a_file_too_big_for_a_bot_to_send_is_named_in_the_text(
    api: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files_out, "UPLOAD_LIMIT", 1000)  # Telegram's 50 MB, made small
    hub, web, _telegram = build_hub(api)
    async with hub:
        await say_with_files(hub, web, "ana", "both", ("small.txt", b"fits", "text/plain"),
                             ("big.zip", b"PK" + b"\x00" * 2000, "application/zip"))  # fmt: skip
        [sent] = await api.wait_sent(1)
        assert sent.kind == "document" and [f.filename for f in sent.files] == ["small.txt"]
        assert sent.text == (
            "ana: both\n[big.zip, 2 KiB — too big for a Telegram bot to send; it is in the chatbus chat]"
        )


async def test_files_sent_while_telegram_was_away_go_out_after_a_restart(api: FakeBotAPI, db_path: Path) -> None:
    settings = Settings.isolated(db=str(db_path), max_text_length=20_000)
    hub, web, _telegram = build_hub(api, store=sqlite(db_path), settings=settings)
    async with hub:
        await say_with_files(hub, web, "ana", "before", ("before.png", picture(kind="PNG"), "image/png"))
        await api.wait_sent(1)
    await api.stop()
    hub, web, _telegram = build_hub(api, store=sqlite(db_path), settings=settings)
    async with hub:
        await say_with_files(hub, web, "ana", "while away", ("away.pdf", b"%PDF-1.4 away", "application/pdf"))
    await api.start()
    hub, web, _telegram = build_hub(api, store=sqlite(db_path), settings=settings)
    async with hub:
        sent = await api.wait_sent(2)
        assert [(s.kind, s.text) for s in sent] == [("photo", "ana: before"), ("document", "ana: while away")]
        await asyncio.sleep(0.3)
        assert len(api.sent) == 2  # the first one is not sent again


async def test_files_beyond_one_uploads_limit_go_in_another_album(
    api: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files_out, "UPLOAD_LIMIT", 2500)  # what one request may carry, made small
    hub, web, _telegram = build_hub(api)
    async with hub:
        files = [(f"part{n}.txt", bytes([65 + n]) * 1000, "text/plain") for n in range(3)]
        await say_with_files(hub, web, "ana", "the parts", *files)
        sent = await api.wait_sent(3)
        assert [(s.kind, s.text, s.files[0].filename) for s in sent] == [
            ("document", "ana: the parts", "part0.txt"),
            ("document", "", "part1.txt"),
            ("document", "", "part2.txt"),
        ]
        assert sent[0].group == sent[1].group and sent[2].group is None
        assert [c.status for c in api.calls_of("sendMediaGroup")] == [200]


async def test_a_file_from_the_page_reaches_telegram_and_one_from_telegram_downloads_on_the_page(
    api: FakeBotAPI,
) -> None:
    web_transport = WebSocketTransport({"host": "127.0.0.1", "port": 0})
    telegram = TelegramTransport(telegram_options(api))
    hub = Hub(Settings.isolated(db=":memory:"), store=MemoryStore(), transports=[web_transport, telegram],
              load_entrypoints=False, clock=FakeClock())  # fmt: skip
    image = picture(60, 40, "PNG")
    async with hub, httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_transport.port}") as http:
        ana = await WebClient.join(web_transport.port, "ana")
        try:
            uploaded = await http.post("/files", files={"file": ("board.png", image, "image/png")},
                                       headers={"X-Chatbus-User": "ana"})  # fmt: skip
            assert uploaded.status_code == 201, uploaded.text
            await ana.say("from the page", attachments=[uploaded.json()["id"]])
            [sent] = await api.wait_sent(1)
            assert (sent.kind, sent.text, sent.bold(), sent.files[0].data) == (
                "photo", "ana: from the page", ["ana"], image
            )  # fmt: skip

            api.post_media(CHAT, "document", b"%PDF-1.4 from telegram", user=ALICE, caption="for the page",
                           file_name="agenda.pdf", mime_type="application/pdf")  # fmt: skip
            frame = await ana.wait_for(chat_message("for the page"))
            [attachment] = frame["data"]["attachments"]
            download = await http.get(attachment["url"])
            assert download.status_code == 200 and download.content == b"%PDF-1.4 from telegram"
            assert "attachment" in download.headers["content-disposition"]
        finally:
            await ana.close()


async def test_an_album_from_telegram_is_one_message_with_all_its_files(api: FakeBotAPI) -> None:
    other = -1009999999999
    hub, web, _telegram = build_hub(api, chat_ids=f"{CHAT},{other}")
    photos = [picture(50 + n, 40, color=color) for n, color in enumerate(["red", "green", "blue"])]
    async with hub:
        posted = [
            api.post_media(
                CHAT, "photo", photo, user=ALICE, caption="our trip" if n == 0 else None, media_group_id="13579"
            )
            for n, photo in enumerate(photos)
        ]
        api.post(CHAT, "and after the album", user=ALICE)
        message = await web.wait_for(from_telegram)
        assert message.text == "our trip" and len(message.attachments) == 3
        assert [await stored_bytes(hub, a.id) for a in message.attachments] == photos
        after = await web.wait_for(lambda m: m.text == "and after the album")
        assert after.id > message.id

        # A reply in Telegram to any photo of the album replies to the one hub message.
        api.post(CHAT, "the second one!", user=FakeBotAPI.user(7, username="bob"), reply_to=posted[1]["message_id"])
        reply = await web.wait_for(lambda m: m.text == "the second one!")
        assert reply.reply_to == message.id

        # The other chat of the room gets it as an album too.
        await api.wait_for(lambda: sum(s.kind == "photo" for s in api.sent) == 3)
        album = [s for s in api.sent if s.kind == "photo"]
        assert {s.chat_id for s in album} == {other} and len({s.group for s in album}) == 1
        assert album[0].text == "alice: our trip"

        # A manager renames it from the web: the copy's caption changes; the person's own photos are left alone.
        boss = await web.join("boss", role="manager")
        await hub.edit(boss, message.id, "our trip to the sea")
        await api.wait_for(lambda: album[0].text == "alice: our trip to the sea")
        assert not api.calls_of("deleteMessage") and not api.calls_of("editMessageText")


async def test_an_album_larger_than_a_message_carries_keeps_what_fits_and_says_the_rest(api: FakeBotAPI) -> None:
    settings = Settings.isolated(db=":memory:", max_text_length=20_000, files={"max_per_message": 2})
    hub, web, _telegram = build_hub(api, settings=settings)
    async with hub:
        for n in range(3):
            api.post_media(CHAT, "document", f"part {n}".encode(), user=ALICE, file_name=f"part{n}.txt",
                           mime_type="text/plain", media_group_id="2468", caption="the parts" if n == 0 else None)  # fmt: skip
        message = await web.wait_for(from_telegram)
        assert [a.name for a in message.attachments] == ["part0.txt", "part1.txt"]
        assert message.text == (
            "[1 more file — more than a chatbus message carries; open the album in Telegram] the parts"
        )


async def test_a_file_telegram_refuses_is_named_and_the_text_still_arrives(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        api.fail("sendDocument", status=400, description="Bad Request: wrong file identifier")
        await say_with_files(hub, web, "ana", "the report", ("report.pdf", b"%PDF-1.4 q3", "application/pdf"))
        [sent] = await api.wait_sent(1)
        assert (sent.kind, sent.text) == (
            "text", "ana: the report\n[report.pdf — Telegram did not take this file; it is in the chatbus chat]"
        )  # fmt: skip


async def test_each_kind_of_file_goes_as_telegram_shows_it(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        await say_with_files(hub, web, "ana", "clip", ("clip.mp4", b"\x00\x00\x00\x18ftypmp42 clip", "video/mp4"))
        await say_with_files(hub, web, "ana", "song", ("song.mp3", b"ID3 a song", "audio/mpeg"))
        await say_with_files(hub, web, "ana", "panorama", ("wide.png", picture(2100, 100, "PNG"), "image/png"))
        sent = await api.wait_sent(3)
        assert [(s.kind, s.text) for s in sent] == [
            ("video", "ana: clip"), ("audio", "ana: song"), ("document", "ana: panorama")  # too wide for a photo
        ]  # fmt: skip


async def test_an_edited_caption_keeps_the_note_of_a_file_that_did_not_come(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        posted = api.post_media(CHAT, "document", None, user=ALICE, caption="old words", file_name="dump.zip",
                                mime_type="application/zip", file_size=48 * 1024 * 1024)  # fmt: skip
        message = await web.wait_for(from_telegram)
        api.edit(CHAT, posted["message_id"], "", user=ALICE, caption="new words")
        change = await web.wait_for_change(lambda c: c.message.id == message.id)
        assert change.message.text == (
            "[document dump.zip, 48 MiB — too big for the bot to fetch; open it in Telegram] new words"
        )
