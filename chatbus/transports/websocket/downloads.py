"""``GET /files/<id>/<name>`` (and ``HEAD``): a stored file, streamed from ``hub.files.open``.

Served so that a file can never act as a page of the chat: ``nosniff``, a
Content-Security-Policy of ``default-src 'none'; sandbox`` (an HTML or SVG
file opened directly runs no script and reaches nothing), and
``Content-Disposition: attachment`` (saved, not shown) for everything but
the pictures a browser shows safely (PNG, JPEG, GIF, WebP), which are
``inline``. One ``Range`` (``bytes=a-b``, ``a-``, ``-n``) is answered with
``206`` (a resumed download, a video seeking), one that cannot be met with
``416``; the ETag is the file's id (its bytes never change), so
``If-None-Match`` gets ``304`` and ``If-Range`` is honoured.
``?thumb=1`` gives a small copy of a picture (:mod:`.thumbnails`).

Who may read a file: whoever has its URL. The id is the first 128 bits of
the SHA-256 of the bytes and the name must match too, so a URL cannot be
guessed without the file's bytes; a URL reaches only those the chat showed it
to (message frames go to signed-in people only, in token mode to holders of a
token). That is what lets ``<img src>`` show pictures, which cannot send an
``Authorization`` header, without a token in any URL. Someone who already
has a file's bytes can tell whether this chat holds it too.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote

from chatbus.core.files import Files
from chatbus.core.message import INLINE_IMAGES, Attachment

from .exchange import Exchange, HttpError
from .thumbnails import thumbnail

__all__ = ["FILE_POLICY", "serve_file"]

#: The Content-Security-Policy of every file served.
FILE_POLICY: Final = "default-src 'none'; sandbox"
_PATH: Final = re.compile(r"/files/(?P<id>[0-9a-f]{32})/(?P<name>[^/]+)")
_RANGE: Final = re.compile(r"bytes=(?P<first>\d*)-(?P<last>\d*)")
_NOT_FOUND: Final = "There is no such file here; it may have been removed. Ask whoever shared it to send it again."


def _not_found() -> HttpError:
    return HttpError(404, "NOT_FOUND", _NOT_FOUND)


def disposition(attachment: Attachment) -> str:
    """``inline`` for the pictures a browser shows safely, else ``attachment``; with the name."""
    kind = "inline" if attachment.content_type in INLINE_IMAGES else "attachment"
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in attachment.name)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(attachment.name, safe='')}"


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` of a single ``Range``, None to send the whole file;
    ``HttpError(416)`` when it cannot be met. Several ranges are answered whole."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None  # another unit, or several ranges: the whole file is a valid answer
    first, last = match["first"], match["last"]
    if not first and not last:
        return None
    if not first:
        start, end = max(0, size - int(last)), size - 1
        if int(last) == 0:
            start = size
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return None  # not a valid range: ignored, as RFC 9110 says
    if start >= size or start > end:
        raise HttpError(
            416,
            "RANGE_NOT_SATISFIABLE",
            f"The file has {size} bytes; ask for a range within them.",
            {"Content-Range": f"bytes */{size}"},
        )
    return start, end


def _headers(attachment: Attachment, etag: str) -> list[tuple[str, str]]:
    return [
        ("Content-Type", attachment.content_type),
        ("ETag", etag),
        ("Cache-Control", "private, max-age=31536000, immutable"),
        ("Accept-Ranges", "bytes"),
        ("Content-Disposition", disposition(attachment)),
        ("Content-Security-Policy", FILE_POLICY),
        ("Cross-Origin-Resource-Policy", "same-origin"),
    ]


def _matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    return any(tag.strip() in (etag, "*", f"W/{etag}") for tag in header.split(","))


async def serve_file(exchange: Exchange, files: Files) -> None:
    """Answer a ``GET``/``HEAD`` below ``/files/``."""
    match = _PATH.fullmatch(exchange.path)
    if match is None:
        raise _not_found()
    attachment = await files.get(match["id"])
    if attachment is None or attachment.name != match["name"]:
        raise _not_found()
    if "thumb" in exchange.query:
        await _serve_thumbnail(exchange, files, attachment)
        return
    etag = f'"{attachment.id}"'
    headers = _headers(attachment, etag)
    if _matches(exchange.header("If-None-Match"), etag):
        await exchange.respond(304, [h for h in headers if h[0] != "Content-Type"])
        return
    size = attachment.size
    wanted = exchange.header("Range")
    if_range = exchange.header("If-Range")
    span = byte_range(wanted, size) if if_range is None or if_range.strip() == etag else None
    stored = await files.open(attachment.id)
    if stored is None:
        raise _not_found()
    if span is None:
        status, first, length = 200, 0, size
    else:
        status, first, length = 206, span[0], span[1] - span[0] + 1
        headers.append(("Content-Range", f"bytes {span[0]}-{span[1]}/{size}"))
    await exchange.start(status, [*headers, ("Content-Length", str(length))])
    if exchange.method != "HEAD":
        async for chunk in stored.read(first, length):
            await exchange.send(chunk)
    await exchange.end()


async def _serve_thumbnail(exchange: Exchange, files: Files, attachment: Attachment) -> None:
    made = await thumbnail(files, attachment)
    if made is None:
        raise HttpError(404, "NOT_FOUND", "This file has no small picture; open the file itself.")
    data, kind = made
    etag = f'"{attachment.id}-thumb"'
    if _matches(exchange.header("If-None-Match"), etag):
        await exchange.respond(304, [("ETag", etag)])
        return
    shown = Attachment(attachment.id, attachment.name, len(data), kind)
    headers = [h for h in _headers(shown, etag) if h[0] != "Accept-Ranges"]
    await exchange.respond(200, headers, data)
