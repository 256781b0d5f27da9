"""Fan-out benchmark: chatbus side by side with a bare websockets server.

    .venv/bin/python bench/fanout.py            # the full run, several minutes
    .venv/bin/python bench/fanout.py --quick    # about a minute, for trying things

In one run, on this machine, it starts ``chatbus serve`` exactly as users
start it (SQLite store, default plugins, rate limits raised through settings
so they do not throttle the load) and the baseline server
(``bench/baseline_server.py``), and drives both with the same load generator
(``bench/loadgen.py``, in separate processes) through five scenarios:

1. 100 clients: the highest input rate at which every client still receives
   every message; deliveries/s, latency p50/p99, server CPU per delivery.
2. 1,000 clients, 20 messages/s in: latency p50/p99/max.
3. 10,000 idle signed-in connections: server memory per connection.
4. scenario 1's load plus one client that never reads: the others' latency.
5. 100 clients at one fixed input rate for every server and compression
   setting: CPU and bytes on the wire per delivery for the same work.

Every figure is the median of the repetitions, and chatbus / baseline is the
median of the ratios taken within each repetition, so the noise of a shared
machine mostly cancels. Both compression settings are measured, and a last
table puts the four servers side by side (chatbus and the baseline, each
without and with permessage-deflate) with chatbus's cost of compression. The
tables are printed and the same figures are written as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import loadgen

__all__ = ["Options", "main"]

SERVERS = ("chatbus", "baseline")
MODES = ("none", "deflate")
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The targets, as (figure, limit, higher is better).
TARGETS = {
    "s1_deliveries_per_s": (0.8, True),
    "s2_p99_ms": (1.5, False),
    # Memory per connection is judged on the one-user variant: with distinct
    # users the RSS also holds the allocator's high-water mark from the
    # rosters, which grows with N and with how far the server got.
    "s3_one_user_kib_per_connection": (2.0, False),
}
S4_LIMIT = 1.5
# Compression is chatbus's default only while it costs at most this much CPU
# per delivery, against no compression, at the same load (and saves bytes).
DEFLATE_CPU_LIMIT = 1.3


class BenchError(Exception):
    """Something stopped the run (a server that does not start, a worker that died)."""


@dataclass
class Options:
    """What to run; ``--quick`` shrinks everything."""

    quick: bool = False
    repetitions: int = 3
    workers: int = 2
    modes: tuple[str, ...] = MODES
    s1_clients: int = 100
    s1_senders: int = 10
    s1_seconds: float = 3.0
    s1_start_rate: float = 1000.0
    s1_bisect: int = 4
    s2_clients: int = 1000
    s2_senders: int = 20
    s2_rate: float = 20.0
    s2_seconds: float = 10.0
    s3_connections: int = 10_000
    s3_seconds: float = 120.0
    s4_fraction: float = 0.7
    s4_seconds: float = 20.0
    s5_rate: float = 300.0
    s5_seconds: float = 5.0
    nice: int = 0
    read_quantum: float = 0.002
    scenarios: tuple[int, ...] = (1, 2, 3, 4, 5)
    json_path: Path = HERE / "results" / "fanout.json"
    keep_logs: bool = False

    @classmethod
    def quick_run(cls, **changes: Any) -> Options:
        base = cls(
            quick=True,
            repetitions=1,
            s1_seconds=1.0,
            s1_bisect=2,
            s2_clients=200,
            s2_seconds=2.0,
            s3_connections=500,
            s3_seconds=30.0,
            s4_seconds=1.5,
            s5_seconds=1.5,
        )
        for key, value in changes.items():
            setattr(base, key, value)
        return base


# servers ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def chatbus_command() -> list[str]:
    """``chatbus`` from the same environment as this Python, as users run it."""
    script = Path(sys.executable).parent / "chatbus"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "chatbus.cli"]


class Server:
    """One server process under test, in a scratch folder of its own."""

    def __init__(
        self, kind: str, compression: str, *, max_connections: int, extra_env: dict[str, str] | None = None
    ) -> None:
        self.kind = kind
        self.compression = compression
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/"
        self.folder = Path(tempfile.mkdtemp(prefix=f"fanout-{kind}-"))
        self.log_path = self.folder / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATBUS_")}
        if kind == "chatbus":
            command = chatbus_command() + ["serve", "--port", str(self.port), "--db", str(self.folder / "bench.db")]
            env.update(
                CHATBUS_RATE_LIMIT__BURST="1000000000",
                CHATBUS_RATE_LIMIT__PER_SECOND="1000000000",
                CHATBUS_RATE_LIMIT__PER_HOUR="1000000000",
                CHATBUS_WEBSOCKET__COMPRESSION=compression,
                CHATBUS_WEBSOCKET__MAX_CONNECTIONS=str(max_connections),
                # every client of the load comes from 127.0.0.1
                CHATBUS_WEBSOCKET__MAX_CONNECTIONS_PER_ADDRESS=str(max_connections),
            )
            env.update(extra_env or {})
        else:
            command = [
                sys.executable,
                str(HERE / "baseline_server.py"),
                "--port",
                str(self.port),
                "--compression",
                compression,
            ]
        self.command = command
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command,
            cwd=self.folder,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=loadgen.die_with_parent,  # noqa: PLW1509 - the coordinator is single-threaded
        )
        self._wait_ready(20.0)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.kind} exited with code {self.process.returncode}:\n{self.tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.05)
        raise BenchError(f"{self.kind} did not accept connections within {timeout:g} s:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        self.log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise BenchError("VmRSS not found in /proc status")

    def cpu_seconds(self) -> float:
        """User plus system CPU of the server process, all its threads."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def settle(self, quiet: float = 0.6, timeout: float = 20.0) -> None:
        """Wait until the server has been (nearly) idle for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        last = self.cpu_seconds()
        calm_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = self.cpu_seconds()
            if now - last > 0.2 * 0.05 + 1.0 / CLK_TCK:
                calm_since = time.monotonic()
            last = now
            if time.monotonic() - calm_since >= quiet:
                return

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, keep: bool = False) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()
        if not keep:
            shutil.rmtree(self.folder, ignore_errors=True)


# workers ---------------------------------------------------------------------
class Workers:
    """The load generator's processes and the pipe to each."""

    def __init__(self, count: int, nice: int = 0) -> None:
        ctx = mp.get_context("spawn")
        self.pipes = []
        self.processes = []
        for _ in range(count):
            mine, theirs = ctx.Pipe()
            process = ctx.Process(target=loadgen.worker_main, args=(theirs, nice), daemon=True)
            process.start()
            theirs.close()
            self.pipes.append(mine)
            self.processes.append(process)
        self.count = count
        self.pids = [reply["pid"] for reply in self.call("ping", [{}] * count, 30.0)]

    def call(self, name: str, kwargs: Sequence[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
        """Send one command to every worker (its own arguments) and gather the replies."""
        for pipe, args in zip(self.pipes, kwargs, strict=True):
            pipe.send((name, args))
        replies = []
        deadline = time.monotonic() + timeout
        for pipe, process in zip(self.pipes, self.processes, strict=True):
            while not pipe.poll(0.2):
                if not process.is_alive():
                    raise BenchError(f"a load-generator process died (exit code {process.exitcode})")
                if time.monotonic() > deadline:
                    raise BenchError(f"a load-generator process did not answer {name!r} within {timeout:g} s")
            kind, result = pipe.recv()
            if kind == "error":
                raise BenchError(f"load generator failed in {result['command']}: {result['error']}")
            replies.append(result)
        return replies

    def stop(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError, BrokenPipeError):
                pipe.send(("exit", {}))
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(2)


def user_id(index: int) -> str:
    return f"u{index:05d}"


class Load:
    """Client bookkeeping on top of the workers: client i lives in worker i % W."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.trials = 0

    def _split(self, indices: Sequence[int]) -> list[list[int]]:
        parts: list[list[int]] = [[] for _ in range(self.workers.count)]
        for index in indices:
            parts[index % self.workers.count].append(index)
        return parts

    def connect(
        self,
        server: Server,
        indices: Sequence[int],
        *,
        slow: Sequence[int] = (),
        timeout: float = 120.0,
        quantum: float = 0.05,
        shared_user: bool = False,
    ) -> dict[str, Any]:
        """Sign in the clients not signed in yet; ``shared_user`` signs them all in as one user."""
        slow_set = set(slow)

        def name(i: int) -> str:
            return f"slow{i}" if i in slow_set else "idle" if shared_user else user_id(i)

        per_worker = [
            {
                "url": server.url,
                "clients": [(i, name(i), i in slow_set) for i in part],
                "concurrency": 64,
                "timeout": timeout,
                "quantum": quantum,
            }
            for part in self._split(indices)
        ]
        replies = self.workers.call("connect", per_worker, timeout + 30.0)
        failures = [f for reply in replies for f in reply["failures"]]
        return {
            "ok": sum(r["ok"] for r in replies),
            "failed": sum(r["failed"] for r in replies),
            "failures": failures[:5],
            "seconds": max(r["seconds"] for r in replies),
        }

    def close(self, indices: Sequence[int] | None = None, timeout: float = 10.0) -> None:
        args: list[dict[str, Any]]
        if indices is None:
            args = [{"indices": None, "timeout": timeout}] * self.workers.count
        else:
            args = [{"indices": part, "timeout": timeout} for part in self._split(indices)]
        self.workers.call("close", args, timeout + 30.0)

    def probe(self, indices: Sequence[int], wait: float = 3.0) -> dict[int, dict[str, Any]]:
        replies = self.workers.call(
            "probe", [{"indices": part, "wait": wait} for part in self._split(indices)], wait * len(indices) + 30.0
        )
        out: dict[int, dict[str, Any]] = {}
        for reply in replies:
            out.update({int(k): v for k, v in reply.items()})
        return out

    def trial(
        self,
        server: Server,
        receivers: Sequence[int],
        senders: int,
        rate: float,
        seconds: float,
        drain: float,
        quantum: float = 0.0,
    ) -> TrialResult:
        """Message k goes from client k % senders at t0 + k / rate; all of
        ``receivers`` must receive every message."""
        self.trials += 1
        tag = f"t{self.trials}"
        count = max(1, round(rate * seconds))
        t0 = time.time() + 0.3
        parts = self._split(receivers)
        args = []
        for w in range(self.workers.count):
            mine = {s: s for s in range(senders) if s % self.workers.count == w}
            args.append(
                {
                    "tag": tag,
                    "count": count,
                    "senders": senders,
                    "rate": rate,
                    "t0": t0,
                    "mine": mine,
                    "receivers": parts[w],
                    "drain": drain,
                    "quantum": quantum,
                }
            )
        cpu0 = server.cpu_seconds()
        replies = self.workers.call("trial", args, count / rate + drain + 60.0)
        cpu1 = server.cpu_seconds()
        return TrialResult.merge(rate, count, len(receivers), senders, t0, replies, cpu1 - cpu0)


def percentile(hist: dict[int, int], total: int, fraction: float) -> float:
    """The latency below which ``fraction`` of the deliveries fall (seconds)."""
    if total == 0:
        return math.nan
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for index in sorted(hist):
        seen += hist[index]
        if seen >= rank:
            return loadgen.bucket_value(index)
    return loadgen.bucket_value(max(hist))


@dataclass
class TrialResult:
    """The merged figures of one trial over every worker."""

    rate: float
    count: int
    receivers: int
    senders: int
    deliveries: int
    expected: int
    seconds: float  # first send to last delivery (or to giving up)
    complete: bool
    lost: int
    duplicated: int
    out_of_order: int
    sender_order_errors: int
    id_conflicts: int
    closed_clients: int
    max_send_lag: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    deliveries_per_s: float
    server_cpu_us: float  # server CPU per delivery
    client_cpu_us: float  # load-generator CPU per delivery
    error_frames: int
    first_problem: str | None
    payload_bytes: float  # one message frame, uncompressed
    wire_bytes: float  # bytes received per delivery, compressed where negotiated

    @property
    def correct(self) -> bool:
        """Nothing lost, duplicated or reordered, and every receiver done."""
        return (
            self.complete
            and self.lost == 0
            and self.duplicated == 0
            and self.out_of_order == 0
            and self.sender_order_errors == 0
            and self.id_conflicts == 0
        )

    def keeps_up(self) -> bool:
        """Correct, and the last delivery came within 5% (and 0.1 s) of the
        sending window: the server sustained the input rate."""
        window = self.count / self.rate
        return self.correct and self.seconds <= window * 1.05 + 0.1 + 0.05

    @classmethod
    def merge(
        cls, rate: float, count: int, receivers: int, senders: int, t0: float, replies: list[dict[str, Any]], cpu: float
    ) -> TrialResult:
        hist: dict[int, int] = {}
        for reply in replies:
            for index, n in reply["hist"].items():
                hist[int(index)] = hist.get(int(index), 0) + n
        deliveries = sum(hist.values())
        ids: dict[int, int] = {}
        conflicts = 0
        for reply in replies:
            for number, message_id in reply["ids"].items():
                known = ids.setdefault(int(number), message_id)
                if known != message_id:
                    conflicts += 1
        order_errors = 0
        for sender in range(senders):
            previous = 0
            for number in range(sender, count, senders):
                message_id = ids.get(number)
                if message_id is None:
                    continue
                if message_id <= previous:
                    order_errors += 1
                previous = message_id
        first_sends = [r["first_send"] for r in replies if r["first_send"]]
        start = min(first_sends) if first_sends else t0
        done = [r["complete_at"] for r in replies]
        complete = all(d is not None for d in done) and sum(r["sent"] for r in replies) == count
        end = max((d for d in done if d is not None), default=0.0) if complete else max(r["last_rx"] for r in replies)
        seconds = max(end - start, 1e-9)
        problems = [r["first_problem"] for r in replies if r["first_problem"]]
        return cls(
            rate=rate,
            count=count,
            receivers=receivers,
            senders=senders,
            deliveries=deliveries,
            expected=count * receivers,
            seconds=seconds,
            complete=complete,
            lost=sum(r["missing"] for r in replies),
            duplicated=sum(r["duplicated"] for r in replies),
            out_of_order=sum(r["out_of_order"] for r in replies),
            sender_order_errors=order_errors,
            id_conflicts=conflicts,
            closed_clients=sum(r["closed_clients"] for r in replies),
            max_send_lag=max(r["max_send_lag"] for r in replies),
            p50_ms=percentile(hist, deliveries, 0.50) * 1e3,
            p99_ms=percentile(hist, deliveries, 0.99) * 1e3,
            max_ms=max(r["max_latency"] for r in replies) * 1e3,
            deliveries_per_s=deliveries / seconds,
            server_cpu_us=cpu / deliveries * 1e6 if deliveries else math.nan,
            client_cpu_us=sum(r["cpu"] for r in replies) / deliveries * 1e6 if deliveries else math.nan,
            error_frames=sum(r["error_frames"] for r in replies),
            payload_bytes=(
                sum(r["payload_bytes"] for r in replies) / sum(r["payloads"] for r in replies)
                if any(r["payloads"] for r in replies)
                else math.nan
            ),
            wire_bytes=sum(r["rx_bytes"] for r in replies) / deliveries if deliveries else math.nan,
            first_problem=problems[0] if problems else None,
        )

    def summary(self) -> str:
        verdict = "keeps up" if self.keeps_up() else ("late" if self.correct else "INCOMPLETE")
        text = (
            f"{self.rate:8.0f} msg/s x {self.receivers} -> {self.deliveries_per_s:9.0f} deliveries/s, "
            f"p50 {self.p50_ms:7.2f} ms, p99 {self.p99_ms:7.2f} ms, max {self.max_ms:7.1f} ms, "
            f"server {self.server_cpu_us:5.2f} us/delivery, generator {self.client_cpu_us:5.2f} us/delivery"
            f"{f', sending lagged {self.max_send_lag * 1e3:.0f} ms' if self.max_send_lag > 0.02 else ''}: {verdict}"
        )
        if not self.correct:
            text += (
                f" (lost {self.lost}, duplicated {self.duplicated}, out of order {self.out_of_order}, "
                f"sender order {self.sender_order_errors}, closed clients {self.closed_clients}; {self.first_problem})"
            )
        return text


# scenarios -------------------------------------------------------------------
def log(message: str) -> None:
    print(message, flush=True)


def search_max_rate(
    load: Load, server: Server, opts: Options, hint: float | None, history: list[TrialResult]
) -> TrialResult:
    """Scenario 1: the highest input rate that 100 clients still keep up with.

    Doubles (or, near a previous repetition's answer, steps by 25%) until one
    rate passes and one fails, then bisects geometrically. Every trial is
    appended to ``history``.
    """
    clients = list(range(opts.s1_clients))
    seconds = opts.s1_seconds
    drain = max(2.0, 2 * seconds)
    best: TrialResult | None = None
    failed: float | None = None
    rate = hint * 0.9 if hint else opts.s1_start_rate
    factor = 1.25 if hint else 2.0
    tries = 0

    def run(at: float) -> TrialResult:
        nonlocal tries
        tries += 1
        again = load.connect(server, clients)
        if again["failed"]:
            raise BenchError(
                f"{server.kind}: {again['failed']} scenario 1 clients could not reconnect: {again['failures']}"
            )
        result = load.trial(server, clients, opts.s1_senders, at, seconds, drain, opts.read_quantum)
        history.append(result)
        log(f"    s1 {server.kind:8} {result.summary()}")
        if not result.keeps_up():
            server.settle(timeout=15.0)
        return result

    while (best is None or failed is None) and tries < 12:
        result = run(rate)
        if result.keeps_up():
            best = result
            rate *= factor
        else:
            failed = rate
            rate /= factor
        if rate < 10:
            break
    if best is None:
        raise BenchError(f"{server.kind}: no input rate kept 100 clients complete (lowest tried {rate:g} msg/s)")
    for _ in range(opts.s1_bisect):
        if failed is None or failed / best.rate < 1.04:
            break
        middle = math.sqrt(best.rate * failed)
        result = run(middle)
        if result.keeps_up():
            best = result
        else:
            failed = middle
    return best


def slow_reader(load: Load, server: Server, opts: Options, s1_rate: float) -> dict[str, Any]:
    """Scenario 4: the others' latency with one more client that never reads.

    Two trials of the same length at ``s4_fraction`` of the scenario 1 rate,
    back to back: first the 100 clients alone, then with a client that
    signed in and stopped reading. Comparing the pair, rather than scenario
    1's trial at the very edge of saturation, keeps the ratio about the slow
    client and not about where the edge fell.
    """
    clients = list(range(opts.s1_clients))
    rate = s1_rate * opts.s4_fraction
    drain = max(2.0, opts.s4_seconds)
    load.connect(server, clients)
    control = load.trial(server, clients, opts.s1_senders, rate, opts.s4_seconds, drain, opts.read_quantum)
    log(f"    s4 {server.kind:8} {control.summary()} (no slow client)")
    server.settle(timeout=15.0)
    slow = opts.s2_clients + opts.s3_connections + 1  # an index no other scenario uses
    hooked = load.connect(server, [slow], slow=[slow])
    if hooked["failed"]:
        raise BenchError(f"{server.kind}: the slow client could not connect: {hooked['failures']}")
    result = load.trial(server, clients, opts.s1_senders, rate, opts.s4_seconds, drain, opts.read_quantum)
    log(f"    s4 {server.kind:8} {result.summary()} (one client not reading)")
    fate = load.probe([slow]).get(slow, {})
    fate["messages_sent_meanwhile"] = result.count
    load.close([slow], timeout=5.0)
    server.settle(timeout=15.0)
    return {"control": control, "trial": result, "slow_client": fate}


def same_load(load: Load, server: Server, opts: Options) -> TrialResult:
    """Scenario 5: scenario 1's clients at one fixed rate, the same for every
    server and compression setting, so CPU and bytes per delivery compare
    the same work (scenario 1 measures each at its own highest rate)."""
    clients = list(range(opts.s1_clients))
    joined = load.connect(server, clients)
    if joined["failed"]:
        raise BenchError(
            f"{server.kind}: {joined['failed']} scenario 5 clients could not connect: {joined['failures']}"
        )
    server.settle(timeout=15.0)
    drain = max(10.0, 3 * opts.s5_seconds)
    result = load.trial(server, clients, opts.s1_senders, opts.s5_rate, opts.s5_seconds, drain, opts.read_quantum)
    log(f"    s5 {server.kind:8} {result.summary()}")
    server.settle(timeout=15.0)
    return result


def many_clients(load: Load, server: Server, opts: Options) -> TrialResult:
    """Scenario 2: 1,000 clients, 20 messages/s in."""
    clients = list(range(opts.s2_clients))
    joined = load.connect(server, clients)
    if joined["failed"]:
        raise BenchError(
            f"{server.kind}: {joined['failed']} of {len(clients)} clients could not connect: {joined['failures']}"
        )
    server.settle(timeout=30.0)
    result = load.trial(server, clients, opts.s2_senders, opts.s2_rate, opts.s2_seconds, 10.0)
    log(f"    s2 {server.kind:8} {result.summary()}")
    return result


def idle_memory(load: Load, kind: str, mode: str, opts: Options, *, shared_user: bool) -> dict[str, Any]:
    """Scenario 3: memory per idle signed-in connection, on a fresh server.

    With distinct users (the scenario as specified) every sign-in also
    carries the roster of everyone online, and chatbus tells everyone about
    each newcomer, so signing in N users costs the server O(N^2) and leaves
    the allocator's high-water mark from those roster frames in the RSS.
    With ``shared_user`` every connection signs in as the same user: what is
    left is the cost of holding a connection itself.
    """
    n = opts.s3_connections
    server = Server(kind, mode, max_connections=n + 100)
    label = "one user" if shared_user else "distinct users"
    try:
        warm = list(range(20))
        load.connect(server, warm, shared_user=shared_user)
        load.close(warm)
        server.settle()
        before = server.rss_kib()
        clients = list(range(n))
        joined = load.connect(server, clients, timeout=opts.s3_seconds, shared_user=shared_user)
        server.settle(timeout=60.0)
        after = server.rss_kib()
        alive = server.alive()
        held = joined["ok"]
        figures = {
            "users": "one" if shared_user else "distinct",
            "connections": n,
            "connected": held,
            "failed": joined["failed"],
            "failures": joined["failures"],
            "connect_seconds": joined["seconds"],
            "time_bound_seconds": opts.s3_seconds,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "kib_per_connection": (after - before) / held if held else math.nan,
            "held_without_errors": joined["failed"] == 0 and alive,
        }
        log(
            f"    s3 {kind:8} {label}: {held}/{n} signed in in {joined['seconds']:.1f} s, "
            f"RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB: {figures['kib_per_connection']:.1f} KiB per connection"
            + (f"; not signed in: {joined['failures'][:2]}" if joined["failed"] else "")
        )
        load.close(clients, timeout=0.0)  # nothing is measured any more: reset them all at once
        return figures
    finally:
        server.stop(opts.keep_logs)


def run_block(
    load: Load, kind: str, mode: str, opts: Options, hint: float | None, *, skip_distinct: bool = False
) -> dict[str, Any]:
    """Scenarios 1, 4 and 2 on one server process, then 3 on fresh ones
    (``skip_distinct``: not the distinct-users variant, which already ran
    out of its time in an earlier repetition; repeating it would only say
    so again, minutes later)."""
    block: dict[str, Any] = {}
    if {1, 2, 4, 5} & set(opts.scenarios):
        server = Server(kind, mode, max_connections=max(opts.s2_clients, opts.s1_clients) + 100)
        try:
            if 1 in opts.scenarios:
                block["s1_trials"] = []
                block["s1"] = search_max_rate(load, server, opts, hint, block["s1_trials"])
            if 4 in opts.scenarios:
                block["s4"] = slow_reader(load, server, opts, block["s1"].rate)
            if 5 in opts.scenarios:
                block["s5"] = same_load(load, server, opts)
            if 2 in opts.scenarios:
                block["s2"] = many_clients(load, server, opts)
            if not server.alive():
                raise BenchError(f"{kind} died during the run:\n{server.tail()}")
            load.close(None, timeout=10.0)
        except BaseException:
            log(f"  {kind} log tail:\n{server.tail()}")
            raise
        finally:
            server.stop(opts.keep_logs)
    if 3 in opts.scenarios:
        if skip_distinct:
            log(
                f"    s3 {kind:8} distinct users: skipped: an earlier repetition could not sign them all in within the time bound"
            )
        else:
            block["s3"] = idle_memory(load, kind, mode, opts, shared_user=False)
        block["s3_one_user"] = idle_memory(load, kind, mode, opts, shared_user=True)
    return block


# results ---------------------------------------------------------------------
def figures_of(block: dict[str, Any]) -> dict[str, float]:
    """The scalar figures of one server in one repetition (NaN where the
    scenario was not run)."""
    out = {key: math.nan for key, _, _ in LABELS}
    s1: TrialResult | None = block.get("s1")
    if s1 is not None:
        out.update(
            s1_input_rate=s1.rate,
            s1_deliveries_per_s=s1.deliveries_per_s,
            s1_p50_ms=s1.p50_ms,
            s1_p99_ms=s1.p99_ms,
            s1_server_us_per_delivery=s1.server_cpu_us,
            s1_generator_us_per_delivery=s1.client_cpu_us,
            s1_payload_bytes=s1.payload_bytes,
            s1_wire_bytes=s1.wire_bytes,
        )
    s5: TrialResult | None = block.get("s5")
    if s5 is not None:
        out.update(
            s5_p99_ms=s5.p99_ms,
            s5_server_us_per_delivery=s5.server_cpu_us,
            s5_wire_bytes=s5.wire_bytes,
            s5_kept_up=float(s5.keeps_up()),
        )
    s2: TrialResult | None = block.get("s2")
    if s2 is not None:
        out.update(
            s2_p50_ms=s2.p50_ms,
            s2_p99_ms=s2.p99_ms,
            s2_max_ms=s2.max_ms,
            s2_server_us_per_delivery=s2.server_cpu_us,
            s2_kept_up=float(s2.keeps_up()),
        )
    if "s3" in block:
        out.update(
            s3_kib_per_connection=block["s3"]["kib_per_connection"],
            s3_connected=block["s3"]["connected"],
            s3_connect_seconds=block["s3"]["connect_seconds"],
        )
    if "s3_one_user" in block:
        out.update(
            s3_one_user_kib_per_connection=block["s3_one_user"]["kib_per_connection"],
            s3_one_user_connect_seconds=block["s3_one_user"]["connect_seconds"],
        )
    if "s4" in block:
        s4: TrialResult = block["s4"]["trial"]
        control: TrialResult = block["s4"]["control"]
        out.update(
            s4_rate=s4.rate,
            s4_control_p99_ms=control.p99_ms,
            s4_p50_ms=s4.p50_ms,
            s4_p99_ms=s4.p99_ms,
            s4_p99_vs_s1=s4.p99_ms / control.p99_ms if control.p99_ms else math.nan,
        )
    return out


def correctness_of(block: dict[str, Any]) -> dict[str, Any]:
    """Whether each scenario that ran lost, duplicated or reordered nothing (None: not run)."""
    s4 = block.get("s4")
    return {
        "s1_correct": block["s1"].correct if "s1" in block else None,
        "s2_correct": block["s2"].correct if "s2" in block else None,
        "s3_held": block["s3"]["held_without_errors"] if "s3" in block else None,
        "s3_one_user_held": block["s3_one_user"]["held_without_errors"] if "s3_one_user" in block else None,
        "s4_others_correct": s4["trial"].correct and s4["control"].correct if s4 else None,
        "s5_correct": block["s5"].correct if "s5" in block else None,
        "s4_slow_client": s4["slow_client"] if s4 else {},
    }


LABELS = [
    ("s1_input_rate", "S1 highest input rate (msg/s, 100 clients)", "{:,.0f}"),
    ("s1_deliveries_per_s", "S1 deliveries/s", "{:,.0f}"),
    ("s1_p50_ms", "S1 latency p50 (ms)", "{:.2f}"),
    ("s1_p99_ms", "S1 latency p99 (ms)", "{:.2f}"),
    ("s1_server_us_per_delivery", "S1 server CPU per delivery (us)", "{:.2f}"),
    ("s1_generator_us_per_delivery", "S1 generator CPU per delivery (us)", "{:.2f}"),
    ("s1_payload_bytes", "S1 message frame size (bytes, uncompressed)", "{:.0f}"),
    ("s1_wire_bytes", "S1 bytes received per delivery (on the wire)", "{:.0f}"),
    ("s2_p50_ms", "S2 latency p50 (ms, 1,000 clients, 20 msg/s)", "{:.2f}"),
    ("s2_p99_ms", "S2 latency p99 (ms)", "{:.2f}"),
    ("s2_max_ms", "S2 latency max (ms)", "{:.2f}"),
    ("s2_server_us_per_delivery", "S2 server CPU per delivery (us)", "{:.2f}"),
    ("s3_kib_per_connection", "S3 memory per idle connection (KiB)", "{:.1f}"),
    ("s3_connected", "S3 connections signed in within the time bound", "{:,.0f}"),
    ("s3_connect_seconds", "S3 time to sign them in (s)", "{:.1f}"),
    ("s3_one_user_kib_per_connection", "S3' same, all as one user: KiB per connection", "{:.1f}"),
    ("s3_one_user_connect_seconds", "S3' time to sign them in (s)", "{:.1f}"),
    ("s4_rate", "S4 input rate (msg/s, 0.7 x S1)", "{:,.0f}"),
    ("s4_control_p99_ms", "S4 latency p99 without the slow client (ms)", "{:.2f}"),
    ("s4_p50_ms", "S4 others' latency p50 (ms, one client not reading)", "{:.2f}"),
    ("s4_p99_ms", "S4 others' latency p99 (ms)", "{:.2f}"),
    ("s4_p99_vs_s1", "S4 others' p99 / p99 without it (same server)", "{:.2f}"),
    ("s5_server_us_per_delivery", "S5 server CPU per delivery (us, same load for all)", "{:.2f}"),
    ("s5_wire_bytes", "S5 bytes received per delivery (on the wire)", "{:.0f}"),
    ("s5_p99_ms", "S5 latency p99 (ms)", "{:.2f}"),
]


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else math.nan


def summarize(runs: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    """Medians per server and the median of the per-repetition ratios;
    a target of a scenario that did not run is ``met: None``."""
    reps = [run[mode] for run in runs if mode in run]
    out: dict[str, Any] = {"figures": {}, "targets": {}, "correctness": {}}
    for key, _, _ in LABELS:
        chat = [figures_of(rep["chatbus"])[key] for rep in reps]
        base = [figures_of(rep["baseline"])[key] for rep in reps]
        ratios = [c / b if b else math.nan for c, b in zip(chat, base, strict=True)]
        out["figures"][key] = {
            "chatbus": median(chat),
            "baseline": median(base),
            "ratio": median(ratios),
            "chatbus_runs": chat,
            "baseline_runs": base,
        }
    fig = out["figures"]
    targets = out["targets"]
    for key, (limit, higher) in TARGETS.items():
        ratio = fig[key]["ratio"]
        met = None if math.isnan(ratio) else (ratio >= limit) if higher else (ratio <= limit)
        targets[key] = {"limit": limit, "value": ratio, "met": met}
    s4 = fig["s4_p99_vs_s1"]["chatbus"]
    targets["s4_p99_vs_s1"] = {"limit": S4_LIMIT, "value": s4, "met": None if math.isnan(s4) else s4 <= S4_LIMIT}
    checks = {server: [correctness_of(rep[server]) for rep in reps] for server in SERVERS}
    out["correctness"] = checks
    held = [c["s3_held"] for c in checks["chatbus"] if c["s3_held"] is not None]
    targets["s3_held_without_errors"] = {"limit": True, "value": all(held), "met": all(held) if held else None}
    verdicts = [
        c[key]
        for c in checks["chatbus"]
        for key in ("s1_correct", "s2_correct", "s4_others_correct", "s5_correct")
        if c[key] is not None
    ]
    targets["nothing_lost_or_duplicated"] = {
        "limit": True,
        "value": all(verdicts),
        "met": all(verdicts) if verdicts else None,
    }
    return out


def render(summary: dict[str, Any], mode: str, opts: Options, reps: int) -> str:
    lines = [
        (
            f"compression: {mode}   (median of {reps} repetition{'s' if reps != 1 else ''}; "
            f"ratio = median of chatbus/baseline within each repetition)"
        ),
        f"  {'figure':<52} {'chatbus':>12} {'baseline':>12} {'ratio':>8}",
    ]
    for key, label, fmt in LABELS:
        row = summary["figures"][key]
        if math.isnan(row["chatbus"]) and math.isnan(row["baseline"]):
            continue
        ratio = "" if key == "s4_p99_vs_s1" else _fmt("{:.2f}", row["ratio"])
        lines.append(f"  {label:<52} {_fmt(fmt, row['chatbus']):>12} {_fmt(fmt, row['baseline']):>12} {ratio:>8}")
    lines.append("  targets:")
    names = {
        "s1_deliveries_per_s": "S1 deliveries/s, chatbus/baseline >= 0.8",
        "s2_p99_ms": "S2 p99, chatbus/baseline <= 1.5",
        "s3_one_user_kib_per_connection": "S3' KiB per idle connection, chatbus/baseline <= 2",
        "s3_held_without_errors": f"S3 {opts.s3_connections:,} connections held without errors",
        "s4_p99_vs_s1": "S4 others' p99 <= 1.5 x without the slow client",
        "nothing_lost_or_duplicated": "nothing lost, duplicated or reordered (chatbus)",
    }
    for key, name in names.items():
        target = summary["targets"][key]
        if target["met"] is None:
            lines.append(f"    n/a   {name:<52} not run")
            continue
        value = target["value"]
        shown = f"{value:.2f}" if isinstance(value, float) else ("yes" if value else "no")
        lines.append(f"    {'MET ' if target['met'] else 'MISS'}  {name:<52} {shown}")
    marks = {True: "ok", False: "FAILED", None: "not run"}
    for server in SERVERS:
        for i, check in enumerate(summary["correctness"][server], 1):
            line = (
                f"  {server} rep {i}: s1 {marks[check['s1_correct']]}, s2 {marks[check['s2_correct']]}, "
                f"s3 {marks[check['s3_held']]}, s3' {marks[check['s3_one_user_held']]}, "
                f"s4 others {marks[check['s4_others_correct']]}, s5 {marks[check['s5_correct']]}"
            )
            slow = check["s4_slow_client"]
            if slow:
                if slow.get("close_code"):
                    fate = f"cut off by the server (close code {slow['close_code']})"
                elif slow.get("ended"):
                    fate = f"dropped ({slow['ended']})"
                else:
                    fate = "still connected, everything buffered"
                line += (
                    f"; slow client {fate}, had {slow.get('received', 0)} of "
                    f"{slow.get('messages_sent_meanwhile', 0)} messages when it read again"
                )
            lines.append(line)
    return "\n".join(lines)


COLUMNS = (("chatbus", "none"), ("chatbus", "deflate"), ("baseline", "none"), ("baseline", "deflate"))
SIDE_BY_SIDE = [
    ("s1_deliveries_per_s", "S1 deliveries/s (100 clients, highest rate kept up)", "{:,.0f}"),
    ("s2_p99_ms", "S2 latency p99 (ms, 1,000 clients)", "{:.2f}"),
    ("s3_one_user_kib_per_connection", "S3' memory per idle connection (KiB)", "{:.1f}"),
    ("s3_kib_per_connection", "S3 same, distinct users (KiB)", "{:.1f}"),
    ("s1_wire_bytes", "S1 bytes per delivery (on the wire)", "{:.0f}"),
    ("s5_wire_bytes", "S5 bytes per delivery (on the wire)", "{:.0f}"),
    ("s5_server_us_per_delivery", "S5 server CPU per delivery (us, same load)", "{:.2f}"),
    ("s2_server_us_per_delivery", "S2 server CPU per delivery (us, same load)", "{:.2f}"),
    ("s1_server_us_per_delivery", "S1 server CPU per delivery (us, own top rate)", "{:.2f}"),
]
# deflate / none within one server and repetition: (figure, server). A CPU
# figure counts only from repetitions where both trials kept up with the
# input: a server that falls behind writes more messages per event-loop turn,
# which makes each delivery cheaper, and the ratio would measure the backlog.
COMPRESSION_COSTS = [
    ("s5_server_us_per_delivery", "chatbus"),
    ("s2_server_us_per_delivery", "chatbus"),
    ("s5_wire_bytes", "chatbus"),
    ("s5_server_us_per_delivery", "baseline"),
    ("s5_wire_bytes", "baseline"),
]
KEPT_UP = {"s5_server_us_per_delivery": "s5_kept_up", "s2_server_us_per_delivery": "s2_kept_up"}


def side_by_side(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The four servers (chatbus and the baseline, without and with
    compression) from the repetitions that ran both settings: the median of
    each figure, the median of the deflate / none ratios within each
    repetition, and whether deflate stays within its cost limit."""
    reps = [run for run in runs if all(mode in run for mode in MODES)]
    figures = [{(kind, mode): figures_of(run[mode][kind]) for kind, mode in COLUMNS} for run in reps]
    table = {
        key: {f"{kind} {mode}": median([rep[kind, mode][key] for rep in figures]) for kind, mode in COLUMNS}
        for key, _, _ in SIDE_BY_SIDE
    }
    costs = {}
    for key, kind in COMPRESSION_COSTS:
        check = KEPT_UP.get(key)
        usable = [
            rep
            for rep in figures
            if check is None or (rep[kind, "none"].get(check) == 1.0 and rep[kind, "deflate"].get(check) == 1.0)
        ]
        ratios = [
            rep[kind, "deflate"][key] / rep[kind, "none"][key] if rep[kind, "none"][key] else math.nan for rep in usable
        ]
        costs[f"{kind} {key}"] = {"ratio": median(ratios), "runs": ratios, "of": len(figures)}
    cpu = max(
        (costs[f"chatbus {key}"]["ratio"] for key in ("s5_server_us_per_delivery", "s2_server_us_per_delivery")),
        key=lambda value: -math.inf if math.isnan(value) else value,
    )
    saved = costs["chatbus s5_wire_bytes"]["ratio"]
    known = not (math.isnan(cpu) or math.isnan(saved))
    return {
        "repetitions": len(reps),
        "figures": table,
        "deflate_over_none": costs,
        "decision": {
            "cpu_ratio": cpu,
            "cpu_limit": DEFLATE_CPU_LIMIT,
            "bytes_ratio": saved,
            "deflate_default": (cpu <= DEFLATE_CPU_LIMIT and saved < 1.0) if known else None,
        },
    }


def render_side_by_side(summary: dict[str, Any], opts: Options) -> str:
    reps = summary["repetitions"]
    lines = [
        (
            f"side by side   (median of {reps} repetition{'s' if reps != 1 else ''}; "
            f"S5 is {opts.s5_rate:,.0f} msg/s to {opts.s1_clients} clients for every server)"
        ),
        f"  {'figure':<52}"
        + "".join(f" {kind + ' ' + ('plain' if mode == 'none' else mode):>16}" for kind, mode in COLUMNS),
    ]
    for key, label, fmt in SIDE_BY_SIDE:
        row = summary["figures"][key]
        if all(math.isnan(row[f"{kind} {mode}"]) for kind, mode in COLUMNS):
            continue
        lines.append(f"  {label:<52}" + "".join(f" {_fmt(fmt, row[f'{kind} {mode}']):>16}" for kind, mode in COLUMNS))
    names = {
        "chatbus s5_server_us_per_delivery": "chatbus CPU per delivery, S5",
        "chatbus s2_server_us_per_delivery": "chatbus CPU per delivery, S2",
        "chatbus s5_wire_bytes": "chatbus bytes per delivery, S5",
        "baseline s5_server_us_per_delivery": "baseline CPU per delivery, S5",
        "baseline s5_wire_bytes": "baseline bytes per delivery, S5",
    }
    lines.append("  deflate / plain (median of the ratios within each repetition; CPU: where both kept up):")
    for key, name in names.items():
        cost = summary["deflate_over_none"][key]
        counted = f"({len(cost['runs'])} of {cost['of']})"
        lines.append(f"    {name:<50} {_fmt('{:.2f}', cost['ratio']):>8}  {counted}")
    decision = summary["decision"]
    verdict = decision["deflate_default"]
    if verdict is None:
        lines.append("  compression as the default: not decided (run scenarios 2 and 5 with both settings)")
    else:
        lines.append(
            f"  compression as the default: {'YES' if verdict else 'NO'}: chatbus deflate costs "
            f"{decision['cpu_ratio']:.2f} x plain CPU per delivery (limit {decision['cpu_limit']:.1f}) "
            f"and sends {decision['bytes_ratio']:.2f} x the bytes"
        )
    return "\n".join(lines)


def _fmt(fmt: str, value: float) -> str:
    return "-" if isinstance(value, float) and math.isnan(value) else fmt.format(value)


# environment -----------------------------------------------------------------
def prepare_limits(opts: Options) -> dict[str, Any]:
    """Raise the open-file limit for the connections and check the kernel's."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = opts.s3_connections + 1000
    if soft < needed:
        target = hard if hard == resource.RLIM_INFINITY else min(hard, max(needed, soft))
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        raise BenchError(
            f"the open-file limit is {soft} (hard {hard}); {opts.s3_connections} connections need {needed}. "
            "Raise it (ulimit -n) or run with a smaller --connections."
        )

    def read(path: str) -> str:
        try:
            return Path(path).read_text().strip()
        except OSError:
            return "?"

    ports = read("/proc/sys/net/ipv4/ip_local_port_range").split()
    span = int(ports[1]) - int(ports[0]) + 1 if len(ports) == 2 else 0
    if span and span < opts.s3_connections + 1000:
        raise BenchError(f"only {span} local ports ({' '.join(ports)}); {opts.s3_connections} connections need more")
    file_max = read("/proc/sys/fs/file-max")
    if file_max.isdigit() and int(file_max) < 3 * needed:
        raise BenchError(f"fs.file-max is {file_max}; the run needs about {3 * needed} open files in all")
    return {
        "nofile_soft": soft,
        "nofile_hard": hard,
        "local_ports": span,
        "somaxconn": read("/proc/sys/net/core/somaxconn"),
        "file_max": file_max,
    }


def source_revision() -> str:
    """The commit of the chatbus source tree being measured, marked when it has
    uncommitted changes (an editable install runs the working tree)."""
    root = HERE.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "chatbus"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not commit:
        return "unknown"
    return f"{commit} with uncommitted changes in chatbus/" if dirty else commit


def machine() -> dict[str, Any]:
    from websockets.version import version as websockets_version

    try:
        from importlib.metadata import version

        chatbus_version = version("chatbus")
    except Exception:  # noqa: BLE001 - not installed: reported as such
        chatbus_version = "not installed"
    return {
        "chatbus_source": source_revision(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "websockets": websockets_version,
        "chatbus": chatbus_version,
        "load_average_at_start": os.getloadavg(),
    }


def to_json(value: Any) -> Any:
    if isinstance(value, TrialResult):
        data = asdict(value)
        data["correct"] = value.correct
        data["keeps_up"] = value.keeps_up()
        return to_json(data)
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


@contextlib.contextmanager
def workers_running(count: int, nice: int = 0) -> Iterator[Workers]:
    workers = Workers(count, nice)
    try:
        yield workers
    finally:
        workers.stop()


def run(opts: Options) -> dict[str, Any]:
    limits = prepare_limits(opts)
    info = machine()
    log(
        f"fanout: {info['cores']} cores ({info['usable_cores']} usable), Python {info['python']}, "
        f"websockets {info['websockets']}, chatbus {info['chatbus']} ({info['chatbus_source']}), "
        f"load average {info['load_average_at_start'][0]:.2f}"
    )
    log(
        f"fanout: {opts.repetitions} repetition(s), compression {', '.join(opts.modes)}, {opts.workers} generator "
        f"processes; open files {limits['nofile_soft']}, local ports {limits['local_ports']}, somaxconn {limits['somaxconn']}"
    )
    started = time.monotonic()
    runs: list[dict[str, Any]] = []
    hints: dict[tuple[str, str], list[float]] = {}
    s3_out_of_time: set[tuple[str, str]] = set()
    with workers_running(opts.workers, opts.nice) as workers:
        load = Load(workers)
        for rep in range(opts.repetitions):
            current: dict[str, Any] = {}
            for mode in opts.modes:
                order = SERVERS if (rep + MODES.index(mode)) % 2 == 0 else SERVERS[::-1]
                log(f"repetition {rep + 1}/{opts.repetitions}, compression {mode}:")
                current[mode] = {}
                for kind in order:
                    previous = hints.get((kind, mode))
                    hint = median(previous) if previous else None
                    out_of_time = (kind, mode) in s3_out_of_time
                    current[mode][kind] = run_block(load, kind, mode, opts, hint, skip_distinct=out_of_time)
                    s3 = current[mode][kind].get("s3")
                    if s3 is not None and s3["connected"] < s3["connections"]:
                        s3_out_of_time.add((kind, mode))
                    if "s1" in current[mode][kind]:
                        hints.setdefault((kind, mode), []).append(current[mode][kind]["s1"].rate)
            runs.append(current)
    summaries = {mode: summarize(runs, mode) for mode in opts.modes}
    elapsed = time.monotonic() - started
    tables = [render(summaries[mode], mode, opts, len(runs)) for mode in opts.modes]
    both = side_by_side(runs) if set(MODES) <= set(opts.modes) else None
    if both is not None:
        tables.append(render_side_by_side(both, opts))
    log("")
    log(f"fanout results: {info['cores']} cores, {elapsed / 60:.1f} minutes" + (" (quick)" if opts.quick else ""))
    for table in tables:
        log(table)
        log("")
    result = {
        "machine": info,
        "limits": limits,
        "options": asdict(opts),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "elapsed_seconds": elapsed,
        "summary": summaries,
        "side_by_side": both,
        "runs": runs,
    }
    return result


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description="Fan-out benchmark: chatbus against a bare websockets server.")
    parser.add_argument("--quick", action="store_true", help="one repetition, smaller scenarios: about a minute")
    parser.add_argument("--repetitions", type=int, help="repetitions of everything (default 3, quick 1)")
    parser.add_argument("--compression", choices=("none", "deflate", "both"), default="both", help="default both")
    parser.add_argument("--workers", type=int, help="load-generator processes (default 2)")
    parser.add_argument(
        "--nice", type=int, help="niceness of the generator processes, so servers get the CPU first (default 0)"
    )
    parser.add_argument("--connections", type=int, help="scenario 3 idle connections (default 10,000; quick 1,000)")
    parser.add_argument(
        "--scenarios", default="1,2,3,4,5", help="which scenarios to run, e.g. 1,4 (4 needs 1; default all)"
    )
    parser.add_argument(
        "--read-quantum",
        type=float,
        help="scenarios 1 and 4: read each socket at most every this many seconds (default 0.002; 0 reads at once)",
    )
    parser.add_argument("--json", type=Path, help="where to write the figures (default bench/results/fanout.json)")
    parser.add_argument("--keep-logs", action="store_true", help="keep each server's folder and log (paths printed)")
    args = parser.parse_args(argv)
    changes: dict[str, Any] = {}
    if args.repetitions is not None:
        changes["repetitions"] = max(1, args.repetitions)
    if args.compression != "both":
        changes["modes"] = (args.compression,)
    if args.workers is not None:
        changes["workers"] = max(1, args.workers)
    if args.nice is not None:
        changes["nice"] = max(0, args.nice)
    if args.connections is not None:
        changes["s3_connections"] = max(1, args.connections)
    if args.json is not None:
        changes["json_path"] = args.json
    if args.read_quantum is not None:
        changes["read_quantum"] = max(0.0, args.read_quantum)
    try:
        chosen = {int(part) for part in args.scenarios.split(",") if part.strip()}
    except ValueError:
        parser.error("--scenarios takes numbers 1 to 5 separated by commas, e.g. 1,4")
    if not chosen or not chosen <= {1, 2, 3, 4, 5}:
        parser.error("--scenarios takes numbers 1 to 5 separated by commas, e.g. 1,4")
    if 4 in chosen:
        chosen.add(1)  # scenario 4 runs at scenario 1's rate
    changes["scenarios"] = tuple(sorted(chosen))
    if args.keep_logs:
        changes["keep_logs"] = True
    if args.quick:
        return Options.quick_run(**changes)
    opts = Options()
    for key, value in changes.items():
        setattr(opts, key, value)
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    try:
        result = run(opts)
    except BenchError as exc:
        print(f"fanout: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fanout: interrupted", file=sys.stderr)
        return 130
    opts.json_path.parent.mkdir(parents=True, exist_ok=True)
    opts.json_path.write_text(json.dumps(to_json(result), indent=2) + "\n")
    log(f"figures written to {opts.json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
