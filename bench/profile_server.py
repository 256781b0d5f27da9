"""Where a server's CPU goes under scenario 1's load, per delivery.

    .venv/bin/pip install py-spy                # once
    .venv/bin/python bench/profile_server.py --rate 1500 --seconds 10
    .venv/bin/python bench/profile_server.py --server baseline --svg /tmp/baseline.svg

Starts the server exactly as ``fanout.py`` does (``chatbus serve`` with its
SQLite store and default plugins, or the bare baseline), signs in 100
clients, sends ``--rate`` messages per second for ``--seconds`` seconds, and
samples the server with py-spy meanwhile (``--nonblocking``, so the server is
never paused). It prints the server's CPU per delivery, then splits it by
area (hub pipeline, store, WebSocket transport, websockets library, asyncio,
logging, ...) and by function, in microseconds per delivery: each share of
the samples times the CPU the server really used, divided by the deliveries.
``--svg`` also writes a flame graph.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import fanout

__all__ = ["AREAS", "LEAF_AREAS", "OWNER_AREAS", "area_of", "main"]

# What the innermost frame is doing, when it is one of the known heavy
# operations: (area, substring of "function (file:line)"). First match wins.
LEAF_AREAS: tuple[tuple[str, str], ...] = (
    ("socket writes (send syscalls)", "_SelectorSocketTransport.write"),
    ("socket reads (recv syscalls)", "_read_ready"),
    ("permessage-deflate", "permessage_deflate"),
    ("JSON encoding and parsing", "json/"),
    ("SQLite (store thread)", "chatbus/core/store/"),
    ("logging", "logging/"),
    ("thread pool hand-offs", "concurrent/futures"),
    ("thread pool hand-offs", "threading.py"),
)
# Otherwise, whose code it is: the innermost frame that matches.
OWNER_AREAS: tuple[tuple[str, str], ...] = (
    ("chatbus ws transport: fan-out loop", "websocket/broadcast.py"),
    ("chatbus ws transport: frames in and out", "chatbus/transports/websocket/"),
    ("chatbus plugins (hooks)", "chatbus/plugins/"),
    ("chatbus hub pipeline", "chatbus/core/pipeline.py"),
    ("chatbus hub: delivery to transports", "chatbus/core/delivery.py"),
    ("chatbus hub pipeline", "chatbus/core/hub.py"),
    ("chatbus core (messages, store)", "chatbus/core/"),
    ("baseline server", "baseline_server.py"),
    ("websockets: broadcast", "broadcast ("),
    ("websockets: frames and protocol", "websockets/"),
    ("pluggy", "pluggy/"),
    ("asyncio event loop", "asyncio/"),
    ("asyncio event loop", "selectors.py"),
)
AREAS = LEAF_AREAS + OWNER_AREAS


def area_of(stack: Sequence[str]) -> str:
    """The area a sample belongs to: a known heavy operation when the
    innermost frame is one, else the innermost frame whose code is known."""
    if stack:
        for name, pattern in LEAF_AREAS:
            if pattern in stack[-1]:
                return name
    for frame in reversed(stack):
        for name, pattern in OWNER_AREAS:
            if pattern in frame:
                return name
    return "other"


def short(frame: str) -> str:
    """``function (path:line)`` with the path cut to the package."""
    if frame.startswith(("thread (", "process ")):
        return frame  # py-spy's thread label, not a code frame
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    path = where.rsplit(":", 1)[0]
    return f"{name} ({path})"


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each thread of ``pid``, by thread id."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        out[task.name] = (int(fields[11]) + int(fields[12])) / fanout.CLK_TCK
    return out


def read_samples(raw: Path) -> list[tuple[list[str], int]]:
    samples = []
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples.append((stack.split(";"), int(count)))
    return samples


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Profile a server under the fan-out load with py-spy.")
    parser.add_argument("--server", choices=fanout.SERVERS, default="chatbus")
    parser.add_argument("--compression", choices=fanout.MODES, default="none")
    parser.add_argument("--rate", type=float, default=1500.0, help="messages per second in (default 1500)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the load (default 10)")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument(
        "--sign-in",
        type=int,
        metavar="N",
        help="instead of a message load, profile N distinct users signing in (scenario 3's work)",
    )
    parser.add_argument("--sample-rate", type=int, default=250, help="py-spy samples per second (default 250)")
    parser.add_argument("--top", type=int, default=25, help="functions to list (default 25)")
    parser.add_argument("--svg", type=Path, help="also write a flame graph here")
    args = parser.parse_args(argv)

    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("profile_server: py-spy is not installed; run .venv/bin/pip install py-spy", file=sys.stderr)
        return 1
    opts = fanout.Options(s3_connections=max(args.clients, args.sign_in or 0))
    fanout.prepare_limits(opts)
    scratch = Path(tempfile.mkdtemp(prefix="fanout-profile-"))
    raw = scratch / "samples.txt"
    clients = list(range(args.clients))
    with fanout.workers_running(2) as workers:
        load = fanout.Load(workers)
        server = fanout.Server(args.server, args.compression, max_connections=opts.s3_connections + 100)
        try:
            if not args.sign_in:
                joined = load.connect(server, clients)
                if joined["failed"]:
                    raise fanout.BenchError(f"{joined['failed']} clients could not connect: {joined['failures']}")
                load.trial(server, clients, args.senders, args.rate, 1.0, 5.0, opts.read_quantum)  # warm up
            server.settle()
            record = subprocess.Popen(
                [spy, "record", "--pid", str(server.process.pid), "--rate", str(args.sample_rate)]
                + ["--format", "raw", "--output", str(raw), "--nonblocking", "--threads"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            time.sleep(1.0)
            cpu = server.cpu_seconds()
            threads_before = thread_cpu(server.process.pid)
            if args.sign_in:
                joined = load.connect(server, list(range(args.sign_in)), timeout=600.0)
                cpu = server.cpu_seconds() - cpu
                units, unit = joined["ok"], "sign-in"
                headline = f"{joined['ok']}/{args.sign_in} distinct users signed in in {joined['seconds']:.1f} s"
            else:
                result = load.trial(server, clients, args.senders, args.rate, args.seconds, 10.0, opts.read_quantum)
                cpu = server.cpu_seconds() - cpu
                units, unit = result.deliveries, "delivery"
                headline = result.summary()
            threads_after = thread_cpu(server.process.pid)
            record.send_signal(signal.SIGINT)
            _, errors = record.communicate(timeout=60)
            if not raw.exists():
                raise fanout.BenchError(f"py-spy failed: {errors.decode(errors='replace')[-2000:]}")
        finally:
            server.stop()
    print(f"{args.server} ({args.compression}): {headline}")
    samples = read_samples(raw)
    total = sum(count for _, count in samples)
    if not total or not units:
        print("profile_server: no samples or nothing done", file=sys.stderr)
        return 1
    # py-spy counts samples of running (non-idle) threads; the share of each
    # area, times the server's CPU per unit of work, is its cost per unit.
    per_unit = cpu / units * 1e6
    print(f"server CPU {per_unit:.2f} us per {unit} over {units:,} ({cpu:.2f} s); {total:,} samples of running threads")
    areas: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    for stack, count in samples:
        thread = stack[0] if stack and stack[0].startswith(("thread", "process")) else ""
        frames = stack[1:] if thread else stack
        threads[thread or "main"] += count
        areas[area_of(frames)] += count
        if frames:
            own[short(frames[-1])] += count
        for frame in {short(f) for f in frames}:
            inclusive[frame] += count

    def row(name: str, count: int) -> str:
        return f"  {count / total * per_unit:9.2f} us  {count / total:6.1%}  {name}"

    print(f"by thread, measured from /proc (us per {unit}):")
    names = {label.split("(", 1)[1].split(")", 1)[0]: label for label in threads if "(" in label}
    for tid, seconds in sorted(threads_after.items(), key=lambda item: -item[1]):
        used = seconds - threads_before.get(tid, 0.0)
        if used > 0:
            print(f"  {used / units * 1e6:9.2f} us  {used / cpu:6.1%}  {names.get(tid, 'thread ' + tid)}")
    print(f"by thread, sampled (us per {unit}):")
    for name, count in threads.most_common():
        print(row(name, count))
    print("by area (the innermost frame's operation when it is a known heavy one, else whose code it is):")
    for name, count in areas.most_common():
        print(row(name, count))
    print(f"by function, own time (top {args.top}):")
    for name, count in own.most_common(args.top):
        print(row(name, count))
    print(f"by function, including callees (top {args.top}):")
    for name, count in inclusive.most_common(args.top):
        print(row(name, count))
    if args.svg:
        _flamegraph(samples, args.svg)
        print(f"flame graph written to {args.svg}")
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


class _Node:
    """One frame of the flame graph: its samples and its callees."""

    def __init__(self) -> None:
        self.count = 0
        self.children: dict[str, _Node] = {}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _flamegraph(samples: list[tuple[list[str], int]], path: Path) -> None:
    """A plain SVG icicle chart of the samples (no external tools needed)."""
    root = _Node()
    for stack, count in samples:
        node = root
        root.count += count
        for frame in stack:
            node = node.children.setdefault(short(frame), _Node())
            node.count += count
    total = root.count or 1
    width, height = 1600.0, 16
    rects: list[str] = []

    def walk(node: _Node, x: float, depth: int) -> int:
        deepest = depth
        for name, child in sorted(node.children.items()):
            w = child.count / total * width
            if w >= 0.5:
                text = _escape(name if w > 60 else "")[: int(w / 7)]
                rects.append(
                    f"<g><title>{_escape(name)} ({child.count / total:.1%})</title>"
                    f'<rect x="{x:.1f}" y="{depth * height}" width="{w:.1f}" height="{height - 1}" fill="#e8a33d"/>'
                    f'<text x="{x + 2:.1f}" y="{depth * height + 12}" font-size="11">{text}</text></g>'
                )
                deepest = max(deepest, walk(child, x, depth + 1))
            x += w
        return deepest

    depth = walk(root, 0.0, 0)
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{(depth + 1) * height}" '
        f'font-family="monospace">{"".join(rects)}</svg>\n'
    )


if __name__ == "__main__":
    sys.exit(main())
