"""What files are refused, and why: size, room, type, names, and pictures that are not pictures."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from chatbus import ConfigError, FileRefused, Hub, Settings
from chatbus.core.files_rules import clean_name, content_type_for, human_size, type_allowed
from chatbus.testing import make_hub


def picture(kind: str = "PNG", size: tuple[int, int] = (30, 20)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "teal").save(out, kind)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header says it is ``width`` x ``height`` pixels (a decompression bomb)."""
    data = bytearray(picture("PNG", (1, 1)))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + header))
    return bytes(data)


def with_files(**values: object) -> pytest.MarkDecorator:
    """Run the test with these ``[files]`` settings."""
    return pytest.mark.parametrize("hub", [values], indirect=True, ids=[""])


@pytest.fixture
async def hub(request: pytest.FixtureRequest) -> AsyncIterator[Hub]:
    settings = Settings.isolated(db=":memory:", files=getattr(request, "param", {}))
    async with make_hub(settings=settings) as running:
        yield running


def nothing_kept(hub: Hub) -> bool:
    return [path for path in hub.files.directory.rglob("*") if path.is_file()] == []


async def refused(hub: Hub, data: bytes, name: str, content_type: str | None) -> FileRefused:
    with pytest.raises(FileRefused) as caught:
        await hub.files.save_bytes(data, name, content_type, uploader="alice")
    return caught.value


@with_files(max_file_bytes=1000)
async def test_a_file_over_the_size_limit_is_refused_with_413_and_nothing_kept(hub: Hub) -> None:
    error = await refused(hub, b"x" * 1001, "big.txt", "text/plain")
    assert (error.code, error.status) == ("FILE_TOO_BIG", 413)
    assert str(error) == "The file is larger than 1000 bytes, the limit; send a smaller one."
    assert nothing_kept(hub) and await hub.store.files_total() == 0
    assert (await hub.files.save_bytes(b"x" * 1000, "fits.txt", "text/plain")).size == 1000


@with_files(max_total_bytes=2500)
async def test_past_the_total_limit_uploads_are_refused_with_507_but_known_files_still_pass(hub: Hub) -> None:
    first = await hub.files.save_bytes(b"a" * 2000, "a.txt", "text/plain")
    error = await refused(hub, b"b" * 1000, "b.txt", "text/plain")
    assert (error.code, error.status) == ("STORAGE_FULL", 507)
    assert "no room left for files" in str(error)
    assert await hub.files.save_bytes(b"a" * 2000, "again.txt", "text/plain") == first


async def test_types_outside_the_allow_list_are_refused_with_415(hub: Hub) -> None:
    error = await refused(hub, b"MZ\x90\x00", "setup.exe", "application/x-msdownload")
    assert (error.code, error.status) == ("FILE_TYPE", 415)
    assert str(error).startswith("Files of type application/x-msdownload are not accepted here; allowed: image/png,")
    error = await refused(hub, b"<svg/>", "logo.svg", "image/svg+xml")
    assert error.code == "FILE_TYPE"
    assert (await hub.files.save_bytes(b"OggS", "voice.ogg", "audio/ogg")).content_type == "audio/ogg"
    assert (await hub.files.save_bytes(b"{}", "a.json", "application/json; charset=utf-8")).content_type == (
        "application/json"
    )
    unknown = await refused(hub, b"\x00\x01", "blob", None)
    # Nobody could tell its type: the words say how to let chatbus tell, not only which type it is not.
    assert str(unknown).startswith("chatbus cannot tell what kind of file blob is")
    assert "give its name an extension" in str(unknown) and "allowed: image/png," in str(unknown)


@with_files(allowed_types="text/*, image/png")
async def test_the_allow_list_takes_patterns_from_a_comma_separated_setting(hub: Hub) -> None:
    assert hub.files.settings.allowed_types == ["text/*", "image/png"]
    assert (await hub.files.save_bytes(b"body {}", "a.css", "text/css")).content_type == "text/css"
    assert (await refused(hub, picture("JPEG"), "a.jpg", "image/jpeg")).code == "FILE_TYPE"


async def test_a_file_claiming_to_be_a_picture_must_be_one(hub: Hub) -> None:
    error = await refused(hub, b"<html><script>alert(1)</script>", "cat.png", "image/png")
    assert (error.code, error.status) == ("INVALID_FILE", 400)
    assert str(error) == (
        "The file says it is image/png but is not a picture chatbus can read; "
        "check the file (it may be damaged) or send it as a document."
    )
    truncated = picture("PNG", (200, 200))[:-200]
    assert (await refused(hub, truncated, "cut.png", "image/png")).code == "INVALID_FILE"
    assert nothing_kept(hub)


async def test_a_decompression_bomb_is_refused_before_it_is_decoded(hub: Hub) -> None:
    bomb = png_claiming(100_000, 100_000)
    assert len(bomb) < 100
    error = await refused(hub, bomb, "bomb.png", "image/png")
    assert error.code == "INVALID_FILE"
    assert str(error) == "The picture has more than 64,000,000 pixels; make it smaller and send it again."
    error = await refused(hub, png_claiming(9000, 8000), "big.png", "image/png")  # Pillow's warning, as an error
    assert str(error) == "The picture has more than 64,000,000 pixels; make it smaller and send it again."
    assert nothing_kept(hub)


@with_files(max_image_pixels=100)
async def test_the_pixel_limit_is_a_setting(hub: Hub) -> None:
    assert str(await refused(hub, picture("PNG", (20, 20)), "a.png", "image/png")) == (
        "The picture is 20 x 20 pixels; the limit is 100 pixels in all. Make it smaller and send it again."
    )
    assert (await hub.files.save_bytes(picture("PNG", (10, 10)), "b.png", "image/png")).width == 10


async def test_pictures_get_their_real_type_and_size(hub: Hub) -> None:
    jpeg = await hub.files.save_bytes(picture("JPEG", (64, 48)), "photo.png", "image/png", uploader="alice")
    assert (jpeg.content_type, jpeg.width, jpeg.height) == ("image/jpeg", 64, 48)
    gif = await hub.files.save_bytes(picture("GIF", (5, 7)), "anim.gif", None)
    assert (gif.content_type, gif.width, gif.height, gif.is_image) == ("image/gif", 5, 7, True)
    webp = await hub.files.save_bytes(picture("WEBP", (9, 3)), "x.webp", "image/webp")
    assert webp.thumbnail_url == f"/files/{webp.id}/x.webp?thumb=1"


async def test_a_photo_taken_upright_has_the_size_it_is_shown_at(hub: Hub) -> None:
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # turned a quarter clockwise, as a phone held upright saves it
    Image.new("RGB", (80, 60), "navy").save(out, "JPEG", exif=exif)
    photo = await hub.files.save_bytes(out.getvalue(), "upright.jpg", "image/jpeg")
    assert (photo.width, photo.height) == (60, 80)


async def test_a_damaged_photo_is_refused_even_though_it_is_decoded_small(hub: Hub) -> None:
    whole = picture("JPEG", (400, 300))
    assert (await refused(hub, whole[: len(whole) // 2], "half.jpg", "image/jpeg")).code == "INVALID_FILE"


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "a/b.txt", "c:\\boot.ini", "bell\x07.txt", "rtl\u202etxt.exe", "", " ", "..", "n" * 256],
)
async def test_names_with_path_parts_or_control_characters_are_refused(hub: Hub, name: str) -> None:
    error = await refused(hub, b"hello", name, "text/plain")
    assert (error.code, error.status) == ("INVALID_FILE", 400)
    assert nothing_kept(hub)


async def test_an_empty_file_is_refused(hub: Hub) -> None:
    assert str(await refused(hub, b"", "empty.txt", "text/plain")) == (
        "The file is empty; choose a file with something in it."
    )


def test_names_from_other_systems_are_cleaned() -> None:
    assert clean_name("../../etc/passwd") == "passwd"
    assert clean_name("C:\\Users\\me\\report.pdf") == "report.pdf"
    assert clean_name("bell\x07.txt") == "bell.txt"
    assert clean_name(None) == "file" and clean_name("..", "photo.jpg") == "photo.jpg"
    long = clean_name("x" * 300 + ".pdf")
    assert len(long) == 255 and long.endswith(".pdf")


def test_types_are_read_from_the_declaration_or_guessed_from_the_name() -> None:
    assert content_type_for("Text/Plain; charset=UTF-8", "a.bin") == "text/plain"
    assert content_type_for(None, "notes.md") == "text/markdown"
    assert content_type_for("application/octet-stream", "a.pdf") == "application/pdf"
    assert content_type_for("", "mystery") == "application/octet-stream"
    assert type_allowed("audio/ogg", ["audio/*"]) and not type_allowed("audio", ["audio/*"])
    assert (human_size(1), human_size(1536), human_size(100 * 1024 * 1024)) == ("1 byte", "1.5 KiB", "100 MiB")


def test_files_settings_come_from_the_environment_and_bad_ones_stop_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHATBUS_FILES__MAX_FILE_BYTES", "2048")
    monkeypatch.setenv("CHATBUS_FILES__DIR", str(tmp_path / "uploads"))
    hub = make_hub(settings=Settings.load())
    assert hub.files.settings.max_file_bytes == 2048 and hub.files.directory == tmp_path / "uploads"
    monkeypatch.setenv("CHATBUS_FILES__MAX_FILE_BYTE", "2048")
    with pytest.raises(ConfigError, match="files.max_file_byte .*did you mean 'max_file_bytes'"):
        make_hub(settings=Settings.load())
    with pytest.raises(ConfigError, match="allowed_types"):
        make_hub(settings=Settings.isolated(db=":memory:", files={"allowed_types": "png"}))


async def test_what_becomes_of_files_is_counted_in_the_metrics(hub: Hub) -> None:
    await hub.files.save_bytes(b"one", "one.txt", "text/plain")
    await hub.files.save_bytes(b"one", "again.txt", "text/plain")
    await refused(hub, b"MZ", "setup.exe", "application/x-msdownload")
    await refused(hub, b"not a picture", "a.png", "image/png")
    text = hub.metrics.exposition().decode()
    for outcome, count in (("stored", 1), ("duplicate", 1), ("FILE_TYPE", 1), ("INVALID_FILE", 1)):
        assert f'chatbus_files_total{{outcome="{outcome}"}} {count}.0' in text


async def test_a_full_disk_is_a_clear_refusal(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    async with hub.files.spool() as spool:

        class FullDisk:
            def write(self, chunk: bytes) -> int:
                raise OSError(28, "No space left on device")

            def close(self) -> None:
                return None

        monkeypatch.setattr(spool, "_file", FullDisk())
        with pytest.raises(FileRefused) as caught:
            spool.write(b"x")
    assert (caught.value.code, caught.value.status, str(caught.value)) == (
        "STORAGE_FULL",
        507,
        "The server's disk is full; tell its operator.",
    )
    assert nothing_kept(hub)
