"""``POST /files`` on the chat port, with a real HTTP client (httpx) and raw sockets for what clients should never send."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from chatbus import Settings

from .filehelpers import BOUNDARY, form, jpeg, nothing_stored, png, png_bomb, post_head, raw_exchange, read_answer
from .helpers import TIMEOUT, Client, running

USER = {"X-Chatbus-User": "alice"}


def client(port: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)


async def upload(port: int, name: str, data: bytes, kind: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with client(port) as http:
        return await http.post("/files", files={"file": (name, data, kind)}, headers=headers or USER)


def error_of(answer: httpx.Response) -> dict[str, Any]:
    assert answer.headers["content-type"] == "application/json"
    error = answer.json()["error"]
    assert set(error) == {"code", "message"} and error["message"].endswith((".", ")")), error
    return dict(error)


async def test_a_picture_is_stored_and_described() -> None:
    async with running() as server:
        picture = png(64, 48)
        answer = await upload(server.port, "red dot.png", picture, "image/png")
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["name"] == "red dot.png" and body["size"] == len(picture)
        assert (body["contentType"], body["width"], body["height"]) == ("image/png", 64, 48)
        assert body["url"] == f"/files/{body['id']}/red%20dot.png"
        assert body["thumbnailUrl"] == body["url"] + "?thumb=1"
        assert answer.headers["location"] == body["url"]
        stored = await server.hub.files.get(body["id"])
        assert stored is not None and stored.uploader == "alice"
        # The same bytes again are the same file.
        again = await upload(server.port, "red dot.png", picture, "image/png")
        assert again.status_code == 201 and again.json()["id"] == body["id"]
        assert await server.hub.store.files_total() == len(picture)


async def test_other_files_have_no_thumbnail_and_a_chunked_upload_works() -> None:
    async def pieces() -> AsyncIterator[bytes]:
        yield form("notes.txt", b"first line\nsecond line\n", "text/plain")[:50]
        yield form("notes.txt", b"first line\nsecond line\n", "text/plain")[50:]

    async with running() as server, client(server.port) as http:
        headers = {**USER, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        answer = await http.post("/files", content=pieces(), headers=headers)
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert (body["contentType"], body["width"], body["height"]) == ("text/plain", None, None)
        assert "thumbnailUrl" not in body


async def test_a_file_sent_in_a_message_reaches_the_chat() -> None:
    async with running() as server:
        body = (await upload(server.port, "plan.pdf", b"%PDF-1.4\n%fake\n", "application/pdf")).json()
        alice = await server.client("alice")
        await alice.say("", attachments=[body["id"]])
        [frame] = await alice.chat(1)
        [entry] = frame["data"]["attachments"]
        assert entry["url"] == body["url"] and entry["name"] == "plan.pdf"
        await alice.close()


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("../../etc/passwd", "cannot contain /"),
        ("folder\\photo.png", "cannot contain /"),
        ("line%0Abreak.txt", "control characters"),  # a browser's way of writing a line feed
        ("invoice\u202etxt.exe", "control characters"),
        ("bell\x07.txt", "control characters"),
        ("..", "cannot be named . or .."),
        (".", "cannot be named . or .."),
        ("zero\u200bwidth.txt", "invisible formatting"),
        ("x" * 300 + ".txt", "characters long"),
    ],
)
async def test_names_that_are_not_a_files_own_name_are_refused(name: str, words: str) -> None:
    async with running() as server:
        body = form(name, b"hello", "text/plain")  # written as is, not escaped as a careful client would
        status, headers, answer = await raw_exchange(server.port, post_head(server.port, len(body)) + body)
        assert status == 400 and headers["content-type"] == "application/json"
        assert answer["error"]["code"] == "INVALID_FILE" and words in answer["error"]["message"]
        assert await nothing_stored(server.hub)


async def test_an_old_browsers_full_windows_path_is_read_as_its_file_name() -> None:
    async with running() as server:
        body = form("C:\\Users\\me\\photo.txt", b"hello", "text/plain")
        status, _, answer = await raw_exchange(server.port, post_head(server.port, len(body)) + body)
        assert status == 201 and answer["name"] == "photo.txt"


async def test_a_refused_type_is_415_before_its_bytes_are_read() -> None:
    async with running() as server:
        answer = await upload(server.port, "setup.exe", b"MZ" + b"\0" * 100, "application/x-msdownload")
        assert answer.status_code == 415
        error = error_of(answer)
        assert error["code"] == "FILE_TYPE" and "image/png" in error["message"]
        # Told as soon as the part's headers arrived: the rest is never sent.
        part = form("setup.exe", b"", "application/x-msdownload").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
        status, _, body = await raw_exchange(server.port, post_head(server.port, 50_000) + part, end=False)
        assert status == 415 and body["error"]["code"] == "FILE_TYPE"
        # A file without a type or an extension (curl -F file=@README): told how to let chatbus tell.
        answer = await upload(server.port, "README", b"read me", "")
        assert answer.status_code == 415
        assert error_of(answer)["message"].startswith("chatbus cannot tell what kind of file README is")
        assert await nothing_stored(server.hub)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"this is not a picture at all", "image/png"),
        (png(10, 10)[:40], "image/png"),  # cut short
        (jpeg(20, 20), "image/png"),  # a JPEG that says it is a PNG is still a picture; see below
    ],
)
async def test_a_file_that_claims_to_be_a_picture_must_be_one(data: bytes, kind: str) -> None:
    async with running() as server:
        answer = await upload(server.port, "photo.png", data, kind)
        if data.startswith(b"\xff\xd8"):
            assert answer.status_code == 201 and answer.json()["contentType"] == "image/jpeg"
            return
        assert answer.status_code == 400
        assert error_of(answer)["code"] == "INVALID_FILE"
        assert await nothing_stored(server.hub)


async def test_a_decompression_bomb_is_refused() -> None:
    bomb = png_bomb(30_000)
    assert len(bomb) < 1024 * 1024  # 900 million pixels in a small file
    async with running() as server:
        answer = await upload(server.port, "huge.png", bomb, "image/png")
        assert answer.status_code == 400
        assert error_of(answer)["code"] == "INVALID_FILE"
        assert await nothing_stored(server.hub)


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (form("a.txt", b"hi", "text/plain", field="upload"), f"multipart/form-data; boundary={BOUNDARY}", "'upload'"),
        (
            form("a.txt", b"hi", "text/plain")[: -len("--\r\n")]
            + form("b.txt", b"ho", "text/plain")[len(f"--{BOUNDARY}") :],
            f"multipart/form-data; boundary={BOUNDARY}",
            "more than one file",
        ),
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n--{BOUNDARY}--\r\n'.encode(),
            f"multipart/form-data; boundary={BOUNDARY}",
            "no field named file",
        ),
        (b"just some bytes", "application/octet-stream", "multipart/form-data"),
        (form("a.txt", b"hi", "text/plain")[:-10], f"multipart/form-data; boundary={BOUNDARY}", "ended before"),
        (b"--x\r\nnot a form", f"multipart/form-data; boundary={BOUNDARY}", "multipart/form-data"),
    ],
)
async def test_a_wrong_form_is_400_with_words(body: bytes, content_type: str, words: str) -> None:
    async with running() as server, client(server.port) as http:
        answer = await http.post("/files", content=body, headers={**USER, "Content-Type": content_type})
        assert answer.status_code == 400, answer.text
        assert words in error_of(answer)["message"]
        assert await nothing_stored(server.hub)


async def test_a_body_cut_short_stores_nothing() -> None:
    async with running() as server:
        body = form("photo.png", png(200, 200), "image/png")
        status, _, answer = await raw_exchange(server.port, post_head(server.port, len(body)) + body[: len(body) // 2])
        assert status == 400 and "send it again" in answer["error"]["message"]
        assert await nothing_stored(server.hub)


async def test_too_big_is_413_without_reading_the_body() -> None:
    settings = Settings.isolated(db=":memory:", files={"max_file_bytes": 100_000})
    async with running(settings=settings) as server:
        # Content-Length says so: answered at once, though nothing of the body was sent.
        status, headers, answer = await raw_exchange(server.port, post_head(server.port, 10**9), end=False)
        assert status == 413 and answer["error"]["code"] == "FILE_TOO_BIG"
        assert headers["connection"] == "close"

        # Without a length (chunked): refused once past the limit.
        async def chunks() -> AsyncIterator[bytes]:
            yield form("big.bin", b"", "application/zip")[: -len(f"\r\n--{BOUNDARY}--\r\n")]
            for _ in range(100):
                yield b"\0" * 10_000

        async with client(server.port) as http:
            headers = {**USER, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
            try:
                answer = await http.post("/files", content=chunks(), headers=headers)
            except httpx.TransportError:
                pass  # the server closed while the client was still sending; nothing may be kept either way
            else:
                assert answer.status_code == 413
        assert await nothing_stored(server.hub)
        assert (await upload(server.port, "small.txt", b"ok", "text/plain")).status_code == 201


async def test_token_mode_needs_the_token_and_records_its_owner() -> None:
    settings = Settings.isolated(db=":memory:", auth={"mode": "token", "tokens": {"s3cret": {"userId": "alice"}}})
    async with running(settings=settings) as server:
        for headers in (
            {},
            {"X-Chatbus-User": "alice"},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "s3cret"},
        ):
            answer = await upload(server.port, "a.txt", b"hi", "text/plain", headers)
            assert answer.status_code == 401, headers
            assert answer.headers["www-authenticate"] == "Bearer"
            assert error_of(answer)["code"] == "AUTH_FAILED"
        assert await nothing_stored(server.hub)
        answer = await upload(server.port, "a.txt", b"hi", "text/plain", {"Authorization": "Bearer s3cret"})
        assert answer.status_code == 201
        stored = await server.hub.files.get(answer.json()["id"])
        assert stored is not None and stored.uploader == "alice"


async def test_open_mode_takes_an_upload_that_says_nothing_as_protocol_md_has_it() -> None:
    # PROTOCOL.md: the Authorization header is for token mode; a client written from it sends nothing else.
    async with running() as server:
        answer = await upload(server.port, "a.txt", b"hi", "text/plain", {"Accept": "*/*"})
        assert answer.status_code == 201, answer.text
        stored = await server.hub.files.get(answer.json()["id"])
        assert stored is not None and stored.uploader == "anonymous"
        # Several such uploads are not failed sign-ins: the address is never locked out for them.
        for n in range(8):
            assert (await upload(server.port, f"{n}.txt", b"%d" % n, "text/plain", {})).status_code == 201


async def test_a_refused_upload_is_logged_with_its_reason_and_address(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.isolated(db=":memory:", auth={"mode": "token", "tokens": {"s3cret": {"userId": "alice"}}})
    token = {"Authorization": "Bearer s3cret"}
    async with running(settings=settings) as server:
        with caplog.at_level("INFO", logger="chatbus.transports.websocket"):
            assert (await upload(server.port, "a.txt", b"hi", "text/plain", {})).status_code == 401
            assert (await upload(server.port, "x.exe", b"MZ", "application/x-msdownload", token)).status_code == 415
            assert (await upload(server.port, "fake.png", b"not a png", "image/png", token)).status_code == 400
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("files: refused POST /files")]
        assert len(lines) == 3, lines
        assert "from 127.0.0.1: 401 AUTH_FAILED: " in lines[0]
        assert "from alice at 127.0.0.1: 415 FILE_TYPE: " in lines[1]
        assert "400 INVALID_FILE: The file says it is image/png" in lines[2]
        assert await nothing_stored(server.hub)


async def test_a_cross_origin_page_cannot_post_files() -> None:
    async with running(allowed_origins=["https://tools.example"]) as server:
        own = f"http://127.0.0.1:{server.port}"
        answer = await upload(server.port, "a.txt", b"hi", "text/plain", {**USER, "Origin": "https://evil.example"})
        assert answer.status_code == 403 and "ALLOWED_ORIGINS" in error_of(answer)["message"]
        assert await nothing_stored(server.hub)
        for origin in (own, "https://tools.example"):
            answer = await upload(server.port, "a.txt", b"hi", "text/plain", {**USER, "Origin": origin})
            assert answer.status_code == 201, origin


async def test_another_host_name_is_421_and_methods_are_checked() -> None:
    async with running() as server, client(server.port) as http:
        answer = await http.post("/files", files={"file": ("a.txt", b"hi")}, headers={**USER, "Host": "evil.example"})
        assert answer.status_code == 421 and "ALLOWED_HOSTS" in error_of(answer)["message"]
        answer = await http.put("/files", content=b"x", headers=USER)
        assert answer.status_code == 405 and answer.headers["allow"] == "POST"
        answer = await http.delete("/files/" + "0" * 32 + "/a.txt")
        assert answer.status_code == 405 and answer.headers["allow"] == "GET, HEAD"
        assert await nothing_stored(server.hub)


async def test_the_rest_of_the_port_is_unchanged() -> None:
    async with running() as server, client(server.port) as http:
        assert (await http.get("/healthz")).text == "ok\n"
        assert (await http.post("/healthz")).status_code == 405
        # A WebSocket handshake below /files still opens a chat connection.
        chat = await Client.open(f"ws://127.0.0.1:{server.port}/files/x")
        assert (await chat.sign_in("bob"))["success"] is True
        await chat.close()


async def test_a_client_that_waits_for_100_continue_is_told_to_go_on_or_refused_first() -> None:
    async with running() as server:
        body = form("a.txt", b"hello", "text/plain")
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(post_head(server.port, len(body), Expect="100-continue"))
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT) == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        status, _, answer = read_answer(await asyncio.wait_for(reader.read(), TIMEOUT))
        writer.close()
        assert status == 201 and json.loads(answer)["name"] == "a.txt"
        # Refused before the body is sent: too big, or a sign-in that is not one.
        head = post_head(server.port, 10**12, Expect="100-continue")
        status, _, answer = await raw_exchange(server.port, head, end=False)
        assert status == 413
        head = post_head(server.port, len(body), Expect="100-continue", Authorization="Basic YWxpY2U6")
        status, _, answer = await raw_exchange(server.port, head, end=False)
        assert status == 401
