"""Small copies of pictures (``/files/<id>/<name>?thumb=1``), made with Pillow and kept.

A thumbnail fits in :data:`BOX` pixels each way, is turned the way the
camera's EXIF orientation says (a phone's portrait photo stands upright) and
carries no metadata at all: no EXIF (no GPS position, no camera serial), no
ICC profile, no comments. Pictures with transparency become PNG, the others
JPEG. Each is made once, on first request, and kept in the files folder under
``thumbnails/`` (removed with the folder); at most :data:`AT_ONCE` are made at
the same time, in threads, so many first views cannot take every core.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import tempfile
import weakref
from pathlib import Path
from typing import BinaryIO, Final

from PIL import Image, ImageOps, UnidentifiedImageError

from chatbus.core.files import Files
from chatbus.core.message import Attachment

__all__ = ["AT_ONCE", "BOX", "make_thumbnail", "thumbnail"]

log = logging.getLogger("chatbus.transports.websocket")

#: Largest width and height of a thumbnail, in pixels.
BOX: Final = 400
#: Thumbnails made at the same time, at most.
AT_ONCE: Final = 2
_KINDS: Final = {"png": "image/png", "jpg": "image/jpeg"}
_makers: weakref.WeakKeyDictionary[Files, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def make_thumbnail(source: Path | BinaryIO, max_pixels: int) -> tuple[bytes, str]:
    """The thumbnail of the picture in ``source`` and its suffix (``png`` or ``jpg``).

    ``ValueError`` when it is not a picture Pillow can read or has more than ``max_pixels``.
    """
    try:
        with Image.open(source) as image:
            if image.width * image.height > max_pixels:
                raise ValueError("too many pixels")
            image.draft("RGB", (BOX * 2, BOX * 2))  # JPEG: decode at a smaller scale, much faster
            # Made small first, then turned: turning the whole picture would hold a second copy of
            # every pixel (a picture at the pixel limit took 0.8 GB instead of 0.3). The box is
            # square, so a quarter turn after fits it as well.
            image.thumbnail((BOX, BOX))
            upright = ImageOps.exif_transpose(image)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ValueError(str(exc)) from exc
    alpha = upright.mode in ("RGBA", "LA", "PA") or (upright.mode == "P" and "transparency" in upright.info)
    clean = upright.convert("RGBA" if alpha else "RGB")
    clean.info = {}  # no EXIF, ICC profile or comment is carried over
    out = io.BytesIO()
    if alpha:
        clean.save(out, "PNG", optimize=True)
        return out.getvalue(), "png"
    clean.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue(), "jpg"


def _cached(folder: Path, file_id: str) -> tuple[bytes, str] | None:
    for suffix, kind in _KINDS.items():
        with contextlib.suppress(FileNotFoundError):
            return (folder / f"{file_id}.{suffix}").read_bytes(), kind
    return None


def _keep(folder: Path, file_id: str, data: bytes, suffix: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, suffix=".part")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(temporary, folder / f"{file_id}.{suffix}")


async def thumbnail(files: Files, attachment: Attachment) -> tuple[bytes, str] | None:
    """The thumbnail of a picture and its content type; None for a file that is not one."""
    if not attachment.is_image:
        return None
    folder = files.directory / "thumbnails" / attachment.id[:2]
    found = await asyncio.to_thread(_cached, folder, attachment.id)
    if found is not None:
        return found
    makers = _makers.setdefault(files, asyncio.Semaphore(AT_ONCE))
    async with makers:
        found = await asyncio.to_thread(_cached, folder, attachment.id)  # made while this one waited
        if found is not None:
            return found
        made = await _make(files, attachment)
        if made is None:
            return None
        data, suffix = made
        await asyncio.to_thread(_keep, folder, attachment.id, data, suffix)
        return data, _KINDS[suffix]


async def _make(files: Files, attachment: Attachment) -> tuple[bytes, str] | None:
    stored = await files.open(attachment.id)
    if stored is None:
        return None
    limit = files.settings.max_image_pixels
    try:
        if stored.path is not None:
            return await asyncio.to_thread(make_thumbnail, stored.path, limit)
        with tempfile.TemporaryFile(dir=files.directory) as copy:  # a backend that is not a local folder
            async for chunk in stored.read():
                await asyncio.to_thread(copy.write, chunk)
            await asyncio.to_thread(copy.seek, 0)
            return await asyncio.to_thread(make_thumbnail, copy, limit)
    except ValueError as exc:
        log.warning("files: no thumbnail for %s (%s): %s", attachment.id, attachment.content_type, exc)
        return None
