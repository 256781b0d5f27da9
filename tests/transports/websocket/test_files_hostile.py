"""Requests for ``/files`` that no well-behaved client sends, written byte by byte on raw sockets:
each gets a 4xx in JSON (or, when it never becomes a request, a closed connection), nothing is
stored, and the server goes on serving everyone."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .filehelpers import form, nothing_stored, post_head, raw_exchange
from .helpers import TIMEOUT, running
from .test_uploads import upload

BODY = form("a.txt", b"hello", "text/plain")


def head(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        # Request smuggling: a length and chunked at once, two lengths, a length that is not a number.
        (
            head(
                "POST /files HTTP/1.1",
                "Host: 127.0.0.1",
                "X-Chatbus-User: a",
                "Content-Length: 5",
                "Transfer-Encoding: chunked",
            )
            + BODY,
            400,
        ),
        (
            head(
                "POST /files HTTP/1.1", "Host: 127.0.0.1", "X-Chatbus-User: a", "Content-Length: 5", "Content-Length: 6"
            )
            + BODY,
            400,
        ),
        (head("POST /files HTTP/1.1", "Host: 127.0.0.1", "X-Chatbus-User: a", "Content-Length: -5") + BODY, 400),
        (head("POST /files HTTP/1.1", "Host: 127.0.0.1", "X-Chatbus-User: a", "Transfer-Encoding: gzip") + BODY, 400),
        # Broken chunked framing.
        (
            head("POST /files HTTP/1.1", "Host: 127.0.0.1", "X-Chatbus-User: a", "Transfer-Encoding: chunked")
            + b"zz\r\nhello\r\n0\r\n\r\n",
            400,
        ),
        # Two Host headers.
        (head("GET /files/x/y HTTP/1.1", "Host: 127.0.0.1", "Host: evil.example"), 400),
        # Paths: not UTF-8 once decoded, a NUL, a way out.
        (head("GET /files/%ff%fe/a.txt HTTP/1.1", "Host: 127.0.0.1"), 400),
        (head("GET /files/" + "0" * 32 + "/a%00.txt HTTP/1.1", "Host: 127.0.0.1"), 404),
        (head("GET /files/../../etc/passwd HTTP/1.1", "Host: 127.0.0.1"), 404),
        (head("GET /files/%2e%2e/%2e%2e/etc/passwd HTTP/1.1", "Host: 127.0.0.1"), 404),
        # An old protocol version, a method nobody uses.
        (head("POST /files HTTP/1.0", "Host: 127.0.0.1", "X-Chatbus-User: alice"), 400),
        (head("BREW /files HTTP/1.1", "Host: 127.0.0.1"), 405),
    ],
)
async def test_malformed_requests_get_a_4xx_in_json(request_bytes: bytes, status: int) -> None:
    async with running() as server:
        got, headers, answer = await raw_exchange(server.port, request_bytes)
        assert got == status, answer
        assert headers["content-type"] == "application/json" and set(answer["error"]) == {"code", "message"}
        assert await nothing_stored(server.hub)
        assert (await upload(server.port, "ok.txt", b"fine", "text/plain")).status_code == 201


async def test_a_request_line_that_is_not_http_goes_to_websockets_which_closes_it() -> None:
    async with running() as server:
        async with asyncio.timeout(TIMEOUT):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"POST /files\r\n\r\n")
            writer.write_eof()
            assert b"201" not in await reader.read()
            writer.close()
        assert (await upload(server.port, "ok.txt", b"fine", "text/plain")).status_code == 201


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(noise=st.binary(min_size=1, max_size=600), cut=st.integers(min_value=0, max_value=len(BODY)))
async def test_random_bodies_never_store_anything_or_hurt_the_server(noise: bytes, cut: int) -> None:
    async with running() as server:
        body = BODY[:cut] + noise
        status, _, answer = await raw_exchange(server.port, post_head(server.port, len(body)) + body)
        assert 400 <= status < 500 or status == 201, answer
        if status != 201:
            assert await nothing_stored(server.hub)
        assert (await upload(server.port, "ok.txt", b"fine", "text/plain")).status_code == 201


@pytest.mark.parametrize("path", ["/files", "/healthz"])
async def test_a_head_sent_a_few_bytes_at_a_time_is_read_as_one(path: str) -> None:
    async with running() as server:
        request = post_head(server.port, len(BODY)) + BODY
        if path != "/files":
            request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        async with asyncio.timeout(TIMEOUT):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            for start in range(0, len(request), 3):
                writer.write(request[start : start + 3])
                await writer.drain()
                await asyncio.sleep(0.001)
            raw = await reader.read()
            writer.close()
        assert raw.startswith(b"HTTP/1.1 201 Created" if path == "/files" else b"HTTP/1.1 200 OK"), raw[:200]
