"""Does ``hiredis`` help the Redis engine? Its C reply parser against redis-py's own, in one run.

One node's engine work, done twice per round with each parser in turn
(alternating, so a noisy machine weighs on both alike): concurrent senders
append messages with the engine's script while one subscription brings every
message back, as each node's does. Figures: this process's CPU time per
message and the wall time of the round, each as hiredis / pure Python, median
over the rounds. redis-server's own work is the same for both and is left out.

    .venv/bin/python bench/redis_parser.py [--messages 3000] [--senders 16] [--rounds 5]

It needs ``pip install hiredis`` (redis-py uses it when installed; the pure
parser is chosen explicitly here) and starts Debian's redis-server on a free
loopback port, saving nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser

from chatbus.core.engine.redis import RedisEngine
from chatbus.core.message import Message, utcnow

PARSERS: dict[str, Any] = {"python": _AsyncRESP2Parser, "hiredis": _AsyncHiredisParser}


async def _round(url: str, parser: Any, prefix: str, messages: int, senders: int) -> tuple[float, float]:
    """CPU seconds of this process and wall seconds for ``messages`` appended and heard back."""
    original = aioredis.Redis.from_url
    aioredis.Redis.from_url = functools.partial(original, parser_class=parser)  # type: ignore[method-assign]
    try:
        engine = RedisEngine(url, prefix=prefix)
        await engine.open()
    finally:
        aioredis.Redis.from_url = original  # type: ignore[method-assign]
    heard = 0

    async def listen() -> None:
        nonlocal heard
        async for item in engine.subscribe(0):
            if isinstance(item, Message):
                heard += 1
                if heard == messages:
                    return

    async def send(share: int) -> None:
        for n in range(share):
            await engine.append(Message(0, f"message {n} " + "x" * 120, "ann", utcnow()))

    listening = asyncio.create_task(listen())
    await asyncio.sleep(0.2)  # subscribed before the first append
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(send(messages // senders) for _ in range(senders)))
    await asyncio.wait_for(listening, 60)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await engine.close()
    return cpu, wall


def _redis_server(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        ["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, f"redis://127.0.0.1:{port}/0"


async def main(messages: int, senders: int, rounds: int) -> None:
    messages -= messages % senders
    with tempfile.TemporaryDirectory() as folder:
        process, url = _redis_server(Path(folder))
        try:
            figures: dict[str, list[tuple[float, float]]] = {name: [] for name in PARSERS}
            for n in range(rounds):
                order = list(PARSERS) if n % 2 == 0 else list(reversed(PARSERS))
                for name in order:
                    figures[name].append(await _round(url, PARSERS[name], f"b{n}{name}", messages, senders))
        finally:
            process.terminate()
            process.wait()
    print(f"{messages} messages, {senders} senders, one subscription, {rounds} rounds (median)")
    for name, runs in figures.items():
        cpu = statistics.median(c for c, _ in runs) / messages * 1e6
        wall = statistics.median(w for _, w in runs)
        print(f"  {name:8} CPU per message {cpu:7.1f} µs   messages/s {messages / wall:9,.0f}")
    cpu_ratio = statistics.median(h[0] / p[0] for h, p in zip(figures["hiredis"], figures["python"], strict=True))
    wall_ratio = statistics.median(h[1] / p[1] for h, p in zip(figures["hiredis"], figures["python"], strict=True))
    print(f"  hiredis / python: CPU {cpu_ratio:.2f}, wall time {wall_ratio:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.senders, args.rounds))
