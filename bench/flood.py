"""Flood benchmark: do people keep chatting while one client floods the server?

    .venv/bin/python bench/flood.py              # every flood, 3 pairs of 10 s trials (about 10 minutes)
    .venv/bin/python bench/flood.py --quick      # one pair of 4 s trials each (about 1.5 minutes)
    .venv/bin/python bench/flood.py --floods pings,history

It starts ``chatbus serve`` as users start it (SQLite store, default plugins
and WebSocket limits; only the rate limit is raised so that the honest
senders below are never refused), signs in the honest clients with the
fan-out benchmark's load generator (``loadgen.py``, in worker processes),
and runs trials in pairs: a quiet one, then the same load while one more
client, in a process of its own, floods the server with one kind of frame as
fast as its socket takes them: invalid JSON (without signing in), messages
with empty text, pings, messages past the rate limit, typing, history
requests. Whenever the server closes the flooder it connects again at once,
as a determined attacker would.

Reported for each flood: the honest clients' delivery latency p99 next to
the quiet trial just before it, their ratio (the issue's target: at most
1.5), the longest ``/healthz`` answer during the flood, and what became of
the flooder (frames pushed, answers it got, how often it was closed and
with which code). Pairs keep the ratio about the flood rather than about
the noise of a shared machine; each flood's figure is the median over
``--repetitions`` pairs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import fanout
import loadgen
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.frames import Frame, Opcode
from websockets.sync.client import connect

__all__ = ["main"]

#: What each flood sends, and whether the flooder signs in first.
FLOODS: dict[str, tuple[str, bool]] = {
    "invalid JSON": ('{"type": "message", "data": {"te', False),
    "empty text": ('{"type": "message", "data": {"text": "   "}}', True),
    "pings": ('{"type": "ping"}', True),
    "rate-limited messages": ('{"type": "message", "data": {"text": "spam"}}', True),
    "typing": ('{"type": "typing"}', True),
    "history": ('{"type": "history", "data": {"limit": 200}}', True),
}
LIMIT = 1.5
#: Frames written to the socket in one go: the flooder is limited by how
#: fast the server takes them, not by Python building frames.
BATCH = 500


@dataclass
class Options:
    clients: int = 50
    senders: int = 20
    rate: float = 20.0  # messages per second from all senders (one a second each)
    seconds: float = 10.0
    workers: int = 2
    floods: tuple[str, ...] = tuple(FLOODS)
    repetitions: int = 3
    keep_logs: bool = False


class FloodServer(fanout.Server):
    """``chatbus serve`` with its defaults, but a rate limit no honest sender here reaches."""

    def __init__(self) -> None:  # fanout.Server's start, with this environment
        self.kind, self.compression = "chatbus", "none"
        self.port = fanout.free_port()
        self.url = f"ws://127.0.0.1:{self.port}/"
        self.folder = Path(tempfile.mkdtemp(prefix="flood-chatbus-"))
        self.log_path = self.folder / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATBUS_")}
        # Each honest sender sends one message a second; the flooder's
        # messages pass the first 10 and are refused from then on.
        env.update(
            CHATBUS_RATE_LIMIT__BURST="10", CHATBUS_RATE_LIMIT__PER_SECOND="2", CHATBUS_RATE_LIMIT__PER_HOUR="1000000"
        )
        self.command = fanout.chatbus_command() + ["serve", "--port", str(self.port), "--db", str(self.folder / "b.db")]
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.command,
            cwd=self.folder,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=loadgen.die_with_parent,  # noqa: PLW1509 - the coordinator is single-threaded
        )
        self._wait_ready(20.0)

    def log_bytes(self) -> int:
        self.log.flush()
        return self.log_path.stat().st_size


# the flooder -------------------------------------------------------------------
def flood(url: str, payload: str, sign_in: bool, seconds: float, conn: Connection) -> None:
    """Flood ``url`` with ``payload`` for ``seconds``, reconnecting whenever
    closed; send the tally to ``conn``. Runs in a process of its own."""
    loadgen.die_with_parent()
    batch = b"".join(Frame(Opcode.TEXT, payload.encode()).serialize(mask=True) for _ in range(BATCH))
    tally: dict[str, Any] = {"frames": 0, "connections": 0, "refused": 0, "answers": Counter(), "closes": Counter()}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            ws = connect(url, open_timeout=5, close_timeout=1, max_size=None)
        except (OSError, InvalidHandshake):
            tally["refused"] += 1
            time.sleep(0.01)
            continue
        tally["connections"] += 1
        with ws:
            answers: Counter[str] = tally["answers"]
            ready = threading.Event()
            reader = threading.Thread(target=_read, args=(ws, answers, ready), daemon=True)
            reader.start()
            if sign_in:
                ws.send(json.dumps({"type": "auth", "data": {"userId": "mallory"}}))
                ready.wait(5)
            sock = ws.socket
            # A send blocks while the server reads nothing: end it at the deadline.
            timer = threading.Timer(max(0.0, deadline - time.monotonic()), _shut, args=(sock,))
            timer.start()
            with contextlib.suppress(OSError):
                while time.monotonic() < deadline and reader.is_alive():
                    sock.sendall(batch)  # the server takes them as fast as it reads
                    tally["frames"] += BATCH
            timer.cancel()
            _shut(sock)
            reader.join(2)
            close = ws.protocol.close_rcvd
            tally["closes"][str(close.code) if close is not None else "none"] += 1
    conn.send(tally)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _read(ws: Any, answers: Counter[str], ready: threading.Event) -> None:
    """Read what the server answers the flooder, by type (error by code)."""
    try:
        for raw in ws:
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "error":
                kind = frame.get("data", {}).get("code")
            answers[str(kind)] += 1
            if kind == "auth_response":
                ready.set()
    except (ConnectionClosed, OSError, ValueError):
        pass
    ready.set()


def healthz_worst(port: int, stop: threading.Event, worst: list[float]) -> None:
    """Ask ``/healthz`` twice a second until ``stop``; keep the longest answer time."""
    while not stop.wait(0.5):
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
                sock.recv(1024)
        except OSError:
            worst.append(30.0)
            continue
        worst.append(time.monotonic() - started)


# trials ------------------------------------------------------------------------
@dataclass
class Pair:
    """One flood and the quiet trial before it."""

    flood: str
    quiet: fanout.TrialResult
    flooded: fanout.TrialResult
    healthz_ms: float
    flooder: dict[str, Any] = field(default_factory=dict)
    log_bytes: int = 0

    @property
    def ratio(self) -> float:
        return self.flooded.p99_ms / self.quiet.p99_ms

    @property
    def within(self) -> bool:
        return self.ratio <= LIMIT and self.flooded.correct and self.quiet.correct


def trial(load: fanout.Load, server: FloodServer, opts: Options) -> fanout.TrialResult:
    return load.trial(server, list(range(opts.clients)), opts.senders, opts.rate, opts.seconds, drain=5.0)


def run_pair(load: fanout.Load, server: FloodServer, opts: Options, name: str) -> Pair:
    quiet = trial(load, server, opts)
    fanout.log(f"  quiet:   {quiet.summary()}")
    payload, sign_in = FLOODS[name]
    ctx = mp.get_context("spawn")
    mine, theirs = ctx.Pipe()
    # The flood starts a second early, so the whole trial is under it.
    process = ctx.Process(target=flood, args=(server.url, payload, sign_in, opts.seconds + 3.0, theirs), daemon=True)
    logged = server.log_bytes()
    process.start()
    stop, worst = threading.Event(), []
    probe = threading.Thread(target=healthz_worst, args=(server.port, stop, worst), daemon=True)
    time.sleep(1.0)
    probe.start()
    try:
        flooded = trial(load, server, opts)
    finally:
        stop.set()
        probe.join(35)
    tally = mine.recv() if mine.poll(opts.seconds + 30) else {}
    process.join(10)
    fanout.log(f"  {name}: {flooded.summary()}")
    server.settle()
    pair = Pair(name, quiet, flooded, max(worst, default=float("nan")) * 1e3, tally, server.log_bytes() - logged)
    fanout.log(f"  flooder: {describe(pair)}")
    return pair


def describe(pair: Pair) -> str:
    tally = pair.flooder
    if not tally:
        return "no report"
    answers = ", ".join(f"{n:,} {kind}" for kind, n in tally["answers"].most_common(3)) or "none"
    closes = ", ".join(f"{n} x {code}" for code, n in sorted(tally["closes"].items()))
    return (
        f"pushed {tally['frames']:,} frames on {tally['connections']} connection(s); answers: {answers}; "
        f"ended: {closes}; log grew {pair.log_bytes / 1024:.1f} KiB"
    )


def render(pairs: Sequence[Pair], opts: Options, minutes: float) -> str:
    """One line per flood: medians over the repetitions, and the median of the ratios within each pair."""
    lines = [
        (
            f"flood results: {os.cpu_count()} cores, {minutes:.1f} minutes; honest load: {opts.clients} clients, "
            f"{opts.senders} of them sending {opts.rate:g} msg/s in all "
            f"({opts.rate * opts.clients:,.0f} deliveries/s), {opts.seconds:g} s per trial, "
            f"median of {opts.repetitions} pair(s)"
        ),
        f"  {'flood':<24}{'quiet p99 (ms)':>15}{'flooded p99 (ms)':>18}{'ratio':>8}{'healthz max (ms)':>18}  verdict",
    ]
    for name in opts.floods:
        mine = [pair for pair in pairs if pair.flood == name]
        if not mine:
            continue
        ratio = statistics.median(pair.ratio for pair in mine)
        complete = all(pair.flooded.correct and pair.quiet.correct for pair in mine)
        verdict = "INCOMPLETE" if not complete else "within 1.5x" if ratio <= LIMIT else "OVER 1.5x"
        lines.append(
            f"  {name:<24}{statistics.median(p.quiet.p99_ms for p in mine):>15.2f}"
            f"{statistics.median(p.flooded.p99_ms for p in mine):>18.2f}{ratio:>8.2f}"
            f"{max(p.healthz_ms for p in mine):>18.1f}  {verdict}"
        )
    lines.append(
        "  ratios of each pair: "
        + "; ".join(f"{name} " + " ".join(f"{p.ratio:.2f}" for p in pairs if p.flood == name) for name in opts.floods)
    )
    for pair in pairs[-len(opts.floods) :]:
        lines.append(f"  {pair.flood} (last pair): {describe(pair)}")
    return "\n".join(lines)


def run(opts: Options) -> int:
    started = time.monotonic()
    fanout.log(f"flood benchmark: floods {', '.join(opts.floods)}")
    pairs: list[Pair] = []
    server = FloodServer()
    try:
        with fanout.workers_running(opts.workers) as workers:
            load = fanout.Load(workers)
            signed = load.connect(server, range(opts.clients), quantum=0.0)
            if signed["failed"]:
                raise fanout.BenchError(f"honest clients could not sign in: {signed['failures']}")
            for repetition in range(opts.repetitions):
                for name in opts.floods:
                    fanout.log(f"{name} ({repetition + 1} of {opts.repetitions}):")
                    pairs.append(run_pair(load, server, opts, name))
            load.close()
    finally:
        server.stop(keep=opts.keep_logs)
    print()
    print(render(pairs, opts, (time.monotonic() - started) / 60))
    ratios = {name: statistics.median(p.ratio for p in pairs if p.flood == name) for name in opts.floods}
    return 0 if all(ratio <= LIMIT for ratio in ratios.values()) else 1


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4-second trials")
    parser.add_argument("--floods", help=f"comma-separated, from: {', '.join(FLOODS)}")
    parser.add_argument("--seconds", type=float, help="length of each trial (default 10)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--repetitions", type=int, help="pairs per flood (default 3, quick 1)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the server's scratch folder")
    args = parser.parse_args(argv)
    opts = Options(clients=args.clients, keep_logs=args.keep_logs)
    if args.quick:
        opts.seconds, opts.repetitions = 4.0, 1
    if args.repetitions:
        opts.repetitions = args.repetitions
    if args.seconds:
        opts.seconds = args.seconds
    if args.floods:
        chosen = tuple(name.strip() for name in args.floods.split(","))
        unknown = [name for name in chosen if name not in FLOODS]
        if unknown:
            parser.error(f"unknown flood(s) {unknown}; choose from {', '.join(FLOODS)}")
        opts.floods = chosen
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
