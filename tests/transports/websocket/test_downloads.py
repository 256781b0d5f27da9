"""``GET /files/<id>/<name>``: files read back whole or in ranges, with headers that keep them from acting as pages."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from typing import Any

import pytest
from PIL import Image

from chatbus import Settings

from .filehelpers import jpeg, png
from .helpers import running
from .test_uploads import client, error_of, upload

SAFE = {"x-content-type-options": "nosniff", "content-security-policy": "default-src 'none'; sandbox"}


async def stored(port: int, name: str, data: bytes, kind: str) -> dict[str, Any]:
    answer = await upload(port, name, data, kind)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def test_a_picture_is_shown_inline_and_other_files_are_saved() -> None:
    async with running() as server, client(server.port) as http:
        picture = await stored(server.port, "dot.png", png(), "image/png")
        text = await stored(server.port, "naïve notes.txt", b"<script>alert(1)</script>", "text/plain")
        answer = await http.get(picture["url"])
        assert answer.status_code == 200 and answer.content == png()
        assert answer.headers["content-type"] == "image/png"
        assert answer.headers["content-disposition"].startswith("inline;")
        assert answer.headers["etag"] == f'"{picture["id"]}"'
        assert SAFE.items() <= answer.headers.items()
        answer = await http.get(text["url"])
        assert answer.content == b"<script>alert(1)</script>"
        assert answer.headers["content-type"] == "text/plain"
        assert SAFE.items() <= answer.headers.items()
        disposition = answer.headers["content-disposition"]
        assert disposition.startswith("attachment;") and "filename*=UTF-8''na%C3%AFve%20notes.txt" in disposition
        head = await http.head(text["url"])
        assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == "25"


async def test_ranges_resume_and_seek() -> None:
    data = os.urandom(300_000)
    async with running() as server, client(server.port) as http:
        url = (await stored(server.port, "clip.zip", data, "application/zip"))["url"]
        for asked, first, last in (
            ("bytes=0-99", 0, 99),
            ("bytes=299990-", 299_990, 299_999),
            ("bytes=-10", 299_990, 299_999),
            ("bytes=100-999999", 100, 299_999),
        ):
            answer = await http.get(url, headers={"Range": asked})
            assert answer.status_code == 206, asked
            assert answer.headers["content-range"] == f"bytes {first}-{last}/300000"
            assert answer.content == data[first : last + 1]
        answer = await http.get(url, headers={"Range": "bytes=300000-"})
        assert answer.status_code == 416 and answer.headers["content-range"] == "bytes */300000"
        assert error_of(answer)["code"] == "RANGE_NOT_SATISFIABLE"
        # Several ranges, another unit, or a stale If-Range: the whole file.
        for headers in (
            {"Range": "bytes=0-1,5-6"},
            {"Range": "lines=1-2"},
            {"Range": "bytes=0-1", "If-Range": '"old"'},
        ):
            answer = await http.get(url, headers=headers)
            assert answer.status_code == 200 and answer.content == data
        etag = answer.headers["etag"]
        answer = await http.get(url, headers={"Range": "bytes=0-1", "If-Range": etag})
        assert answer.status_code == 206
        answer = await http.get(url, headers={"If-None-Match": etag})
        assert answer.status_code == 304 and answer.content == b""
        # A cache that kept the file must not learn from the 304 that it is empty.
        assert "content-length" not in answer.headers


@pytest.mark.parametrize(
    "path",
    [
        "/files/" + "0" * 32 + "/nothing.txt",
        "/files/not-an-id/a.txt",
        "/files/",
        "/files/{id}/another-name.txt",
        "/files/{id}",
        "/files/{id}/a.txt/../../etc/passwd",
    ],
)
async def test_unknown_files_are_404(path: str) -> None:
    async with running() as server, client(server.port) as http:
        known = await stored(server.port, "a.txt", b"hello", "text/plain")
        answer = await http.get(path.format(id=known["id"]))
        assert answer.status_code == 404
        error = error_of(answer)
        assert error["code"] == "NOT_FOUND" and "send it again" in error["message"]


async def test_reading_needs_only_the_url_in_token_mode() -> None:
    """An <img> cannot send a token: the unguessable URL is what lets a reader in (see downloads.py)."""
    settings = Settings.isolated(db=":memory:", auth={"mode": "token", "tokens": {"s3cret": {"userId": "alice"}}})
    async with running(settings=settings) as server, client(server.port) as http:
        answer = await upload(server.port, "dot.png", png(), "image/png", {"Authorization": "Bearer s3cret"})
        url = answer.json()["url"]
        assert (await http.get(url)).content == png()
        assert (await http.get(url.replace(url[7:11], "ffff"))).status_code == 404


async def test_a_thumbnail_stands_upright_and_carries_no_metadata() -> None:
    # 600 x 300, black on the left; EXIF orientation 6 means "turn 90 degrees clockwise to show".
    photo = jpeg(600, 300, orientation=6, gps=True)
    assert b"ChatbusCam" in photo
    async with running() as server, client(server.port) as http:
        body = await stored(server.port, "photo.jpg", photo, "image/jpeg")
        answer = await http.get(body["thumbnailUrl"])
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
        assert SAFE.items() <= answer.headers.items()
        thumb = Image.open(io.BytesIO(answer.content))
        assert thumb.size == (200, 400)  # upright, within 400 x 400
        assert thumb.getpixel((100, 20))[0] < 40 and thumb.getpixel((100, 380))[0] > 215  # black came to the top
        assert not thumb.getexif() and "icc_profile" not in thumb.info
        assert b"ChatbusCam" not in answer.content and b"Exif" not in answer.content
        # Kept: the next request is the same bytes, from the files folder.
        kept = list((server.hub.files.directory / "thumbnails").rglob(f"{body['id']}.*"))
        assert [p.read_bytes() for p in kept] == [answer.content]
        assert (await http.get(body["thumbnailUrl"])).content == answer.content


async def test_a_transparent_picture_keeps_its_transparency_and_other_files_have_no_thumbnail() -> None:
    async with running() as server, client(server.port) as http:
        body = await stored(server.port, "glass.png", png(1000, 500, "RGBA", (0, 0, 255, 60)), "image/png")
        answer = await http.get(body["thumbnailUrl"])
        thumb = Image.open(io.BytesIO(answer.content))
        assert answer.headers["content-type"] == "image/png" and thumb.mode == "RGBA" and thumb.size == (400, 200)
        assert thumb.getpixel((10, 10))[3] == 60
        text = await stored(server.port, "a.txt", b"hello", "text/plain")
        answer = await http.get(text["url"] + "?thumb=1")
        assert answer.status_code == 404 and error_of(answer)["code"] == "NOT_FOUND"


async def test_a_large_file_is_streamed_to_a_slow_reader() -> None:
    data = os.urandom(8 * 1024 * 1024)
    async with running() as server, client(server.port) as http:
        url = (await stored(server.port, "big.zip", data, "application/zip"))["url"]
        got = bytearray()
        async with http.stream("GET", url) as answer:
            async for chunk in answer.aiter_bytes(65536):
                got += chunk
                await asyncio.sleep(0)
        assert bytes(got) == data


@pytest.mark.parametrize(
    ("kind", "mode", "thumb_type"),
    [("GIF", "P", "image/png"), ("WEBP", "RGB", "image/jpeg"), ("PNG", "L", "image/jpeg")],
)
async def test_thumbnails_of_every_picture_type_browsers_show(kind: str, mode: str, thumb_type: str) -> None:
    picture = Image.new(mode, (900, 300))
    out = io.BytesIO()
    options = {"transparency": 0} if kind == "GIF" else {}
    picture.save(out, kind, **options)
    async with running() as server, client(server.port) as http:
        body = await stored(server.port, f"p.{kind.lower()}", out.getvalue(), f"image/{kind.lower()}")
        head = await http.head(body["thumbnailUrl"])
        assert head.status_code == 200 and head.content == b"" and head.headers["content-type"] == thumb_type
        answer = await http.get(body["thumbnailUrl"])
        assert answer.headers["content-type"] == thumb_type and int(head.headers["content-length"]) == len(
            answer.content
        )
        assert Image.open(io.BytesIO(answer.content)).size == (400, 133)


_PEAK = """
import resource, sys
from pathlib import Path
from PIL import Image
from chatbus.transports.websocket.thumbnails import make_thumbnail
Image.new("RGB", (16, 16)).save(sys.argv[1] + ".warm.png")
make_thumbnail(Path(sys.argv[1] + ".warm.png"), 10**9)  # Pillow's own buffers, once
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
make_thumbnail(Path(sys.argv[1]), 10**9)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""


def test_a_thumbnail_of_a_large_picture_holds_no_second_copy_of_it(tmp_path: Any) -> None:
    # 4000 x 4000 with transparency: 64 MB of pixels once decoded. Turning the whole picture
    # before making it small took 2.5 times as much; now 1.5.
    picture = tmp_path / "large.png"
    image = Image.new("RGBA", (4000, 4000), (0, 0, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(picture, exif=exif)
    pixels = 4000 * 4000 * 4
    out = subprocess.run([sys.executable, "-c", _PEAK, str(picture)], capture_output=True, text=True, check=True)
    grew = int(out.stdout.strip())
    assert grew < 2 * pixels, f"{grew / 2**20:.0f} MiB for {pixels / 2**20:.0f} MiB of pixels"
