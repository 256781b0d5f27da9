"""Files people post in Telegram, fetched into the hub's files.

A photo (its largest size), a document, a voice note, a video, an audio
file, a GIF or a video message is fetched with python-telegram-bot
(``get_file``, then the download) and kept by ``hub.files``, so the web chat
shows it as an attachment and the caption as the message's text. The Bot API
lets a bot download at most 20 MB: a larger file, one that cannot be fetched
after a few tries, or one the hub does not keep (its type, its size, no room)
still arrives as a message, with a note in place of the file that names it
and says why (``[document report.pdf, 48 MiB — too big for the bot to fetch;
open it in Telegram]``).

The download address python-telegram-bot builds holds the bot token: it is
never logged, stored or shown; the web chat only ever sees the hub's own
``/files/<id>/<name>`` addresses.
"""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass
from datetime import datetime

from telegram import Message as TgMessage
from telegram.constants import FileSizeLimit

from chatbus.core.errors import FileRefused
from chatbus.core.files_rules import clean_name, human_size
from chatbus.core.message import Attachment

from .content import media_placeholder
from .errors import Backoff, Outcome, Stopped, classify
from .session import Session

__all__ = ["DOWNLOAD_LIMIT", "NOTE_END", "Fetcher", "Media", "album_key", "media_of", "note"]

log = logging.getLogger("chatbus.telegram")

#: The largest file a bot may download through the Bot API.
DOWNLOAD_LIMIT = int(FileSizeLimit.FILESIZE_DOWNLOAD)
#: How the note that stands for a file ends.
NOTE_END = "; open it in Telegram]"
#: Tries of one download before its note says it could not be fetched.
_TRIES = 3
#: Downloads at once (the bot has 8 connections for everything it does).
_PARALLEL = 3
#: Seconds one download may take (a 20 MB file on a slow link).
_DOWNLOAD_TIMEOUT = 120.0
#: Why the hub did not keep a file, by ``FileRefused.code``.
_REFUSED = {
    "FILE_TYPE": "files of this type are not kept in the chatbus chat",
    "FILE_TOO_BIG": "larger than the chatbus chat keeps",
    "STORAGE_FULL": "the chatbus chat has no room left for files",
    "INVALID_FILE": "not a file the chatbus chat can keep",
}


@dataclass(frozen=True, slots=True)
class Media:
    """The file a Telegram message carries, as far as its update describes it."""

    kind: str
    file_id: str
    #: What the file is called in the hub (Telegram's name, or one made from the kind and date).
    name: str
    content_type: str | None
    #: Bytes, when Telegram said (it usually does).
    size: int | None
    #: How the message's placeholder names it: ``document report.pdf``, ``photo``, ``voice message``.
    label: str


def _stamp(message: TgMessage) -> str:
    when = message.date if isinstance(message.date, datetime) else None
    return when.strftime("%Y-%m-%d_%H-%M-%S") if when is not None else str(message.message_id)


def _media(message: TgMessage) -> tuple[str, object, str | None, str, str | None] | None:
    """(kind, the file object, its own name, a default name, its type) of the file in ``message``."""
    stamp = _stamp(message)
    if message.photo:
        largest = max(message.photo, key=lambda size: (size.width * size.height, size.file_size or 0))
        return "photo", largest, None, f"photo_{stamp}.jpg", "image/jpeg"
    for kind, default, extension in (
        ("document", "document", ""), ("video", "video", ".mp4"), ("animation", "animation", ".mp4"),
        ("audio", "audio", ".mp3"), ("voice", "voice", ".ogg"), ("video_note", "video_message", ".mp4"),
    ):  # fmt: skip
        found = getattr(message, kind, None)
        if found is not None:
            mime = getattr(found, "mime_type", None) or ("video/mp4" if kind == "video_note" else None)
            return kind, found, getattr(found, "file_name", None), f"{default}_{stamp}{extension}", mime
    return None


def media_of(message: TgMessage) -> Media | None:
    """The file ``message`` carries that the relay fetches, or None (text, a sticker, a place...)."""
    found = _media(message)
    if found is None:
        return None
    kind, item, own_name, default_name, mime = found
    file_id = getattr(item, "file_id", None)
    if not isinstance(file_id, str):
        return None
    size = getattr(item, "file_size", None)
    placeholder = media_placeholder(message) or f"[{kind}]"
    label = placeholder[1:-1] if placeholder.startswith("[") and placeholder.endswith("]") else placeholder
    if own_name and kind in ("video", "animation"):
        label = f"{label} {clean_name(own_name, default_name)}"  # a note names the file where it has a name
    return Media(
        kind=kind,
        file_id=file_id,
        name=clean_name(own_name, default_name) if own_name else default_name,
        content_type=mime,
        size=size if isinstance(size, int) else None,
        label=label,
    )


def album_key(chat: int | str, message_id: int) -> str:
    """Store key of a Telegram message's role for the relay: a person's album part (``album``), or
    the bot's photo or file holding the caption (``caption``) or not (``item``), ``files_out.py``."""
    return f"telegram:media:{chat}:{message_id}"


def note(media: Media, why: str) -> str:
    """The words that stand for a file the hub does not have: ``[document x.pdf, 48 MiB — why; open it in Telegram]``."""
    size = f", {human_size(media.size)}" if media.size else ""
    return f"[{media.label}{size} — {why}{NOTE_END}"


class Fetcher:
    """Fetches files from Telegram into ``hub.files``, a few at a time: downloads share the bot's
    connections with what it sends, and must leave it some."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._downloads = asyncio.Semaphore(_PARALLEL)

    async def fetch(self, media: Media, uploader: str) -> Attachment | str:
        """The file kept in the hub, or the note that stands for it (too big, not fetched, not kept)."""
        session = self._session
        hub = session.hub
        if hub is None:
            raise Stopped
        if media.size is not None and media.size > DOWNLOAD_LIMIT:
            return note(media, "too big for the bot to fetch")
        async with self._downloads:
            data = await self._download(media)
        if isinstance(data, str):
            return data
        try:
            return await hub.files.save_bytes(data, media.name, media.content_type, uploader)
        except FileRefused as exc:
            log.info("telegram: %s %s from %s not kept: %s", media.kind, media.name, uploader, exc)
            return note(media, _REFUSED.get(exc.code, "not kept in the chatbus chat"))

    async def _download(self, media: Media) -> bytes | str:
        """The file's bytes, or its note when Telegram will not give them."""
        session = self._session
        s = session.settings
        backoff = Backoff(s.retry_initial_delay, s.retry_max_delay)
        for attempt in range(1, _TRIES + 1):
            bot = session.live_bot()
            try:
                found = await bot.get_file(media.file_id)
                if found.file_size is not None and found.file_size > DOWNLOAD_LIMIT:
                    return note(media, "too big for the bot to fetch")
                out = io.BytesIO()
                await found.download_to_memory(out, read_timeout=_DOWNLOAD_TIMEOUT)
                return out.getvalue()
            except Exception as exc:  # noqa: BLE001 - a Bot API, network or library failure: classify decides
                failure = classify(exc)
            if "too big" in failure.detail.lower():
                return note(media, "too big for the bot to fetch")
            log.warning(
                "telegram: fetching %s %s failed (try %d of %d): %s", media.kind, media.name, attempt, _TRIES,
                session.condition.redact(failure.detail),
            )  # fmt: skip
            if failure.outcome in (Outcome.TOKEN_REJECTED, Outcome.REFUSED, Outcome.BROKEN):
                break
            if attempt < _TRIES:
                wait = failure.retry_after if failure.outcome is Outcome.FLOOD_WAIT else backoff.next()
                await session.sleep(min(wait, s.retry_max_delay * 4))
        return note(media, "could not be fetched from Telegram")
