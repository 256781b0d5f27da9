"""The load generator of the fan-out benchmark: WebSocket clients in worker processes.

Each worker process holds a share of the clients on non-blocking sockets and
one ``epoll`` loop. The coordinator (``fanout.py``) drives the workers
through a pipe with a few commands: connect clients, run a trial, close
clients, report on a client that stopped reading.

Why the clients are lean: at 200,000 deliveries per second a client that
spends 10-20 µs per received frame (an asyncio protocol callback per socket
read, a full WebSocket client library, ``json.loads``) needs more cores than
this benchmark has in all, and the generator would be measured instead of
the server. So the opening handshake and the permessage-deflate negotiation
go through the ``websockets`` library's own client protocol (sans I/O), the
outgoing frames are built and, where negotiated, compressed by it too, and
incoming frames are split by a few lines below, decompressed by the
negotiated extension, and each distinct payload is parsed once per process
(every client of a broadcast receives the same bytes). When the server
compresses each message on its own (``server_no_context_takeover``), equal
compressed bytes always decode to the same text, so those too are
decompressed once per process instead of once per client. Sockets are read
straight from ``epoll``, without asyncio's per-read overhead. The generator's
CPU per delivery is reported next to the server's so that a run where the
generator was the limit shows it.

What a trial checks, for every receiving client: every message of the trial
arrived exactly once (a per-client tally indexed by the message number that
the sender put in the text), ids arrive strictly increasing (the server's
order), and each sender's messages got increasing ids (their order). Every
delivery's latency is the time the bytes reached the client's socket (the
kernel's receive timestamp, so the generator's own delay in reading is not
charged to the server) minus the send time embedded in the text; both are
wall-clock times of this machine.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import resource
import select
import signal
import socket
import struct
import time
from array import array
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from websockets.client import ClientProtocol
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

__all__ = ["HIST_SIZE", "Client", "Worker", "bucket_top", "bucket_value", "die_with_parent", "worker_main"]

monotonic = time.monotonic
wallclock = time.time

# Latency histogram: 10 µs buckets below one second, 1 ms buckets above, up to
# 100 s. Percentiles come out exact to the bucket width.
_FINE = 100_000
HIST_SIZE = _FINE + 99_000

_MESSAGE, _AUTH_OK, _AUTH_FAILED, _ERROR, _STRAY, _OTHER = range(6)
_TYPE = re.compile(rb'^\{\s*"type"\s*:\s*"([A-Za-z_]+)"')
_TEXT = re.compile(r"^(\S+) (\d+) ([0-9.]+)$")
_READ = select.EPOLLIN | select.EPOLLRDHUP
_WRITE = select.EPOLLOUT
_RECV_SIZE = 256 * 1024
# Kernel receive timestamps (SO_TIMESTAMPNS / SCM_TIMESTAMPNS on Linux): the
# moment the server's kernel put the bytes into this socket, so the time the
# generator takes to get round to reading a socket is not counted as the
# server's latency.
_SO_TIMESTAMPNS = 35
_ANCILLARY = socket.CMSG_SPACE(16)
_TIMESPEC = struct.Struct("qq")
_SLOW_RCVBUF = 16 * 1024
_SHARED_INFLATE_MAX = 4096  # compressed bytes: chat messages, not auth_response rosters
_PR_SET_PDEATHSIG = 1
_LINGER_ABORT = struct.pack("ii", 1, 0)

# client states
_CONNECTING, _HANDSHAKE, _AUTH, _OPEN, _CLOSING, _DEAD = range(6)


def bucket_value(index: int) -> float:
    """The latency (seconds) a histogram bucket stands for: its middle."""
    if index < _FINE:
        return (index + 0.5) * 1e-5
    return 1.0 + (index - _FINE + 0.5) * 1e-3


def bucket_top(index: int) -> float:
    """The upper edge of a histogram bucket (seconds): the maximum is reported with it."""
    if index < _FINE:
        return (index + 1) * 1e-5
    return 1.0 + (index - _FINE + 1) * 1e-3


class Trial:
    """One timed load: message k (0..count-1) is sent at ``t0 + k / rate`` by
    sender ``k % senders``; every receiver must get each exactly once."""

    def __init__(self, tag: str, count: int, receivers: list[Client]) -> None:
        self.tag = tag
        self.count = count
        self.receivers = receivers
        self.ids: dict[int, int] = {}  # message number -> server id
        self.pending = len(receivers)
        self.last_rx = 0.0
        self.complete_at = 0.0
        self.strays = 0


class Client:
    """One WebSocket client on a non-blocking socket: handshake, ``auth``,
    then frames split by hand."""

    def __init__(self, worker: Worker, index: int, user_id: str, url: str, *, slow: bool = False) -> None:
        self.worker = worker
        self.index = index
        self.user_id = user_id
        self.slow = slow
        self.handshake = ClientProtocol(parse_uri(url), extensions=enable_client_permessage_deflate(None))
        self.extensions: list[Extension] = []
        self.compressed = False
        self.shared_inflate = False  # the server keeps no context between messages
        self.sock: socket.socket | None = None
        self.fd = -1
        self.state = _CONNECTING
        self.reading = False
        self.buf = b""
        self.out = b""
        self.failure: str | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.ended: str | None = None  # how the connection ended, once it has
        self.received = 0  # message frames of any trial, ever
        # trial state
        self.got: bytearray | None = None
        self.count = 0
        self.target = 0
        self.finished = False
        self.last_id = 0
        self.order_errors = 0

    @property
    def authed(self) -> bool:
        return self.state == _OPEN

    def describe_failure(self) -> str:
        """Why this client is not signed in, for the report."""
        if self.failure:
            return self.failure
        if self.close_code is not None:
            return f"closed by the server with code {self.close_code} ({self.close_reason})"
        return self.ended or f"not signed in (state {self.state})"

    @property
    def settled(self) -> bool:
        """Signed in, or failed: no longer connecting."""
        return self.state in (_OPEN, _DEAD, _CLOSING)

    # socket ------------------------------------------------------------------
    def start(self, address: tuple[str, int]) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        except OSError:
            pass  # no kernel timestamps: the read time is used
        if self.slow:
            # A small receive window, so that what the client does not read
            # piles up in the server's own buffers within seconds instead of
            # first filling megabytes of kernel buffers on both sides.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SLOW_RCVBUF)
        self.sock = sock
        self.fd = sock.fileno()
        self.worker.by_fd[self.fd] = self
        error = sock.connect_ex(address)
        if error not in (0, 115):  # EINPROGRESS
            self.fail(f"could not connect: {os.strerror(error)}")
            return
        self.worker.epoll.register(self.fd, _READ | _WRITE)
        self.reading = True

    def fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
        self.drop(abort=True)

    def drop(self, *, abort: bool = False) -> None:
        """Forget the socket (RST when ``abort``)."""
        if self.state == _DEAD:
            return
        self.state = _DEAD
        sock, self.sock = self.sock, None
        if sock is None:
            return
        if self.reading or self.out:
            try:
                self.worker.epoll.unregister(self.fd)
            except (OSError, ValueError):
                pass
        self.reading = False
        self.worker.by_fd.pop(self.fd, None)
        if abort:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ABORT)
            except OSError:
                pass
        sock.close()

    def _events(self) -> int:
        return (_READ if self.reading else 0) | (_WRITE if self.out else 0)

    def _update(self, before: int) -> None:
        after = self._events()
        if after == before or self.sock is None:
            return
        if before and after:
            self.worker.epoll.modify(self.fd, after)
        elif after:
            self.worker.epoll.register(self.fd, after)
        else:
            self.worker.epoll.unregister(self.fd)

    def pause(self) -> None:
        """Stop reading (the kernel buffers fill, then the server's)."""
        if self.reading and self.sock is not None:
            before = self._events()
            self.reading = False
            self._update(before)

    def resume(self) -> None:
        if not self.reading and self.sock is not None:
            before = self._events()
            self.reading = True
            self._update(before)

    def write(self, data: bytes) -> None:
        sock = self.sock
        if sock is None:
            return
        if self.out:
            self.out += data
            return
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self.lost(f"write failed: {exc}")
            return
        if sent < len(data):
            before = self._events()
            self.out = data[sent:]
            self._update(before)

    def writable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        if self.state == _CONNECTING:
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                self.fail(f"could not connect: {os.strerror(error)}")
                return
            self.state = _HANDSHAKE
            self.worker.epoll.modify(self.fd, _READ)
            request = self.handshake.connect()
            self.handshake.send_request(request)
            self.write(b"".join(self.handshake.data_to_send()))
            return
        if self.out:
            before = self._events()
            try:
                sent = sock.send(self.out)
            except BlockingIOError:
                return
            except OSError as exc:
                self.lost(f"write failed: {exc}")
                return
            self.out = self.out[sent:]
            self._update(before)

    def lost(self, reason: str) -> None:
        if self.ended is None:
            self.ended = reason
        if self.state not in (_OPEN, _CLOSING, _DEAD):
            self.fail(reason)
        else:
            self.drop()

    def send_text(self, text: str) -> None:
        """Send one text frame (compressed when the server agreed to it)."""
        if self.state == _OPEN or self.state == _AUTH:
            self.write(Frame(Opcode.TEXT, text.encode()).serialize(mask=True, extensions=self.extensions))

    def close(self) -> None:
        """Start the closing handshake (the server then closes the TCP connection)."""
        if self.state in (_OPEN, _AUTH):
            self.state = _CLOSING
            self.resume()
            self.write(Frame(Opcode.CLOSE, (1000).to_bytes(2, "big") + b"bench done").serialize(mask=True))
        elif self.state in (_CONNECTING, _HANDSHAKE):
            self.drop(abort=True)

    # reading -----------------------------------------------------------------
    def readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        try:
            data, ancillary, _, _ = sock.recvmsg(_RECV_SIZE, _ANCILLARY)
        except BlockingIOError:
            return
        except OSError as exc:
            self.lost(f"read failed: {exc}")
            return
        if not data:
            self.lost("closed by the server")
            return
        self.worker.rx_bytes += len(data)
        if ancillary and ancillary[0][1] == _SO_TIMESTAMPNS:
            seconds, nanoseconds = _TIMESPEC.unpack(ancillary[0][2])
            self.feed(data, seconds + nanoseconds * 1e-9)
        else:
            self.feed(data, wallclock())

    def feed(self, data: bytes, now: float) -> None:
        """Split ``data`` into frames and account for every delivery; ``now``
        is when the bytes arrived (wall clock, like the send times)."""
        if self.buf:
            data = self.buf + data
            self.buf = b""
        if self.state == _HANDSHAKE:
            data = self._handshake(data)
            if not data:
                return
        n = len(data)
        pos = 0
        worker = self.worker
        cache_get = worker.cache.get
        hist = worker.hist
        got = self.got
        last_id = self.last_id
        disorder = delivered = 0
        while n - pos >= 2:
            b0 = data[pos]
            length = data[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if n - pos < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > n:
                break
            payload = data[start:end]
            pos = end
            if b0 != 0x81:
                if b0 == 0xC1 and self.compressed:  # a compressed text message
                    payload = self._inflate(payload)
                else:
                    self._control(b0, payload)
                    continue
            hit = cache_get(payload)
            if hit is None:
                hit = worker.classify(payload)
            if hit[0] != _MESSAGE:
                self._other(hit, payload)
                continue
            _, number, message_id, sent = hit
            if message_id <= last_id:
                disorder += 1
            last_id = message_id
            delivered += 1
            if got is not None:
                if got[number] < 255:
                    got[number] += 1
                latency = now - sent
                if latency < 1.0:
                    hist[int(latency * 100_000.0) if latency > 0.0 else 0] += 1
                else:
                    hist[min(_FINE + int((latency - 1.0) * 1000.0), HIST_SIZE - 1)] += 1
        if pos < n:
            self.buf = data[pos:]
        if delivered:
            self.last_id = last_id
            self.received += delivered
            if disorder:
                self.order_errors += disorder
            if got is not None:
                count = self.count = self.count + delivered
                trial = worker.trial
                if trial is not None:
                    trial.last_rx = now
                    if count >= self.target and not self.finished:
                        self.finished = True
                        trial.pending -= 1
                        if trial.pending == 0:
                            trial.complete_at = now

    def _inflate(self, payload: bytes) -> bytes:
        """A compressed message's text, decoded once per process when it does
        not depend on earlier messages. Large frames (a sign-in's roster) are
        unique to their client and are not kept."""
        if self.shared_inflate and len(payload) <= _SHARED_INFLATE_MAX:
            inflated = self.worker.inflated
            text = inflated.get(payload)
            if text is None:
                text = inflated[payload] = bytes(
                    self.extensions[0].decode(Frame(Opcode.TEXT, payload, True, True)).data
                )
            return text
        return bytes(self.extensions[0].decode(Frame(Opcode.TEXT, payload, True, True)).data)

    def _handshake(self, data: bytes) -> bytes:
        """Feed the HTTP response to the websockets client protocol; return what follows it."""
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) > 65536:
                self.fail("the server's handshake response is too long")
            else:
                self.buf = data
            return b""
        head, rest = data[: end + 4], data[end + 4 :]
        status = head.split(b"\r\n", 1)[0]
        if not status.startswith(b"HTTP/1.1 101"):
            self.fail(f"handshake refused: {status.decode(errors='replace')}")
            return b""
        self.handshake.receive_data(head)
        self.handshake.events_received()
        if self.handshake.handshake_exc is not None or self.handshake.state is not State.OPEN:
            self.fail(f"handshake failed: {self.handshake.handshake_exc}")
            return b""
        self.extensions = list(self.handshake.extensions)
        self.compressed = bool(self.extensions)
        self.shared_inflate = self.compressed and bool(getattr(self.extensions[0], "remote_no_context_takeover", False))
        self.state = _AUTH
        self.send_text(json.dumps({"type": "auth", "data": {"userId": self.user_id}}))
        return rest

    def _control(self, b0: int, payload: bytes) -> None:
        opcode = b0 & 0x0F
        if opcode == 0x9:  # ping: answer as every client must
            self.write(Frame(Opcode.PONG, payload).serialize(mask=True))
        elif opcode == 0x8:  # close: note the code, echo it, wait for the server to hang up
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self.close_code = code
            self.close_reason = payload[2:].decode(errors="replace")
            if self.state == _AUTH:
                self.failure = f"closed by the server with code {code} before auth_response"
            if self.state != _CLOSING:
                self.state = _CLOSING
                self.write(Frame(Opcode.CLOSE, payload[:2]).serialize(mask=True))
        elif opcode in (0x0, 0x1, 0x2):
            self.worker.unexpected += 1  # fragmented or binary data: neither server sends it

    def _other(self, hit: tuple[Any, ...], payload: bytes) -> None:
        kind = hit[0]
        if kind == _AUTH_OK:
            if self.state == _AUTH:
                self.state = _OPEN
                if self.slow:
                    self.pause()
        elif kind == _AUTH_FAILED:
            self.fail(f"auth refused: {payload[:200].decode(errors='replace')}")
        elif kind == _ERROR:
            self.worker.error_frames += 1
            if self.worker.first_error is None:
                self.worker.first_error = payload[:300].decode(errors="replace")
            if self.state == _AUTH:
                self.fail(f"error frame before auth_response: {payload[:200].decode(errors='replace')}")
        elif kind == _STRAY:
            self.received += 1
            if self.worker.trial is not None:
                self.worker.trial.strays += 1


class Worker:
    """One process's clients, its epoll loop, its parse cache and its latency histogram."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.epoll = select.epoll()
        self.epoll.register(conn.fileno(), select.EPOLLIN)
        self.pipe_fd = conn.fileno()
        self.command_waiting = False
        self.by_fd: dict[int, Client] = {}
        self.clients: dict[int, Client] = {}
        self.cache: dict[bytes, tuple[Any, ...]] = {}
        self.inflated: dict[bytes, bytes] = {}  # compressed -> text, when the server keeps no context
        self.hist = array("Q", [0]) * HIST_SIZE
        self.trial: Trial | None = None
        self.unexpected = 0
        self.error_frames = 0
        self.first_error: str | None = None
        self.payload_bytes = self.payloads = self.rx_bytes = 0
        # Between commands nothing is measured: read in batches.
        self.idle_quantum = 0.05

    def poll(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for socket events and handle them."""
        by_fd = self.by_fd
        for fd, events in self.epoll.poll(max(0.0, timeout)):
            client = by_fd.get(fd)
            if client is None:
                if fd == self.pipe_fd:
                    self.command_waiting = True
                continue
            if events & _WRITE:
                client.writable()
            if events & ~_WRITE and client.sock is not None and client.reading:
                client.readable()

    def pump(self, timeout: float, quantum: float) -> None:
        """Handle socket events for up to ``timeout`` seconds; with a
        ``quantum``, read what is ready now and then let data pile up, so
        each read takes many frames (for idle clients, whose latency does
        not matter, reading every frame as it comes costs more than the
        server spends sending it)."""
        if quantum:
            self.poll(0.0)
            time.sleep(max(0.0, min(quantum, timeout)))
        else:
            self.poll(timeout)

    # parsing -----------------------------------------------------------------
    def classify(self, payload: bytes) -> tuple[Any, ...]:
        """Parse a payload seen for the first time in this process; cache what
        every later client needs from it (broadcasts are the same bytes)."""
        match = _TYPE.match(payload)
        if match and match.group(1) == b"auth_response":
            # Unique per connection (and long: it lists everyone online), so
            # it is neither cached nor parsed whole.
            return (_AUTH_OK,) if b'"success":true' in payload[:400] else (_AUTH_FAILED,)
        try:
            frame = json.loads(payload)
        except ValueError:
            self.unexpected += 1
            return (_OTHER,)
        kind = frame.get("type") if isinstance(frame, dict) else None
        data = frame.get("data") if isinstance(frame, dict) else None
        result: tuple[Any, ...] = (_OTHER,)
        if kind == "message" and isinstance(data, dict):
            found = _TEXT.match(str(data.get("text", "")))
            trial = self.trial
            message_id = data.get("id")
            result = (_STRAY,)
            if found and trial is not None and found.group(1) == trial.tag and isinstance(message_id, int):
                number = int(found.group(2))
                if number < trial.count:
                    result = (_MESSAGE, number, message_id, float(found.group(3)))
                    self.payload_bytes += len(payload)
                    self.payloads += 1
                    trial.ids[number] = message_id
        elif kind == "auth_response":
            return (_AUTH_OK,) if isinstance(data, dict) and data.get("success") is True else (_AUTH_FAILED,)
        elif kind == "error":
            return (_ERROR,)
        self.cache[payload] = result
        return result

    # commands ----------------------------------------------------------------
    def connect(
        self, url: str, clients: list[tuple[int, str, bool]], concurrency: int, timeout: float, quantum: float = 0.0
    ) -> dict[str, Any]:
        """Open and sign in the given clients (index, user id, slow), those not signed in already."""
        started = monotonic()
        deadline = started + timeout
        uri = parse_uri(url)
        address = (uri.host, uri.port)
        waiting: list[Client] = []
        for index, user_id, slow in clients:
            old = self.clients.get(index)
            if old is not None:
                if old.authed:
                    continue
                old.drop(abort=True)
            client = Client(self, index, user_id, url, slow=slow)
            self.clients[index] = client
            waiting.append(client)
        waiting.reverse()
        busy: list[Client] = []
        done: list[Client] = []
        while (waiting or busy) and monotonic() < deadline:
            while waiting and len(busy) < concurrency:
                client = waiting.pop()
                client.start(address)
                busy.append(client)
            self.pump(0.02, quantum)
            still: list[Client] = []
            for client in busy:
                (done if client.settled else still).append(client)
            busy = still
        for client in busy + waiting:
            client.fail("timed out while connecting and signing in")
            done.append(client)
        failed = [c for c in done if not c.authed]
        self.cache.clear()
        self.inflated.clear()
        return {
            "ok": len(done) - len(failed),
            "failed": len(failed),
            "failures": [c.describe_failure() for c in failed[:5]],
            "seconds": monotonic() - started,
        }

    def run_trial(
        self,
        tag: str,
        count: int,
        senders: int,
        rate: float,
        t0: float,
        mine: dict[int, int],
        receivers: list[int],
        drain: float,
        quantum: float = 0.0,
    ) -> dict[str, Any]:
        """Send this worker's share of the trial on schedule, wait for every
        receiver to have everything (or ``drain`` seconds after the last
        scheduled send), and report.

        With ``quantum`` (seconds) the sockets are read at most that often,
        so each read takes several frames: far less generator CPU per
        delivery, at the price of frames that share a read sharing its
        receive timestamp (the last one's).
        """
        self.cache.clear()
        self.inflated.clear()
        self.hist = array("Q", [0]) * HIST_SIZE
        self.unexpected = self.error_frames = 0
        self.payload_bytes = self.payloads = self.rx_bytes = 0
        self.first_error = None
        ready = [self.clients[i] for i in receivers if i in self.clients]
        trial = Trial(tag, count, ready)
        for client in ready:
            client.got = bytearray(count)
            client.count = 0
            client.target = count
            client.finished = False
            client.order_errors = 0
        self.trial = trial
        usage0 = resource.getrusage(resource.RUSAGE_SELF)

        # message numbers this worker sends, and by whom
        numbers = [k for k in range(count) if k % senders in mine]
        by_sender = {s: self.clients[c] for s, c in mine.items()}
        total = len(numbers)
        i = sent = 0
        first_send = last_send = max_lag = 0.0
        end = t0 + count / rate
        give_up = end + drain
        while True:
            now = wallclock()
            if i < total:
                due = (now - t0) * rate
                while i < total and numbers[i] <= due:
                    k = numbers[i]
                    at = wallclock()
                    by_sender[k % senders].send_text(
                        f'{{"type":"message","data":{{"text":"{tag} {k} {at:.6f}","id":"{tag}-{k}"}}}}'
                    )
                    lag = at - (t0 + k / rate)
                    max_lag = max(max_lag, lag)
                    if not first_send:
                        first_send = at
                    last_send = at
                    sent += 1
                    i += 1
                wait = t0 + numbers[i] / rate - wallclock() if i < total else 0.0
            else:
                if trial.pending <= 0 or now > give_up:
                    break
                wait = min(0.05, give_up - now)
            self.pump(min(0.05, wait), quantum)
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
        self.trial = None
        report = self._report(trial, usage1.ru_utime - usage0.ru_utime, usage1.ru_stime - usage0.ru_stime)
        report.update(sent=sent, first_send=first_send, last_send=last_send, max_send_lag=max_lag)
        for client in ready:
            client.got = None
        return report

    def _report(self, trial: Trial, user: float, system: float) -> dict[str, Any]:
        missing = duplicated = incomplete = disorder = closed = 0
        first_problem: str | None = None
        for client in trial.receivers:
            got = client.got
            assert got is not None
            lost = got.count(0)
            extra = client.count - (trial.count - lost)
            if lost or extra or client.order_errors:
                incomplete += 1
                if first_problem is None:
                    first_problem = (
                        f"{client.user_id}: {lost} missing, {extra} duplicated, "
                        f"{client.order_errors} out of order, close code {client.close_code}"
                    )
            missing += lost
            duplicated += extra
            disorder += client.order_errors
            if not client.authed:
                closed += 1
        hist = {i: c for i, c in enumerate(self.hist) if c}
        return {
            "receivers": len(trial.receivers),
            "deliveries": sum(hist.values()),
            "hist": hist,
            "max_latency": bucket_top(max(hist)) if hist else 0.0,
            "missing": missing,
            "duplicated": duplicated,
            "out_of_order": disorder,
            "incomplete_clients": incomplete,
            "closed_clients": closed,
            "first_problem": first_problem,
            "ids": trial.ids,
            "last_rx": trial.last_rx,
            "complete_at": trial.complete_at if trial.pending <= 0 else None,
            "strays": trial.strays,
            "unexpected_frames": self.unexpected,
            "error_frames": self.error_frames,
            "first_error": self.first_error,
            "cpu": user + system,
            "cpu_user": user,
            "cpu_system": system,
            "payload_bytes": self.payload_bytes,
            "payloads": self.payloads,
            "rx_bytes": self.rx_bytes,
        }

    def close(self, indices: list[int] | None, timeout: float) -> dict[str, Any]:
        """Close clients (all when ``indices`` is None): closing handshake, then abort stragglers."""
        chosen = [
            self.clients[i] for i in (indices if indices is not None else list(self.clients)) if i in self.clients
        ]
        for client in chosen:
            client.close()
        deadline = monotonic() + timeout
        while monotonic() < deadline and any(c.state != _DEAD for c in chosen):
            self.poll(0.05)
        aborted = 0
        for client in chosen:
            if client.state != _DEAD:
                client.drop(abort=True)
                aborted += 1
            self.clients.pop(client.index, None)
        return {"closed": len(chosen), "aborted": aborted}

    def probe(self, indices: list[int], wait: float) -> dict[int, dict[str, Any]]:
        """Let stalled clients read again and say what had happened to them."""
        out: dict[int, dict[str, Any]] = {}
        for index in indices:
            client = self.clients.get(index)
            if client is None:
                continue
            before = client.received
            client.resume()
            deadline = monotonic() + wait
            last = -1
            while monotonic() < deadline and client.state != _DEAD:
                pause = monotonic() + 0.2
                while monotonic() < pause:
                    self.poll(0.05)
                if client.received == last:
                    break
                last = client.received
            out[index] = {
                "received_before_probe": before,
                "received": client.received,
                "close_code": client.close_code,
                "ended": client.ended,
                "open": client.authed,
            }
        return out

    def serve(self) -> None:
        """Answer the coordinator's commands until ``exit``; keep sockets
        serviced (keepalive pings) while waiting."""
        handlers: dict[str, Callable[..., Any]] = {
            "connect": self.connect,
            "trial": self.run_trial,
            "close": self.close,
            "probe": self.probe,
        }
        while True:
            while not self.command_waiting:
                self.pump(1.0, self.idle_quantum)
            self.command_waiting = False
            while self.conn.poll():
                name, kwargs = self.conn.recv()
                if name == "exit":
                    self.close(None, 2.0)
                    self.conn.send(("exit", {}))
                    return
                if name == "ping":
                    self.conn.send(("ping", {"pid": os.getpid()}))
                    continue
                try:
                    result = handlers[name](**kwargs)
                except Exception as exc:  # noqa: BLE001 - the coordinator reports it and stops the run
                    self.conn.send(("error", {"command": name, "error": f"{type(exc).__name__}: {exc}"}))
                    continue
                self.conn.send((name, result))


def die_with_parent() -> None:
    """Ask Linux to end this process (SIGTERM) when its parent dies, so no
    server or worker outlives a benchmark that was killed."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the benchmark still stops its children itself


def worker_main(conn: Connection, nice: int = 0) -> None:
    """Entry point of a worker process; ``nice`` lowers its priority so the
    server under test gets the CPU first."""
    die_with_parent()
    if nice:
        os.nice(nice)
    Worker(conn).serve()
