"""The engines side by side: appends and fan-out on SQLite, and on Redis with 1, 2 and 3 nodes.

Each node is a process of its own with one engine: it subscribes, then its
senders append their share of the messages concurrently, and it waits until
its subscription has brought every message of every node. Figures:
appends/s over all nodes, deliveries/s (messages times nodes, per second),
and the time from an append's start to its arrival in each node's
subscription (p50, p99), over all nodes; and redis-server's CPU time per
message (microseconds, everything it did during the run). The engines alone: no hub, no
transport, no client (issue 14's benchmark adds those).

    .venv/bin/python bench/engine.py [--messages 4000] [--senders 32]

It starts Debian's redis-server (/usr/bin/redis-server) on a free loopback
port, saving nothing, and stops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from chatbus.core.engine import EmbeddedEngine, Engine
from chatbus.core.engine.redis import RedisEngine
from chatbus.core.message import Message, utcnow
from chatbus.core.store import SQLiteStore


def _engine(spec: str) -> Engine:
    if spec.startswith("redis://"):
        return RedisEngine(spec, prefix="bench")
    return EmbeddedEngine(SQLiteStore(spec))


async def _node(spec: str, share: int, total: int, senders: int, start_at: float) -> dict[str, Any]:
    engine = _engine(spec)
    await engine.open()
    arrived: list[float] = []
    after = await engine.last_id()  # 0: every run has a new log
    if time.time() > start_at:
        raise SystemExit("a node started after the others began appending: raise the start delay")

    async def listen() -> None:
        async for item in engine.subscribe(after):
            if isinstance(item, Message):
                arrived.append(time.time() - float(item.text))
                if len(arrived) == total:
                    return

    listening = asyncio.create_task(listen())
    await asyncio.sleep(max(0.0, start_at - time.time()))
    began = time.time()

    async def send(count: int) -> None:
        for _ in range(count):
            await engine.append(Message(id=0, text=repr(time.time()), sender="bench", timestamp=utcnow()))

    await asyncio.gather(*(send(share // senders + (i < share % senders)) for i in range(senders)))
    appended = time.time()
    await asyncio.wait_for(listening, 120)
    await engine.close()
    return {"began": began, "appended": appended, "done": time.time(), "latencies": arrived}


def _run_node(args: tuple[str, int, int, int, float]) -> dict[str, Any]:
    return asyncio.run(_node(*args))


def measure(spec: str, nodes: int, messages: int, senders: int) -> dict[str, float]:
    start_at = time.time() + 3.0  # time enough for every node's process to start and subscribe
    share = [messages // nodes + (i < messages % nodes) for i in range(nodes)]
    jobs = [(spec, share[i], messages, senders, start_at) for i in range(nodes)]
    with multiprocessing.get_context("spawn").Pool(nodes) as pool:
        results = pool.map(_run_node, jobs)
    began = min(r["began"] for r in results)
    latencies = sorted(x for r in results for x in r["latencies"])
    return {
        "appends/s": messages / (max(r["appended"] for r in results) - began),
        "deliveries/s": messages * nodes / (max(r["done"] for r in results) - began),
        "p50 ms": statistics.median(latencies) * 1000,
        "p99 ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def _start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = subprocess.Popen(
        ["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return server, port
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit("redis-server did not start")


def _redis_cpu(port: int) -> float:
    """Seconds of CPU redis-server has used so far."""
    with redis.Redis(port=port) as client:
        info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--senders", type=int, default=32, help="concurrent appenders per node")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server, port = _start_redis(Path(folder))
        try:
            runs = [("SQLite, 1 node", str(Path(folder) / "bench.db"), 1)]
            runs += [(f"Redis, {n} node{'s' * (n > 1)}", f"redis://127.0.0.1:{port}/{n}", n) for n in (1, 2, 3)]
            print(f"{options.messages} messages, {options.senders} senders per node")
            print(
                f"{'engine':<16} {'appends/s':>10} {'deliveries/s':>13} {'p50 ms':>8} {'p99 ms':>8} {'redis µs/msg':>13}"
            )
            for name, spec, nodes in runs:
                cpu = _redis_cpu(port)
                figures = measure(spec, nodes, options.messages, options.senders)
                spent = (_redis_cpu(port) - cpu) / options.messages * 1e6 if spec.startswith("redis") else 0.0
                cells = " ".join(f"{figures[k]:>{w}.1f}" for k, w in zip(figures, (10, 13, 8, 8)))
                print(f"{name:<16} {cells} {spent:>13.0f}")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
