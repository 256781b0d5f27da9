"""Fan-out: the hub's deliveries to every signed-in connection, without waiting.

Like websockets' ``broadcast()``, a frame is encoded once and written to
every open connection, closed ones are skipped, a failure is logged per
connection, and no client can hold up the others: nothing here awaits a
socket. Beyond that, frames queued during one turn of the event loop go out
together, one socket write per connection per turn however many messages
arrived, and every connection of a :class:`~.connection.WireFormat` gets
the same bytes, built once per turn: serialized once for connections that
negotiated no extension, and compressed once per distinct window for those
that negotiated permessage-deflate (the server takes no context over
from one message to the next, so the bytes do not depend on the
connection). A connection more than ``max_backlog_bytes`` behind is cut off
with 1013 instead of buffering more; it can reconnect and resume with
``lastSeenId``.

A connection that is signing in gets its frames held (see :meth:`Broadcaster.hold`)
until its ``auth_response`` has gone out, so a sign-in neither misses a
message nor gets one twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from websockets.frames import CloseCode
from websockets.protocol import State

from .connection import PLAIN, ChatConnection, WireFormat, serialize_text
from .settings import WebSocketSettings

if TYPE_CHECKING:
    from chatbus.core.metrics import Metrics

__all__ = ["Broadcaster"]

log = logging.getLogger("chatbus.transports.websocket")

_OPEN = State.OPEN


class _Outgoing(NamedTuple):
    """A frame waiting for the next flush: its JSON, the message id it
    carries (None for events), who must not get it, and when the hub
    accepted its message (seconds since the epoch; 0 for events)."""

    data: bytes
    message_id: int | None
    skip_user: str | None
    accepted: float


class _Serialized:
    """One flush's frames serialized in one wire format: each frame, and all
    of them joined (what every connection but a typist gets)."""

    __slots__ = ("frames", "joined")

    def __init__(self, frames: list[bytes]) -> None:
        self.frames = frames
        self.joined = b"".join(frames)

    def without(self, outbox: list[_Outgoing], user: str | None) -> bytes:
        """The frames joined, minus those ``user`` must not get."""
        return b"".join(frame for frame, item in zip(self.frames, outbox, strict=True) if item.skip_user != user)


class Broadcaster:
    """Writes a transport's outgoing frames to its signed-in connections.

    The transport adds a connection with :meth:`hold` when it starts signing
    in and :meth:`release` once its ``auth_response`` is sent, and removes it
    from :attr:`live` when it closes. :meth:`send` queues a frame for all of
    them; :attr:`last_delivered` and :meth:`delivered_through` let a sign-in
    wait until the messages it read from the store have been handed out.
    """

    def __init__(self, settings: WebSocketSettings) -> None:
        self.settings = settings
        self._deliveries: Any = None
        self._latency: Any = None
        self._cut_offs: Any = None
        #: Connections that get deliveries: signed in, or signing in (held).
        self.live: set[ChatConnection] = set()
        #: Every message up to this id has been written or held for every
        #: connection in :attr:`live`.
        self.last_delivered = 0
        self._outbox: list[_Outgoing] = []
        self._flush_scheduled = False
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._closers: set[asyncio.Task[None]] = set()

    def measure(self, metrics: Metrics | None, transport: str) -> None:
        """Count deliveries, their latency and cut-offs in ``metrics`` (None or turned off: count nothing)."""
        if metrics is None or not metrics.enabled:
            self._deliveries = self._latency = self._cut_offs = None
            return
        self._deliveries = metrics.deliveries.labels(transport)
        self._latency = metrics.delivery_latency.labels(transport)
        self._cut_offs = metrics.slow_consumers.labels(transport)

    # queueing and writing ------------------------------------------------
    def send(self, data: bytes, message_id: int | None, skip_user: str | None = None, accepted: float = 0.0) -> None:
        """Queue one encoded frame (UTF-8 JSON) for every connection in :attr:`live`
        but ``skip_user``'s; ``message_id`` is the message it carries, if any,
        and ``accepted`` when the hub accepted it (for the delivery latency).

        Frames queued during one turn of the event loop go out together in
        :meth:`_flush`: one socket write per connection however many
        messages arrived, instead of one write (one system call) per
        message per connection.
        """
        self._outbox.append(_Outgoing(data, message_id, skip_user, accepted))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Write the queued frames to every connection without waiting.

        Whatever is worth knowing once per message rather than once per
        connection (how many connections it reached, how long it waited) is
        best taken here, after :meth:`_write_out`, not in its loop.
        """
        self._flush_scheduled = False
        outbox, self._outbox = self._outbox, []
        if not outbox:
            return
        written = 0
        try:
            written = self._write_out(outbox)
        except Exception:  # a bug here must not stop later deliveries
            log.exception("could not write %d frame(s) to the connections", len(outbox))
        if self._deliveries is not None:
            self._count(outbox, written)
        last = next((item.message_id for item in reversed(outbox) if item.message_id is not None), None)
        if last is not None:
            self.delivered(last)

    def _count(self, outbox: list[_Outgoing], written: int) -> None:
        """Deliveries made, and each message's wait from the hub to the sockets."""
        if written:
            self._deliveries.inc(written)
        now = time.time()
        for item in outbox:
            if item.accepted:
                self._latency.observe(max(0.0, now - item.accepted))

    def _write_out(self, outbox: list[_Outgoing]) -> int:
        """Every connection of a wire format gets the same bytes, built on
        first need (:meth:`_serialized`) and written in one write; a
        connection whose format cannot be shared encodes the frames through
        its own protocol object. Connections still signing in get the
        frames held; a connection whose unsent backlog is over the bound is
        cut off. Returns how many frames were written (or held)."""
        skips = {item.skip_user for item in outbox if item.skip_user is not None}
        built: dict[WireFormat, _Serialized] = {}
        limit = self.settings.max_backlog_bytes
        behind: list[ChatConnection] = []
        written = 0
        for connection in self.live:
            mine = outbox
            user = None
            if skips:  # someone's own typing frame: leave it out of that person's frames
                user = connection.identity.user_id if connection.identity is not None else None
                if user in skips:
                    mine = [item for item in outbox if item.skip_user != user]
            pending = connection.pending
            if pending is not None:
                for item in mine:
                    pending.append((item.message_id, item.data))
                    connection.pending_bytes += len(item.data)
                written += len(mine)
                if connection.pending_bytes > limit:
                    behind.append(connection)
                continue
            if not mine:
                continue
            try:
                wire_format = connection.wire_format
                if wire_format is None:
                    wrote = connection.write_texts([item.data for item in mine], limit)
                else:
                    frames = built.get(wire_format) or self._serialized(built, wire_format, outbox)
                    wrote = connection.write_serialized(
                        frames.joined if mine is outbox else frames.without(outbox, user), limit
                    )
                if not wrote:
                    behind.append(connection)
                else:
                    written += len(mine)
            except Exception as exc:  # noqa: BLE001 - one broken socket must not stop the others
                log.warning("session %s: could not write a frame: %s", connection.who, type(exc).__name__)
                behind.append(connection)
        for connection in behind:
            self.cut_off(connection)
        return written

    @staticmethod
    def _serialized(
        built: dict[WireFormat, _Serialized], wire_format: WireFormat, outbox: list[_Outgoing]
    ) -> _Serialized:
        """The flush's frames in ``wire_format``, made once per flush: plain
        frames serialized once, compressed ones once per window from them."""
        plain = built.get(PLAIN)
        if plain is None:
            plain = built[PLAIN] = _Serialized([serialize_text(item.data) for item in outbox])
        if wire_format is PLAIN:
            return plain
        texts = [item.data for item in outbox]
        made = built[wire_format] = _Serialized(wire_format.serialize(texts, plain.frames))
        return made

    # signing in ----------------------------------------------------------
    def hold(self, connection: ChatConnection) -> None:
        """Start giving a connection that is signing in every frame, held
        back until :meth:`release`."""
        connection.pending = []
        connection.pending_bytes = 0
        self.live.add(connection)

    def release(self, connection: ChatConnection, floor: int) -> None:
        """Send a connection the frames held for it, except messages up to
        ``floor`` (it got those in ``missed``), and write to it directly from now on."""
        held, connection.pending = connection.pending, None
        connection.pending_bytes = 0
        if connection not in self.live or held is None or connection.state is not _OPEN:
            return  # cut off, or closed by the client, while signing in
        connection.send_texts(frame for message_id, frame in held if message_id is None or message_id > floor)
        if connection.unsent > self.settings.max_backlog_bytes:
            self.cut_off(connection)

    def delivered(self, message_id: int) -> None:
        """Every message up to ``message_id`` has reached the connections (or
        their held frames); release sign-ins waiting for that."""
        self.last_delivered = message_id
        if self._waiters:
            self._wake(message_id)

    async def delivered_through(self, message_id: int) -> None:
        """Wait until every message up to ``message_id`` has been handed out
        (at most ``close_timeout`` seconds)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((message_id, waiter))
        try:
            async with asyncio.timeout(self.settings.close_timeout):
                await waiter
        except TimeoutError:
            log.warning("message %d was stored but not delivered in time; a client may see it twice", message_id)
        finally:
            if not waiter.done():
                waiter.cancel()
                self._waiters = [(mid, w) for mid, w in self._waiters if w is not waiter]

    def _wake(self, delivered: int) -> None:
        """Release the sign-ins waiting for ``delivered`` (see :meth:`delivered_through`)."""
        still: list[tuple[int, asyncio.Future[None]]] = []
        for message_id, waiter in self._waiters:
            if message_id <= delivered:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                still.append((message_id, waiter))
        self._waiters = still

    # slow consumers ------------------------------------------------------
    def cut_off(self, connection: ChatConnection) -> None:
        """Stop writing to a connection that fell too far behind and close it (1013)."""
        if connection not in self.live:
            return
        self.live.discard(connection)
        if self._cut_offs is not None:
            self._cut_offs.inc()
        backlog = connection.pending_bytes if connection.pending is not None else connection.unsent
        log.warning(
            "session %s: cut off, %d bytes unsent (max_backlog_bytes is %d); it can reconnect and resume",
            connection.who,
            backlog,
            self.settings.max_backlog_bytes,
        )
        closing = connection.close_within(
            CloseCode.TRY_AGAIN_LATER,
            "Too far behind; reconnect with lastSeenId to resume.",
            self.settings.close_timeout,
        )
        task = asyncio.get_running_loop().create_task(closing)
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def aclose(self) -> None:
        """Stop the closes of cut-off connections still in progress (the server is stopping)."""
        for task in list(self._closers):
            task.cancel()
        await asyncio.gather(*self._closers, return_exceptions=True)
