"""One chat connection, and every reach into websockets' internals.

chatbus serves its chat with the websockets library's public API (``serve``,
``recv``, ``send``, ``close``), plus a few things the public API does not
offer: telling text from binary messages when reading raw bytes, writing a
fan-out's frames with one system call, writing frames serialized once for
every connection, measuring and dropping a connection's unsent backlog, and
telling which side chose a close. Each of them uses the library's sans-I/O
protocol object or its asyncio transport, which are not covered by its
compatibility promises, so all of them live here, on :class:`ChatConnection`.

This module is written against websockets 17 (the project pins
``websockets>=17,<18``). Before moving the pin to a new major version, read
the library's changelog for ``Connection.process_event``,
``Connection.send_data``, ``Protocol.send_text``/``data_to_send``,
``Protocol.close_sent``/``close_rcvd_then_sent`` and ``Frame.serialize``,
and run ``tests/transports/websocket`` and ``bench/fanout.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from websockets.asyncio.server import ServerConnection
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import Event, State

from chatbus.core.message import Identity

__all__ = ["ChatConnection", "Serialized", "serialize_text"]

_OPEN = State.OPEN
_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY


class Serialized(Protocol):
    """A text frame to send: its JSON and the same as an unmasked frame."""

    @property
    def data(self) -> bytes: ...

    @property
    def wire(self) -> bytes: ...


def serialize_text(data: bytes) -> bytes:
    """``data`` (UTF-8 JSON) as a whole unmasked text frame, ready for any
    connection that negotiated no extension; done once per fan-out."""
    return Frame(_TEXT, data).serialize(mask=False)


class ChatConnection(ServerConnection):
    """A websockets server connection plus what chatbus keeps per connection."""

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
        # For each data message received, whether it was binary; read by the
        # handler in the same order as ``recv`` returns the messages.
        self._binary: deque[bool] = deque()

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

    # writing -------------------------------------------------------------
    def send_data(self) -> None:
        """Write what the protocol has queued in one write, not one per frame.

        With compression every frame goes through the protocol object; a
        fan-out of several frames then costs one system call instead of one
        per frame. An end-of-stream marker (closing) is handled as the
        library does.
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

    @property
    def plain(self) -> bool:
        """Whether frames can be written pre-serialized (no extension negotiated)."""
        return not self.protocol.extensions

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

    def write_frames(self, frames: Sequence[Serialized], serialized: bytes | None, limit: int) -> bool:
        """Write a fan-out's frames in one write, without waiting; False when
        more than ``limit`` bytes are still unsent (nothing is written then).

        ``serialized`` is ``frames`` already serialized (shared by every
        connection that gets them all), or None to join them here.
        Connections that negotiated compression encode each frame through
        their protocol object. A connection no longer open is skipped.
        """
        protocol = self.protocol
        if protocol.state is not _OPEN:
            return True
        transport = self.transport
        if transport.get_write_buffer_size() > limit:
            return False
        if protocol.extensions:
            for frame in frames:
                protocol.send_text(frame.data)
            self.send_data()
        else:
            transport.write(serialized if serialized is not None else b"".join(frame.wire for frame in frames))
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
