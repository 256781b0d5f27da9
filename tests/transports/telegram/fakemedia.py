"""The fake Bot API's files: people's media in updates, ``getFile`` and downloads, and the bot's uploads.

Files people post are kept by id: ``post_media`` makes a message with a
photo (several sizes, the largest last, as Telegram sends them), a
document, a voice note, a video, an audio or an animation, each with its
``file_size``; ``getFile`` answers its ``file_path`` (400 "file is too big"
past the 20 MB a bot may download, as Telegram does) and the file is served
at ``/file/bot<token>/<file_path>``. ``sendPhoto``, ``sendDocument``,
``sendVideo``, ``sendAudio``, ``sendVoice`` and ``sendMediaGroup`` take python-telegram-bot's
multipart uploads by Telegram's rules (a caption of at most 1,024
characters, an album of 2-10 items, documents and audio only with their own
kind); ``editMessageCaption`` changes a media message's caption.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .fakehttp import Upload
from .fakemethods import ApiError, FakeChat, Sent

__all__ = ["DOWNLOAD_LIMIT", "FakeFile", "MediaMethods"]

#: The most a bot may download through the Bot API.
DOWNLOAD_LIMIT = 20 * 1024 * 1024
_SEND_KINDS = {"sendPhoto": "photo", "sendDocument": "document", "sendVideo": "video", "sendAudio": "audio",
               "sendVoice": "voice"}  # fmt: skip
_GROUP_KINDS = {"photo": "visual", "video": "visual", "document": "document", "audio": "audio"}


@dataclass
class FakeFile:
    """A file the fake Telegram keeps: its bytes (absent for one only described as huge) and its path."""

    file_id: str
    unique_id: str
    data: bytes | None
    size: int
    path: str


def _dimensions(data: bytes) -> tuple[int, int]:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return image.width, image.height
    except Exception:  # noqa: BLE001 - not an image Pillow reads: any size will do for the fake
        return 100, 100


class MediaMethods:
    """Mixed into the fake server: files in people's messages, downloads, and the bot's uploads."""

    bot: dict[str, Any]
    token: str
    sent: list[Sent]
    files: dict[str, FakeFile]
    downloads: list[str]  # file paths downloaded, in order

    if TYPE_CHECKING:  # from ChatMethods and FakeBotAPI

        def _writable(self, chat_id: Any) -> FakeChat: ...
        def _visible(self, params: dict[str, Any], key: str = "text") -> tuple[str, str, list[dict[str, Any]]]: ...
        def _reply_to(self, chat: FakeChat, params: dict[str, Any]) -> int | None: ...
        def _check_flood(self, chat: FakeChat) -> None: ...
        def post(self, chat_id: int, text: str | None, *, user: dict[str, Any], **extra: Any) -> dict[str, Any]: ...

    # people's files ---------------------------------------------------------------------------
    def add_file(self, data: bytes | None, *, folder: str = "documents", suffix: str = "", size: int | None = None
                 ) -> FakeFile:  # fmt: skip
        """Keep a file; ``size`` (with ``data`` None) describes one too big to have."""
        number = len(self.files) + 1
        stored = FakeFile(f"file-{number}", f"unique-{number}", data, size if size is not None else len(data or b""),
                          f"{folder}/file_{number}{suffix}")  # fmt: skip
        self.files[stored.file_id] = stored
        return stored

    def post_media(
        self, chat_id: int, kind: str, data: bytes | None, *, user: dict[str, Any], caption: str | None = None,
        file_name: str | None = None, mime_type: str | None = None, file_size: int | None = None,
        size_known: bool = True, **extra: Any,
    ) -> dict[str, Any]:  # fmt: skip
        """Someone posts a file of ``kind`` (photo, document, voice, video, audio, animation) with ``caption``
        (``size_known=False``: the update does not say how big it is, as Telegram sometimes does)."""
        suffix = "." + file_name.rsplit(".", 1)[-1] if file_name and "." in file_name else ""
        stored = self.add_file(data, folder=f"{kind}s", suffix=suffix, size=file_size)
        described: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.unique_id,
                                     "file_size": stored.size}  # fmt: skip
        fields: dict[str, Any] = dict(extra)
        if kind == "photo":
            width, height = _dimensions(data or b"")
            thumb = self.add_file(b"a small copy", folder="photos", suffix=".jpg")
            small = {"file_id": thumb.file_id, "file_unique_id": thumb.unique_id, "file_size": thumb.size,
                     "width": max(1, width // 4), "height": max(1, height // 4)}  # fmt: skip
            fields["photo"] = [small, {**described, "width": width, "height": height}]
        else:
            if file_name:
                described["file_name"] = file_name
            if mime_type:
                described["mime_type"] = mime_type
            if kind in ("video", "animation"):
                described.update(width=640, height=480, duration=3)
            if kind in ("voice", "audio"):
                described["duration"] = 3
            fields[kind] = described
        if not size_known:
            described.pop("file_size")
        if caption is not None:
            fields["caption"] = caption
        return self.post(chat_id, None, user=user, **fields)

    async def _api_getFile(self, params: dict[str, Any]) -> Any:
        stored = self.files.get(str(params.get("file_id")))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if stored.size > DOWNLOAD_LIMIT:
            raise ApiError(400, "Bad Request: file is too big")
        return {"file_id": stored.file_id, "file_unique_id": stored.unique_id, "file_size": stored.size,
                "file_path": stored.path}  # fmt: skip

    def download(self, token: str, path: str) -> tuple[int, bytes]:
        """``GET /file/bot<token>/<path>``: the file's bytes, or 404."""
        stored = next((f for f in self.files.values() if f.path == path), None)
        if token != self.token or stored is None or stored.data is None:
            return 404, b'{"ok":false,"error_code":404,"description":"Not Found"}'
        self.downloads.append(path)
        return 200, stored.data

    # the bot's uploads --------------------------------------------------------------------------
    def _media_result(self, chat: FakeChat, kind: str, upload: Upload, message_id: int) -> dict[str, Any]:
        stored = self.add_file(upload.data, folder=f"{kind}s")
        described: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.unique_id,
                                     "file_size": stored.size}  # fmt: skip
        if kind == "photo":
            width, height = _dimensions(upload.data)
            return {"photo": [{**described, "width": width, "height": height}]}
        if kind == "video":
            described.update(width=640, height=480, duration=3)
        if kind in ("audio", "voice"):
            described["duration"] = 3
        if kind != "voice":
            described["file_name"] = upload.filename
        described["mime_type"] = upload.content_type
        return {kind: described}

    def _upload(self, params: dict[str, Any], kind: str, value: Any = None) -> Upload:
        """The file uploaded as ``kind`` (in an album, ``value`` is the item's ``attach://<field>``)."""
        value = params.get(kind) if value is None else value
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value.removeprefix("attach://"))
        if not isinstance(value, Upload):
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        if not value.data:
            raise ApiError(400, "Bad Request: file must be non-empty")
        if kind == "photo" and len(value.data) > 10 * 1024 * 1024:
            raise ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
        return value

    def _record(self, chat: FakeChat, kind: str, upload: Upload, params: dict[str, Any], caption: dict[str, Any],
                group: str | None = None) -> dict[str, Any]:  # fmt: skip
        """One media message the bot sent: in ``sent``, and as the Bot API answers it."""
        markup, text, entities = self._visible(caption, "caption")
        reply_to = self._reply_to(chat, params)
        thread = int(params["message_thread_id"]) if params.get("message_thread_id") is not None else None
        message_id = chat.new_message_id()
        self.sent.append(Sent(chat.id, message_id, text.strip(), markup, caption.get("parse_mode"), entities,
                              reply_to, time.monotonic(), thread, kind=kind, files=[upload], group=group))  # fmt: skip
        result: dict[str, Any] = {"message_id": message_id, "date": int(time.time()), "chat": chat.as_dict(),
                                  "from": self.bot, **self._media_result(chat, kind, upload, message_id)}  # fmt: skip
        if text.strip():
            result["caption"] = text.strip()
        if entities:
            result["caption_entities"] = entities
        if group is not None:
            result["media_group_id"] = group
        if thread is not None:
            result.update(message_thread_id=thread, is_topic_message=True)
        return result

    async def _send_one(self, method: str, params: dict[str, Any]) -> Any:
        chat = self._writable(params.get("chat_id"))
        kind = _SEND_KINDS[method]
        upload = self._upload(params, kind)
        self._check_flood(chat)
        return self._record(chat, kind, upload, params, params)

    async def _api_sendPhoto(self, params: dict[str, Any]) -> Any:
        return await self._send_one("sendPhoto", params)

    async def _api_sendDocument(self, params: dict[str, Any]) -> Any:
        return await self._send_one("sendDocument", params)

    async def _api_sendVideo(self, params: dict[str, Any]) -> Any:
        return await self._send_one("sendVideo", params)

    async def _api_sendAudio(self, params: dict[str, Any]) -> Any:
        return await self._send_one("sendAudio", params)

    async def _api_sendVoice(self, params: dict[str, Any]) -> Any:
        return await self._send_one("sendVoice", params)

    async def _api_sendMediaGroup(self, params: dict[str, Any]) -> Any:
        chat = self._writable(params.get("chat_id"))
        media = params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise ApiError(400, "Bad Request: wrong number of media in the album: 2-10 are allowed")
        groups = {_GROUP_KINDS.get(str(item.get("type"))) for item in media}
        if None in groups or len(groups) > 1:
            raise ApiError(400, "Bad Request: documents and audio can't be mixed with other media types")
        uploads = [self._upload(params, str(item["type"]), item.get("media") or "") for item in media]
        for item in media:
            self._visible(item, "caption")  # the whole album is refused for one bad caption
        self._check_flood(chat)
        group = f"album-{len(self.sent) + 1}"
        return [self._record(chat, str(item["type"]), upload, params, item, group)
                for item, upload in zip(media, uploads, strict=True)]  # fmt: skip

    async def _api_editMessageCaption(self, params: dict[str, Any]) -> Any:
        chat = self._writable(params.get("chat_id"))
        sent = next((s for s in self.sent if s.chat_id == chat.id and s.message_id == int(params["message_id"])),
                    None)  # fmt: skip
        if sent is None or sent.deleted:
            raise ApiError(400, "Bad Request: message to edit not found")
        if sent.kind == "text":
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        markup, text, entities = self._visible(params, "caption")
        if text.strip() == sent.text and markup == sent.markup:
            raise ApiError(400, "Bad Request: message is not modified: specified new message content and reply "
                           "markup are exactly the same as a current content and reply markup of the message")  # fmt: skip
        sent.edits.append(sent.text)
        sent.text, sent.markup, sent.entities = text.strip(), markup, entities
        return {"message_id": sent.message_id, "date": int(time.time()), "edit_date": int(time.time()),
                "chat": chat.as_dict(), "from": self.bot, "caption": text.strip()}  # fmt: skip
