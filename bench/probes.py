"""Where the time goes on the Redis engine: round trips measured from the benchmark itself.

``idle_round_trips`` times, one at a time on an idle Redis, a ``PING``, an
``append`` (the script that numbers, stores and publishes a message) and the
time from an append's start to the message's arrival through a subscription;
``LoadProbe`` keeps timing appends (ten a second, on a key prefix and
database of their own, so no client sees them) while a trial's load runs.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from chatbus.core.engine.redis import RedisEngine
from chatbus.core.message import Message, utcnow

__all__ = ["LoadProbe", "cpu_seconds", "idle_round_trips", "quantile", "redis_answers"]

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process, all its threads (``/proc/<pid>/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def quantile(values: list[float], fraction: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def _summary(name: str, seconds: list[float]) -> dict[str, float]:
    return {f"{name}_p50_ms": quantile(seconds, 0.5) * 1e3, f"{name}_p99_ms": quantile(seconds, 0.99) * 1e3}


def _message(text: str) -> Message:
    return Message(id=0, text=text, sender="probe", timestamp=utcnow())


async def _idle(url: str, count: int) -> dict[str, float]:
    engine = RedisEngine(url, prefix="probe-idle")
    await engine.open()
    try:
        pings, appends, arrivals = [], [], []
        for _ in range(count):
            started = time.perf_counter()
            await engine.ping()
            pings.append(time.perf_counter() - started)
        subscription = engine.subscribe(await engine.last_id()).__aiter__()
        for k in range(count):
            started = time.perf_counter()
            stored = await engine.append(_message(str(k)))
            appends.append(time.perf_counter() - started)
            while True:
                item = await asyncio.wait_for(subscription.__anext__(), 10)
                if isinstance(item, Message) and item.id == stored.id:
                    break
            arrivals.append(time.perf_counter() - started)
        return {**_summary("ping", pings), **_summary("append", appends), **_summary("append_to_arrival", arrivals)}
    finally:
        await engine.close()


def idle_round_trips(url: str, count: int = 300) -> dict[str, float]:
    """PING, append and append-to-arrival round trips on an idle Redis, p50 and p99 in ms."""
    return asyncio.run(_idle(url, count))


class LoadProbe:
    """Times appends every ``interval`` seconds on a thread of its own until :meth:`stop`."""

    def __init__(self, url: str, interval: float = 0.1) -> None:
        self.url = url
        self.interval = interval
        self.appends: list[float] = []
        self.pings: list[float] = []
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    async def _run(self) -> None:
        engine = RedisEngine(self.url, prefix="probe-load")
        try:
            await engine.open()
            while not self._stop.is_set():
                started = time.perf_counter()
                await engine.ping()
                middle = time.perf_counter()
                await engine.append(_message("probe"))
                self.pings.append(middle - started)
                self.appends.append(time.perf_counter() - middle)
                await asyncio.sleep(self.interval)
        except Exception as exc:  # noqa: BLE001 - reported with the figures
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            await engine.close()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(10)
        out: dict[str, Any] = {**_summary("ping", self.pings), **_summary("append", self.appends)}
        out["samples"] = len(self.appends)
        if self.error:
            out["error"] = self.error
        return out
