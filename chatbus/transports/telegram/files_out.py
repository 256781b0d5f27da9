"""Hub messages with files, sent to Telegram as Telegram's own photos, files and albums.

One picture goes as a photo (``send_photo``), one video, song or voice note as such,
any other file as a document (``send_document``); several go as albums
(``send_media_group``, up to ten files each): pictures and videos together,
songs together, and a mix of kinds all as documents, as Telegram allows.
The caption names the sender like every relayed message
(``<b>ana</b>: text``); a text longer than a caption (1,024 characters) is
sent first as messages of its own, and the files follow with their names
as the caption. A picture Telegram will not take as a photo (too large, an
odd shape) is sent again as a document; a file over the 50 MB a bot may
send, one no longer in the hub, or one Telegram refuses is named in the
text instead, so a message is never dropped unsaid.

Every Telegram message sent is mapped to the hub message like the parts of
a long text (``merge.py``), so a deletion deletes them all. Which one holds
the caption is kept in the store (``telegram:media:<chat>:<message>``), so an
edit of the hub message edits that caption (``editMessageCaption``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telegram import InputMediaAudio, InputMediaDocument, InputMediaPhoto, InputMediaVideo, ReplyParameters
from telegram import Message as TgMessage
from telegram.constants import FileSizeLimit, MediaGroupLimit, MessageLimit

from chatbus.core.files_rules import human_size
from chatbus.core.files_stored import StoredFile
from chatbus.core.message import Attachment, Message

from .calls import Attempt, Calls
from .files import album_key
from .formatting import Rendered
from .merge import External, external_id
from .session import NAME, Session
from .settings import ChatKey

if TYPE_CHECKING:
    from .outbound import Outbound

__all__ = ["FileSender", "albums", "kind_of"]

log = logging.getLogger("chatbus.telegram")

#: The most a bot may upload, and the most a photo may weigh.
UPLOAD_LIMIT = int(FileSizeLimit.FILESIZE_UPLOAD)
PHOTO_LIMIT = int(FileSizeLimit.PHOTOSIZE_UPLOAD)
CAPTION_LIMIT = int(MessageLimit.CAPTION_LENGTH)
ALBUM_LIMIT = int(MediaGroupLimit.MAX_MEDIA_LENGTH)
_PHOTOS = frozenset({"image/jpeg", "image/png", "image/webp"})
_AUDIO = frozenset({"audio/mpeg", "audio/mp3", "audio/mp4", "audio/x-m4a"})
_INPUT: dict[str, Any] = {
    "photo": InputMediaPhoto, "video": InputMediaVideo, "audio": InputMediaAudio, "document": InputMediaDocument,
}  # fmt: skip
_METHODS = {"photo": "sendPhoto", "video": "sendVideo", "audio": "sendAudio", "voice": "sendVoice",
            "document": "sendDocument"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Upload:
    """One file to send: how Telegram gets it, and where its bytes are."""

    kind: str
    attachment: Attachment
    stored: StoredFile


def kind_of(attachment: Attachment) -> str:
    """How Telegram shows a file: ``photo``, ``video``, ``audio``, ``voice`` or ``document``."""
    kind = attachment.content_type
    if kind in _PHOTOS and attachment.size <= PHOTO_LIMIT:
        width, height = attachment.width or 1, attachment.height or 1
        if width + height <= 10_000 and max(width, height) <= 20 * min(width, height):
            return "photo"
    if kind == "video/mp4":
        return "video"
    if kind in _AUDIO:
        return "audio"
    if kind == "audio/ogg":
        return "voice"  # a voice note (from Telegram, or recorded): Telegram plays it as one
    return "document"


def albums(uploads: list[Upload]) -> list[list[Upload]]:
    """``uploads`` in the albums Telegram allows: pictures and videos together, songs together,
    anything else (or a mix) all as documents; at most ten files in each, and at most what a bot
    may upload at once (so no more than that is read into memory for one request)."""
    kinds = {upload.kind for upload in uploads}
    if len(uploads) > 1 and not (kinds <= {"photo", "video"} or kinds == {"audio"}):
        uploads = [Upload("document", upload.attachment, upload.stored) for upload in uploads]
    out: list[list[Upload]] = []
    size = 0
    for upload in uploads:
        if not out or len(out[-1]) == ALBUM_LIMIT or size + upload.attachment.size > UPLOAD_LIMIT:
            out.append([])
            size = 0
        out[-1].append(upload)
        size += upload.attachment.size
    return out


class FileSender:
    """Sends hub messages with files to one chat at a time (called from the chat's lane)."""

    def __init__(self, session: Session, calls: Calls, outbound: Outbound) -> None:
        self._session = session
        self._calls = calls
        self._outbound = outbound

    async def post(self, chat: ChatKey, message: Message, thread: int | None, reply_mid: int | None) -> None:
        """Send ``message``'s text and files to ``chat``, each Telegram message mapped to it."""
        uploads, notes = await self._load(message.attachments)
        text = "\n".join(part for part in (message.text.strip(), *notes) if part)
        captions = await self._outbound.render(message, text=text, limit=CAPTION_LIMIT) if text else []
        if not uploads or len(captions) > 1:
            await self._send_text(chat, message, text, reply_mid, thread)
            if not uploads:
                return
            captions, reply_mid = [], None  # the files follow the text
        names = ", ".join(upload.attachment.name for upload in uploads)
        caption = captions[0] if captions else await self._caption(message, names)
        captioned = False
        refused: list[str] = []
        for album in albums(uploads):
            sent = await self._send_album(chat, album, None if captioned else caption, reply_mid, thread)
            if not sent:
                refused.extend(upload.attachment.name for upload in album)
            for position, one in enumerate(sent):
                await self._map(message, one, "item" if captioned or position else "caption")
            captioned = captioned or bool(sent)
        if refused:  # never dropped unsaid: the text (unless a caption carried it) and which files did not go
            them, where = ("these files", "they are") if len(refused) > 1 else ("this file", "it is")
            words = f"[{', '.join(refused)} — Telegram did not take {them}; {where} in the chatbus chat]"
            body = words if captioned or len(captions) != 1 else f"{text}\n{words}"
            await self._send_text(chat, message, body, None if captioned else reply_mid, thread)

    async def _caption(self, message: Message, text: str) -> Rendered:
        return (await self._outbound.render(message, text=text, limit=CAPTION_LIMIT))[0]

    async def _load(self, attachments: tuple[Attachment, ...]) -> tuple[list[Upload], list[str]]:
        """The files to send (their bytes are read as each album goes), and a note for each that cannot be."""
        hub = self._session.hub
        uploads: list[Upload] = []
        notes: list[str] = []
        for attachment in attachments:
            if attachment.size > UPLOAD_LIMIT:
                notes.append(f"[{attachment.name}, {human_size(attachment.size)} — too big for a Telegram bot to "
                             "send; it is in the chatbus chat]")  # fmt: skip
                continue
            stored = await hub.files.open(attachment.id) if hub is not None else None
            if stored is None:
                notes.append(f"[{attachment.name} — no longer kept in the chatbus chat]")
            else:
                uploads.append(Upload(kind_of(attachment), attachment, stored))
        return uploads, notes

    async def _send_text(
        self, chat: ChatKey, message: Message, text: str, reply_mid: int | None, thread: int | None
    ) -> None:
        """The text as messages of its own, each part a reply to the one before."""
        for part in await self._outbound.render(message, text=text):
            sent = await self._calls.send(chat, part, reply_mid, thread)
            if sent is None:
                return
            await self._map(message, sent, None)
            reply_mid = sent.message_id

    async def _map(self, message: Message, sent: TgMessage, role: str | None) -> None:
        store = self._session.store()
        self._outbound.remember(message.id, sent.chat.id, sent.message_id)
        await store.map_external(NAME, message.id, external_id(sent.chat.id, sent.message_id))
        if role is not None:
            await store.set_state(album_key(sent.chat.id, sent.message_id), role)

    async def _send_album(
        self, chat: ChatKey, album: list[Upload], caption: Rendered | None, reply_mid: int | None, thread: int | None
    ) -> list[TgMessage]:
        """One file or one album; files Telegram will not take as photos or videos go again as documents."""
        data = [await upload.stored.read_all() for upload in album]
        sent = await self._try(chat, album, data, caption, reply_mid, thread)
        if sent is None and any(upload.kind != "document" for upload in album):
            log.info("telegram: sending %d file(s) to chat %s again as documents", len(album), chat)
            album = [Upload("document", upload.attachment, upload.stored) for upload in album]
            sent = await self._try(chat, album, data, caption, reply_mid, thread)
        return sent or []

    async def _try(
        self, chat: ChatKey, album: list[Upload], data: list[bytes], caption: Rendered | None, reply_mid: int | None,
        thread: int | None,
    ) -> list[TgMessage] | None:  # fmt: skip
        bot, state = self._session.live_bot(), self._session.state

        def common(attempt: Attempt) -> dict[str, Any]:
            reply = ReplyParameters(attempt.reply_mid, allow_sending_without_reply=True) if attempt.reply_mid else None
            text = attempt.text if caption is not None else None
            return {"chat_id": state.current(chat), "caption": text, "parse_mode": attempt.parse_mode if text else None,
                    "reply_parameters": reply, "message_thread_id": thread}  # fmt: skip

        if len(album) == 1:
            one = album[0]
            sender: Callable[..., Awaitable[TgMessage]] = getattr(bot, f"send_{one.kind}")

            async def single(attempt: Attempt) -> list[TgMessage]:
                return [await sender(**{one.kind: data[0]}, filename=one.attachment.name, **common(attempt))]

            return await self._calls.upload(_METHODS[one.kind], chat, single, caption, reply_mid)

        async def group(attempt: Attempt) -> list[TgMessage]:
            media = [_INPUT[u.kind](body, filename=u.attachment.name) for u, body in zip(album, data, strict=True)]
            return list(await bot.send_media_group(media=media, **common(attempt)))

        return await self._calls.upload("sendMediaGroup", chat, group, caption, reply_mid, len(album))

    # edits ----------------------------------------------------------------------------------
    async def edit(self, chat: ChatKey, message: Message, mine: list[External]) -> list[External]:
        """Edit the caption where ``message``'s files went; the text messages sent before them are returned."""
        store = self._session.store()
        texts: list[External] = []
        caption_at: External | None = None
        for ext in mine:
            role = await store.get_state(album_key(ext.chat, ext.message_id))
            if role is None:
                texts.append(ext)
            elif role == "caption":
                caption_at = ext
        if caption_at is not None and not texts:
            names = ", ".join(attachment.name for attachment in message.attachments)
            parts = await self._outbound.render(message, text=message.text.strip() or names, limit=CAPTION_LIMIT - 1)
            part = parts[0] if len(parts) == 1 else Rendered(parts[0].html + "…", parts[0].plain + "…")
            await self._calls.edit_caption(chat, caption_at.message_id, part)
        return texts
