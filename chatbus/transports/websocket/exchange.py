"""One HTTP request and its answer on a connection taken from websockets (see :mod:`.fileserver`).

The request is read with h11 from an :class:`asyncio.StreamReader`: the
reader pauses the socket (``transport.pause_reading``) while more than two
of its chunks wait unread and resumes it as they are taken, so a slow
consumer (the disk) slows the client down instead of filling memory. Every
read and every write has ``idle_timeout`` seconds to move a byte; a client
that stops sending or reading is dropped, however long the whole transfer
takes. h11 refuses what is not HTTP/1.1 framing (two different lengths, a
transfer coding it does not know, broken chunks); a request with both
``Content-Length`` and ``Transfer-Encoding`` is refused too, never guessed.

Every answer ends the connection (``Connection: close``), as on the rest of
the chat port. An answer given before the request's body was read (``413``
for a file over the limit, ``401``) is followed by a short lingering close:
the rest of what the client sends is read and dropped for up to
:data:`LINGER` seconds, so its operating system does not answer a reset that
would destroy the answer before the client reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import h11
from websockets.datastructures import Headers

__all__ = ["CHUNK", "Exchange", "HttpError"]

#: Bytes read or written at a time.
CHUNK: Final = 64 * 1024
#: Seconds an answer given early waits for the client to stop sending before the socket is closed.
LINGER: Final = 2.0
#: Bytes dropped at most during that wait.
_LINGER_BYTES: Final = 8 * 1024 * 1024
#: Sent with every answer of this module.
BASE_HEADERS: Final = (
    ("Server", "chatbus"),
    ("Connection", "close"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)
_JSON_HEADERS: Final = (
    ("Content-Type", "application/json"),
    ("Cache-Control", "no-store"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
)
_STATUSES: Final = frozenset(status.value for status in HTTPStatus)


class HttpError(Exception):
    """An answer that ends the exchange: the HTTP status, an error code and words that say what to do."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


class Exchange:
    """The request read so far and the means to answer it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, idle_timeout: float) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_timeout = idle_timeout
        self.h11 = h11.Connection(h11.SERVER)
        self.method = ""
        self.target = ""
        self.path = ""
        self.query: dict[str, list[str]] = {}
        self.headers = Headers()
        #: Whether an answer has started (no error answer can follow then).
        self.answered = False
        #: For the log: the client's address and who uploads, once the file server knows them.
        self.client = ""
        self.user: str | None = None
        self._body_done = False

    @property
    def peer(self) -> Any:
        return self.writer.get_extra_info("peername")

    # reading -------------------------------------------------------------
    async def _next(self) -> Any:
        """The next h11 event; reads from the socket as h11 needs."""
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                if exc.error_status_hint == 431:
                    raise HttpError(431, "INVALID_REQUEST", "The request's headers are too large.") from None
                raise HttpError(400, "INVALID_REQUEST", self._broken()) from None
            if event is not h11.NEED_DATA:
                return event
            try:
                async with asyncio.timeout(self.idle_timeout):
                    data = await self.reader.read(CHUNK)
            except TimeoutError:
                raise HttpError(
                    408, "TIMEOUT", f"Nothing arrived for {self.idle_timeout:g} s; send the request again."
                ) from None
            self.h11.receive_data(data)

    def _broken(self) -> str:
        if self.method:
            return "The request ended before its whole body arrived (or was not valid HTTP); send it again."
        return "That is not a valid HTTP request."

    async def request(self) -> None:
        """Read the request line and headers."""
        event = await self._next()
        if not isinstance(event, h11.Request):
            raise HttpError(400, "INVALID_REQUEST", "That is not a valid HTTP request.")
        self.method = event.method.decode("ascii", "replace").upper()
        self.target = event.target.decode("ascii", "replace")
        parts = urlsplit(self.target)
        try:
            self.path = unquote(parts.path, errors="strict") if parts.path else "/"
        except UnicodeDecodeError:
            raise HttpError(400, "INVALID_REQUEST", "The path is not valid UTF-8 once decoded.") from None
        self.query = parse_qs(parts.query)
        self.headers = Headers([(name.decode("latin-1"), value.decode("latin-1")) for name, value in event.headers])
        if "Transfer-Encoding" in self.headers and "Content-Length" in self.headers:
            raise HttpError(400, "INVALID_REQUEST", "Send Content-Length or Transfer-Encoding, not both.")

    async def body(self) -> AsyncIterator[bytes]:
        """The request's body, chunk by chunk as it arrives (a client that sent
        ``Expect: 100-continue`` is told to go on first)."""
        if self.h11.they_are_waiting_for_100_continue:
            await self._write(self.h11.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")))
        while True:
            event = await self._next()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._body_done = True
                return
            else:
                raise HttpError(400, "INVALID_REQUEST", self._broken())

    def header(self, name: str) -> str | None:
        """The one value of a header; several values are a ``400``."""
        values = self.headers.get_all(name)
        if len(values) > 1:
            raise HttpError(400, "INVALID_REQUEST", f"Send one {name} header, not {len(values)}.")
        return values[0] if values else None

    # answering -----------------------------------------------------------
    async def start(self, status: int, headers: Sequence[tuple[str, str]]) -> None:
        """Send the status line and headers (the security headers are added)."""
        self.answered = True
        all_headers = [("Date", formatdate(usegmt=True)), *BASE_HEADERS, *headers]
        reason = HTTPStatus(status).phrase.encode() if status in _STATUSES else b""
        await self._write(self.h11.send(h11.Response(status_code=status, headers=all_headers, reason=reason)))

    async def send(self, data: bytes) -> None:
        """Send a piece of the body, waiting (at most ``idle_timeout``) for the client to take it."""
        if data:
            await self._write(self.h11.send(h11.Data(data=data)))

    async def end(self) -> None:
        await self._write(self.h11.send(h11.EndOfMessage()))

    async def respond(self, status: int, headers: Sequence[tuple[str, str]], body: bytes = b"") -> None:
        """A whole answer; for ``HEAD`` without the body. A ``304`` has no length of its own: a
        ``Content-Length`` there would tell caches the file is empty."""
        length = [] if status == 304 else [("Content-Length", str(len(body)))]
        await self.start(status, [*headers, *length])
        if self.method != "HEAD":
            await self.send(body)
        await self.end()

    async def respond_json(self, status: int, payload: Any, extra: Sequence[tuple[str, str]] = ()) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        await self.respond(status, [*_JSON_HEADERS, *extra], body)

    async def fail(self, error: HttpError) -> None:
        """Answer ``error`` as ``{"error": {"code", "message"}}``, unless an answer has started."""
        if self.answered:
            return
        payload = {"error": {"code": error.code, "message": error.message}}
        extra = list(error.headers.items())
        if self.h11.our_state is h11.SEND_RESPONSE:
            await self.respond_json(error.status, payload, extra)
        elif self.h11.our_state is h11.IDLE:  # the head itself was refused: h11 answers only requests it read
            self.answered = True
            body = json.dumps(payload, ensure_ascii=False).encode()
            headers = [("Date", formatdate(usegmt=True)), *BASE_HEADERS, *_JSON_HEADERS, *extra]
            headers.append(("Content-Length", str(len(body))))
            lines = [f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}"]
            lines += [f"{name}: {value}" for name, value in headers]
            await self._write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    async def _write(self, data: bytes) -> None:
        self.writer.write(data)
        async with asyncio.timeout(self.idle_timeout):
            await self.writer.drain()

    async def close(self) -> None:
        """End the connection; after an early answer, linger first (see the module's docstring)."""
        writer = self.writer
        if writer.transport.is_closing():
            return
        if self.method and not self._body_done and self.h11.their_state is h11.SEND_BODY:
            with contextlib.suppress(Exception):
                await self._linger()
        writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.idle_timeout):
                await writer.wait_closed()

    async def _linger(self) -> None:
        if self.writer.can_write_eof():
            self.writer.write_eof()
        dropped = 0
        async with asyncio.timeout(LINGER):
            while dropped < _LINGER_BYTES:
                data = await self.reader.read(CHUNK)
                if not data:
                    return
                dropped += len(data)

    def abort(self) -> None:
        """Drop the connection at once (the server is stopping)."""
        self.writer.transport.abort()
