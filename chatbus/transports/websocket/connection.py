"""One chat connection, and every reach into websockets' internals.

chatbus serves its chat with the websockets library's public API (``serve``,
``recv``, ``send``, ``close``), plus a few things the public API does not
offer: telling text from binary messages when reading raw bytes, writing a
fan-out's frames with one system call, writing frames serialized once for
every connection, compressing a fan-out's frames once for every connection
that negotiated the same compression, measuring and dropping a connection's
unsent backlog, and telling which side chose a close. Each of them uses the
library's sans-I/O protocol object, its asyncio transport or its
permessage-deflate extension object, which are not covered by its
compatibility promises, so all of them live here, on :class:`ChatConnection`
and :class:`WireFormat`.

HTTP requests websockets cannot serve: its HTTP parser refuses a request
with a body, and its handler aborts the socket as soon as an answer that is
not a WebSocket upgrade has been queued, within ``open_timeout``, which
suits short answers only. A connection made by :func:`diverting` therefore
reads the request's first bytes itself before the library's handler task
starts (``connection_made`` starts it in the library): when its
:class:`Diverter` claims the request (``POST /files``, ``GET /files/...``),
the socket is handed over whole with ``transport.set_protocol`` and the
library never learns of it; otherwise the handler task starts as the library
would have started it and gets every byte read so far. Until that decision
the diverter's ``head_timeout`` bounds the wait, as ``open_timeout`` does
afterwards.

Compression: the server offers permessage-deflate with
``server_no_context_takeover`` (:func:`offered_extensions`), so the server
compresses each message on its own, with no memory of earlier ones. A
message compressed with the same window size and zlib settings is then the
same bytes for every connection that negotiated them: the fan-out
compresses it once per such group and writes those bytes to all of them,
and no connection keeps a compressor between messages (about 40 KiB each
with context takeover). What clients send is still decompressed by each
connection's own extension, with or without ``client_no_context_takeover``,
as the client negotiated.

This module is written against websockets 17 (the project pins
``websockets>=17,<18``). Before moving the pin to a new major version, read
the library's changelog for ``Connection.process_event``,
``Connection.send_data``, ``Protocol.send_text``/``data_to_send``,
``Protocol.extensions``, ``Protocol.close_sent``/``close_rcvd_then_sent``,
``Frame.serialize`` and ``PerMessageDeflate`` (its constructor, ``encode``,
``local_no_context_takeover``, ``local_max_window_bits`` and
``compress_settings``), ``ServerConnection.connection_made`` (which starts
the handler task) and ``Server.handler``/``handler_tasks``, and run
``tests/transports/websocket``, ``bench/fanout.py`` and ``bench/uploads.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any, ClassVar, Protocol

from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection
from websockets.extensions.base import ServerExtensionFactory
from websockets.extensions.permessage_deflate import PerMessageDeflate, ServerPerMessageDeflateFactory
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import Event, State

from chatbus.core.message import Identity

__all__ = ["PLAIN", "ChatConnection", "Diverter", "WireFormat", "diverting", "offered_extensions", "serialize_text"]

_OPEN = State.OPEN
_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY

# The library's own defaults for permessage-deflate (a 4 KiB window and
# memLevel 5: small decoders for the clients, small compressors for the
# server's replies), plus no context takeover on the server's side and zlib's
# fastest level: on chat frames it saves within 2% of the default level's
# bytes, and it compresses a sign-in's roster of thousands of names about
# seven times faster.
_WINDOW_BITS = 12
_COMPRESS_SETTINGS: Mapping[str, int] = {"memLevel": 5, "level": 1}
#: Bytes read while deciding who serves a request; a longer head goes to websockets (which refuses it).
_SNIFF_LIMIT = 64 * 1024


def offered_extensions(compression: str | None) -> list[ServerExtensionFactory] | None:
    """The extensions the server accepts for the ``compression`` setting
    (passed to ``serve`` as ``extensions``, with ``compression=None``).

    With ``"deflate"``: permessage-deflate with ``server_no_context_takeover``
    added to whatever the client offered (RFC 7692 7.1.1.1 lets the server
    do that, and every client must accept it), so that one compressed frame
    serves every connection with the same window (see :class:`WireFormat`).
    """
    if compression != "deflate":
        return None
    return [
        ServerPerMessageDeflateFactory(
            server_no_context_takeover=True,
            server_max_window_bits=_WINDOW_BITS,
            client_max_window_bits=_WINDOW_BITS,
            compress_settings=dict(_COMPRESS_SETTINGS),
        )
    ]


def serialize_text(data: bytes) -> bytes:
    """``data`` (UTF-8 JSON) as a whole unmasked, uncompressed text frame."""
    return Frame(_TEXT, data).serialize(mask=False)


class WireFormat:
    """How a broadcast frame is serialized for a group of connections: plain
    (:data:`PLAIN`), or compressed with one window size and zlib settings.

    Every connection of a group gets the very same bytes, built once per
    fan-out. There is one instance per distinct set of parameters (see
    :meth:`deflate`), so the fan-out can tell groups apart by identity.
    """

    __slots__ = ("compress_settings", "window_bits")

    _deflates: ClassVar[dict[tuple[int, tuple[tuple[str, Any], ...]], WireFormat]] = {}

    def __init__(self, window_bits: int | None, compress_settings: Mapping[str, Any]) -> None:
        #: The server's LZ77 window in bits, or None for uncompressed frames.
        self.window_bits = window_bits
        self.compress_settings = dict(compress_settings)

    @classmethod
    def deflate(cls, window_bits: int, compress_settings: Mapping[str, Any]) -> WireFormat:
        """The one format for these permessage-deflate parameters."""
        key = (window_bits, tuple(sorted(compress_settings.items())))
        found = cls._deflates.get(key)
        if found is None:
            found = cls._deflates[key] = cls(window_bits, compress_settings)
        return found

    def __repr__(self) -> str:
        if self.window_bits is None:
            return "WireFormat(plain)"
        return f"WireFormat(deflate, window_bits={self.window_bits}, {self.compress_settings})"

    def serialize(self, texts: Sequence[bytes], plain: Sequence[bytes]) -> list[bytes]:
        """``texts`` (UTF-8 JSON) as unmasked text frames in this format;
        ``plain`` are the same frames uncompressed (:func:`serialize_text`).

        Each message is compressed on its own, by websockets' own
        permessage-deflate encoder without context takeover (RSV1 set, the
        trailing ``00 00 ff ff`` removed). A message that compression does
        not make smaller goes out uncompressed, as RFC 7692 allows.
        """
        if self.window_bits is None:
            return list(plain)
        encoder = PerMessageDeflate(True, True, 15, self.window_bits, dict(self.compress_settings))
        out: list[bytes] = []
        for data, uncompressed in zip(texts, plain, strict=True):
            frame = Frame(_TEXT, data).serialize(mask=False, extensions=[encoder])
            out.append(frame if len(frame) < len(uncompressed) else uncompressed)
        return out


#: Frames for connections that negotiated no extension.
PLAIN = WireFormat(None, {})


class Diverter(Protocol):
    """Serves the HTTP requests that websockets cannot (see the module's docstring)."""

    #: Seconds a connection may take to send enough of its request for :meth:`claims` to decide.
    head_timeout: float

    def claims(self, head: bytes) -> bool | None:
        """Whether the request that starts with ``head`` is the diverter's; None: read more first.

        Asked when the request line has arrived and, after None, when the head has (a blank line),
        or when 64 KiB have come without either (None then means no)."""

    def take(self, transport: asyncio.Transport, received: bytes) -> None:
        """Serve the request on ``transport`` from now on (``set_protocol``); ``received`` is what was read so far."""


def diverting(diverter: Diverter) -> type[ChatConnection]:
    """The connection class (``serve``'s ``create_connection``) whose requests ``diverter`` may claim."""
    return type("DivertingConnection", (ChatConnection,), {"diverter": diverter})


class ChatConnection(ServerConnection):
    """A websockets server connection plus what chatbus keeps per connection."""

    #: Who may claim a request before websockets sees it (set by :func:`diverting`).
    diverter: ClassVar[Diverter | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Unique per connection; sent as ``sessionId`` and used in every log line.
        self.session_id: str = self.id.hex[:16]
        #: Who signed in on this connection (None until ``auth`` succeeds).
        self.identity: Identity | None = None
        #: True once the hub counts this connection in presence.
        self.joined = False
        #: While signing in: frames held back until ``auth_response`` is sent.
        self.pending: list[tuple[int | None, bytes]] | None = None
        self.pending_bytes = 0
        self.last_typing = float("-inf")
        #: The client's IP address: the peer's, or the one a trusted reverse
        #: proxy names (see :mod:`.proxies`); for log lines and per-address limits.
        self.client_address = "unknown"
        # For each data message received, whether it was binary; read by the
        # handler in the same order as ``recv`` returns the messages.
        self._binary: deque[bool] = deque()
        # While the diverter decides: the bytes read, and the timer that drops a silent client.
        self._sniffed: bytearray | None = None
        self._sniff_timer: asyncio.TimerHandle | None = None
        self._diverted = False
        self._line_ended = False

    # who serves the request ------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start websockets' handler at once, or only once the diverter has let the request go."""
        if self.diverter is None:
            super().connection_made(transport)
            return
        Connection.connection_made(self, transport)  # the library's own setup, without its handler task
        self._sniffed = bytearray()
        self._sniff_timer = self.loop.call_later(self.diverter.head_timeout, self.transport.abort)

    def data_received(self, data: bytes) -> None:
        sniffed = self._sniffed
        if sniffed is None:
            if self._diverted:  # a read the transport queued before it was handed over
                taker = self.transport.get_protocol()
                if isinstance(taker, asyncio.Protocol):
                    taker.data_received(data)
            else:
                super().data_received(data)
            return
        start = max(0, len(sniffed) - 3)
        sniffed += data
        if len(sniffed) <= _SNIFF_LIMIT and not self._head_ended(sniffed, start):
            return
        assert self.diverter is not None
        claimed = self.diverter.claims(bytes(sniffed))
        if claimed is None and len(sniffed) <= _SNIFF_LIMIT:
            return
        received = self._stop_sniffing()
        if claimed:
            self._diverted = True
            self.diverter.take(self.transport, received)
        else:
            self._start_handler()
            super().data_received(received)

    def _head_ended(self, sniffed: bytearray, start: int) -> bool:
        """Whether the bytes from ``start`` end the request line (the first time) or the head:
        the only moments :meth:`Diverter.claims` is asked, so a head sent a byte at a time
        is not looked through again for each byte."""
        window = sniffed[start:]
        if not self._line_ended:
            self._line_ended = b"\n" in window
            return self._line_ended
        return b"\n\n" in window or b"\n\r\n" in window

    def eof_received(self) -> None:
        if self._sniffed is not None:  # a request cut short: websockets answers it as it would have
            received = self._stop_sniffing()
            self._start_handler()
            super().data_received(received)
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._sniffed is not None:
            self._stop_sniffing()
        super().connection_lost(exc)

    def _stop_sniffing(self) -> bytes:
        received = bytes(self._sniffed or b"")
        self._sniffed = None
        if self._sniff_timer is not None:
            self._sniff_timer.cancel()
            self._sniff_timer = None
        return received

    def _start_handler(self) -> None:
        """What ``ServerConnection.connection_made`` does after the setup: run the library's handler."""
        task = self.loop.create_task(self.server.handler(self))
        self.server.handler_tasks.add(task)

    # reading -------------------------------------------------------------
    def process_event(self, event: Event) -> None:
        """Note whether each incoming message is text or binary before the
        library assembles it (``recv(decode=False)`` hides the difference)."""
        if isinstance(event, Frame) and (event.opcode is _TEXT or event.opcode is _BINARY):
            self._binary.append(event.opcode is _BINARY)
        super().process_event(event)

    def next_is_binary(self) -> bool:
        """Whether the message ``recv`` just returned arrived in a binary frame."""
        return self._binary.popleft() if self._binary else False

    def read_at_most(self, size: int) -> None:
        """Take at most ``size`` bytes from the socket per read instead of
        asyncio's 256 KiB: the library parses every frame of a read before
        anything else runs, so one read of tiny frames could hold the event
        loop for a third of a second. Over TLS the reads are left as they are."""
        if isinstance(getattr(self.transport, "max_size", None), int):
            self.transport.max_size = size  # type: ignore[attr-defined]

    # writing -------------------------------------------------------------
    def send_data(self) -> None:
        """Write what the protocol has queued in one write, not one per frame.

        Frames sent through the protocol object (replies, a sign-in's held
        frames) then cost one system call together instead of one each. An
        end-of-stream marker (closing) is handled as the library does.
        """
        chunks = self.protocol.data_to_send()
        if all(chunks):
            if chunks:
                self.transport.write(b"".join(chunks))
            return
        pending: list[bytes] = []
        for chunk in chunks:
            if chunk:
                pending.append(chunk)
                continue
            if pending:
                self.transport.write(b"".join(pending))
                pending.clear()
            if self.transport.can_write_eof():
                with contextlib.suppress(Exception):  # as the library: the connection is closing anyway
                    self.transport.write_eof()
            else:
                self.transport.close()
        if pending:
            self.transport.write(b"".join(pending))

    @cached_property
    def wire_format(self) -> WireFormat | None:
        """The group whose broadcast bytes this connection shares, fixed by
        the handshake; None when frames must go through its own protocol
        object (an extension this module does not know how to share)."""
        extensions = self.protocol.extensions
        if not extensions:
            return PLAIN
        if len(extensions) == 1:
            deflate = extensions[0]
            if isinstance(deflate, PerMessageDeflate) and deflate.local_no_context_takeover:
                return WireFormat.deflate(deflate.local_max_window_bits, deflate.compress_settings)
        return None

    @property
    def unsent(self) -> int:
        """Bytes written but not yet taken by the operating system."""
        return self.transport.get_write_buffer_size()

    def send_texts(self, texts: Iterable[bytes]) -> None:
        """Queue UTF-8 JSON texts as text frames and write them in one write,
        without waiting for room in the buffer; nothing when the connection is
        no longer open."""
        protocol = self.protocol
        if protocol.state is not _OPEN:
            return
        for data in texts:
            protocol.send_text(data)
        self.send_data()

    def write_serialized(self, serialized: bytes, limit: int) -> bool:
        """Write frames already serialized in this connection's
        :attr:`wire_format` (shared with its group) in one write, without
        waiting; False when more than ``limit`` bytes are still unsent
        (nothing is written then). A connection no longer open is skipped.
        """
        if self.protocol.state is not _OPEN:
            return True
        transport = self.transport
        if transport.get_write_buffer_size() > limit:
            return False
        transport.write(serialized)
        return True

    def write_texts(self, texts: Sequence[bytes], limit: int) -> bool:
        """Like :meth:`write_serialized`, for a connection whose frames go
        through its own protocol object (its :attr:`wire_format` is None)."""
        if self.protocol.state is not _OPEN:
            return True
        if self.transport.get_write_buffer_size() > limit:
            return False
        self.send_texts(texts)
        return True

    # closing -------------------------------------------------------------
    def drop(self) -> None:
        """Close the socket at once, discarding what is unsent (no closing handshake)."""
        self.transport.abort()

    async def close_within(self, code: int, reason: str, timeout: float) -> None:
        """Close with ``code``; a client that does not read the close frame
        within ``timeout`` seconds is dropped (its backlog would keep the
        close waiting forever)."""
        try:
            async with asyncio.timeout(timeout):
                await self.close(code, reason)
        except TimeoutError:
            self.drop()

    def close_chosen(self) -> Close | None:
        """The close frame this server sent first, or None when the client
        closed first (the server only echoed it) or no close frame was sent."""
        protocol = self.protocol
        if protocol.close_rcvd_then_sent:
            return None
        return protocol.close_sent

    @property
    def who(self) -> str:
        """``session (user)`` for log lines."""
        user = self.identity.user_id if self.identity is not None else "not signed in"
        return f"{self.session_id} ({user})"
