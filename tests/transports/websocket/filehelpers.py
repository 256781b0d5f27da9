"""Files for the ``/files`` tests: pictures made with Pillow, hostile ones made by hand, raw HTTP."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image

from chatbus import Hub

from .helpers import TIMEOUT

__all__ = [
    "BOUNDARY",
    "form",
    "jpeg",
    "nothing_stored",
    "png",
    "png_bomb",
    "raw_exchange",
    "read_answer",
]

BOUNDARY = "chatbus-test-boundary"


def png(width: int = 64, height: int = 48, mode: str = "RGB", color: Any = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), color).save(out, "PNG")
    return out.getvalue()


def jpeg(width: int, height: int, *, orientation: int | None = None, gps: bool = False) -> bytes:
    """A JPEG whose left half is black and right half white, with EXIF orientation and a GPS position."""
    image = Image.new("RGB", (width, height), "white")
    image.paste((0, 0, 0), (0, 0, width // 2, height))
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if gps:
        exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 17.0)}
    exif[0x010F] = "ChatbusCam"
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), quality=90)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(side: int = 30_000) -> bytes:
    """A valid 1-bit PNG of ``side`` x ``side`` white pixels that compresses to a few tens of kilobytes."""
    row = b"\x00" + b"\xff" * ((side + 7) // 8)
    packer = zlib.compressobj(9)
    parts = [packer.compress(row) for _ in range(side)]
    parts.append(packer.flush())
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def form(name: str, data: bytes, content_type: str = "application/octet-stream", *, field: str = "file") -> bytes:
    """A multipart/form-data body (boundary :data:`BOUNDARY`) with one file."""
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def post_head(port: int, length: int | None, **headers: str) -> bytes:
    lines = [
        "POST /files HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        "X-Chatbus-User: alice",
    ]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_answer(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


async def raw_exchange(
    port: int, data: bytes, *, end: bool = True, timeout: float = TIMEOUT
) -> tuple[int, dict[str, str], Any]:
    """Send ``data`` on a new connection (then shut down writing when ``end``); the answer, its body as JSON."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(data)
            await writer.drain()
            if end:
                writer.write_eof()
            raw = await reader.read()
        finally:
            writer.close()
    status, headers, body = read_answer(raw)
    return status, headers, json.loads(body) if body else None


async def nothing_stored(hub: Hub) -> bool:
    """No file is known to the store and no byte is left in the files folder (spool included)."""
    if await hub.store.files_total() != 0:
        return False
    folder: Path = hub.files.directory
    return not [p for p in folder.rglob("*") if p.is_file()]
