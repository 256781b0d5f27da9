"""What one client may cost others on ``/files``: uploads at once per address, failed sign-ins,
silence, slowness; and that stopping or restarting chatbus loses nothing and keeps nothing half-done."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import httpx

from chatbus import Settings
from tests.certificates import make_certificates

from .filehelpers import form, nothing_stored, png, post_head, raw_exchange, read_answer
from .helpers import TIMEOUT, Client, running
from .test_restart import chatbus_serve
from .test_uploads import USER, error_of, upload


async def test_uploads_at_once_from_one_address_are_limited() -> None:
    async with running(max_uploads_per_address=1) as server:
        body = form("big.zip", os.urandom(200_000), "application/zip")
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(post_head(server.port, len(body)) + body[:1000])  # one upload under way
        await writer.drain()
        await asyncio.sleep(0.2)
        answer = await upload(server.port, "a.txt", b"hi", "text/plain")
        assert answer.status_code == 429 and answer.headers["retry-after"] == "1"
        assert "at once" in error_of(answer)["message"]
        writer.write(body[1000:])
        status, _, _ = read_answer(await asyncio.wait_for(reader.read(), TIMEOUT))
        writer.close()
        assert status == 201
        assert (await upload(server.port, "a.txt", b"hi", "text/plain")).status_code == 201


async def test_failed_upload_sign_ins_lock_the_address_out_of_uploads_and_the_chat() -> None:
    settings = Settings.isolated(db=":memory:", auth={"mode": "token", "tokens": {"s3cret": {"userId": "alice"}}})
    async with running(settings=settings, auth_failures_per_address=3) as server:
        for _ in range(4):
            answer = await upload(server.port, "a.txt", b"hi", "text/plain", {"Authorization": "Bearer guess"})
            assert answer.status_code == 401
        answer = await upload(server.port, "a.txt", b"hi", "text/plain", {"Authorization": "Bearer s3cret"})
        assert answer.status_code == 429 and int(answer.headers["retry-after"]) > 0
        assert "failed sign-ins" in error_of(answer)["message"]
        chat = await Client.open(server.url)
        code, reason = await chat.closed()
        assert code == 1008 and reason is not None and "failed sign-ins" in reason


async def test_an_upload_that_goes_silent_is_dropped_and_kept_nowhere() -> None:
    async with running(file_idle_timeout=0.3) as server:
        body = form("a.zip", os.urandom(50_000), "application/zip")
        started = time.monotonic()
        status, _, answer = await raw_exchange(
            server.port, post_head(server.port, len(body)) + body[:20_000], end=False
        )
        assert status == 408 and answer["error"]["code"] == "TIMEOUT"
        assert time.monotonic() - started < 2
        assert await nothing_stored(server.hub)


async def test_a_request_head_that_never_ends_is_dropped() -> None:
    async with running(auth_timeout=0.3) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST /files HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 2) == b""  # closed without a word
        writer.close()


async def test_an_upload_may_take_longer_than_the_handshake_timeout_while_bytes_move() -> None:
    async with running(auth_timeout=0.3, file_idle_timeout=1.0) as server:
        body = form("slow.zip", os.urandom(40_000), "application/zip")
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(post_head(server.port, len(body)))
        for start in range(0, len(body), 4000):  # ten pieces over a second
            writer.write(body[start : start + 4000])
            await writer.drain()
            await asyncio.sleep(0.1)
        status, _, answer = read_answer(await asyncio.wait_for(reader.read(), TIMEOUT))
        writer.close()
        assert status == 201, answer


async def test_stopping_drops_uploads_under_way_and_keeps_nothing_of_them(tmp_path: Path) -> None:
    settings = Settings.isolated(db=":memory:", files={"dir": str(tmp_path)})
    async with running(settings=settings) as server:
        kept = await upload(server.port, "kept.txt", b"kept", "text/plain")
        assert kept.status_code == 201
        body = form("a.zip", os.urandom(100_000), "application/zip")
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(post_head(server.port, len(body)) + body[:50_000])
        await writer.drain()
        await asyncio.sleep(0.2)
        async with asyncio.timeout(5):
            await server.hub.stop()
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        writer.close()
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert files == [kept.json()["id"]]


async def test_a_restart_of_chatbus_serve_keeps_files(tmp_path: Path) -> None:
    picture = png(300, 200)
    async with chatbus_serve(tmp_path / "chat.db") as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as http:
            answer = await http.post("/files", files={"file": ("dot.png", picture, "image/png")}, headers=USER)
            assert answer.status_code == 201, answer.text
            body = answer.json()
            assert (await http.get(body["thumbnailUrl"])).status_code == 200
        assert await server.terminate() == 0
    async with chatbus_serve(tmp_path / "chat.db") as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as http:
            assert (await http.get(body["url"])).content == picture
            thumbnail = await http.get(body["thumbnailUrl"])
            assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
            again = await http.post("/files", files={"file": ("dot.png", picture, "image/png")}, headers=USER)
            assert again.json()["id"] == body["id"]
        assert await server.terminate() == 0
    assert (tmp_path / "chat-files").is_dir()


async def test_files_over_https_on_the_chat_port(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "tls")
    data = os.urandom(3 * 1024 * 1024)
    async with running(certfile=certs.cert, keyfile=certs.key) as server:
        base = f"https://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, verify=certs.client_context(), timeout=10) as http:
            answer = await http.post("/files", files={"file": ("big.zip", data, "application/zip")}, headers=USER)
            assert answer.status_code == 201, answer.text
            url = answer.json()["url"]
            assert (await http.get(url)).content == data
            part = await http.get(url, headers={"Range": "bytes=1000-1999"})
            assert part.status_code == 206 and part.content == data[1000:2000]
            assert (await http.get("/healthz")).text == "ok\n"


def _memory(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key} for {pid}")


async def test_a_large_upload_through_chatbus_serve_never_sits_in_memory(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    with source.open("wb") as out:
        for _ in range(64):
            out.write(os.urandom(1024 * 1024))
    body_head = form("big.zip", b"", "application/zip").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    tail = b"\r\n--chatbus-test-boundary--\r\n"
    async with chatbus_serve(tmp_path / "chat.db") as server:
        pid = server.proc.pid
        idle = _memory(pid, "VmRSS")
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(post_head(server.port, len(body_head) + source.stat().st_size + len(tail)) + body_head)
        with source.open("rb") as file:
            while chunk := file.read(1024 * 1024):
                writer.write(chunk)
                await writer.drain()
        writer.write(tail)
        status, _, answer = read_answer(await asyncio.wait_for(reader.read(), 60))
        writer.close()
        assert status == 201, answer
        grown = _memory(pid, "VmHWM") - idle
        assert grown < 16 * 1024 * 1024, f"the server grew by {grown / 2**20:.1f} MiB for a 64 MiB upload"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as http:
            url = json.loads(answer)["url"]
            assert (await http.head(url)).headers["content-length"] == str(64 * 1024 * 1024)
        assert await server.terminate() == 0


async def test_transfers_in_all_are_limited_by_max_connections() -> None:
    async with running(max_connections=1) as server:
        body = form("big.zip", os.urandom(100_000), "application/zip")
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(post_head(server.port, len(body)) + body[:1000])
        await writer.drain()
        await asyncio.sleep(0.2)
        answer = await upload(server.port, "a.txt", b"hi", "text/plain")
        assert answer.status_code == 503 and answer.headers["retry-after"] == "60"
        assert error_of(answer)["code"] == "BUSY"
        writer.write(body[1000:])
        status, _, _ = read_answer(await asyncio.wait_for(reader.read(), TIMEOUT))
        writer.close()
        assert status == 201
