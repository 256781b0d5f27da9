"""A duty runs on one node at a time, and moves to another when its node stops, dies or loses the lease."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable

from redis import asyncio as aioredis

from chatbus.core.engine import Lease
from chatbus.core.engine.duty import Duty

from .conftest import Nodes
from .redis_server import RedisServer

#: (holder, token, started, ended) of every time a node did the work.
Spans = list[tuple[str, int, float, float]]


def poller(holder: str, spans: Spans) -> Callable[[Lease], Awaitable[None]]:
    """Work that runs until stopped, noting when it ran."""

    async def work(lease: Lease) -> None:
        started = time.monotonic()
        try:
            await asyncio.sleep(3600)
        finally:
            spans.append((holder, lease.token, started, time.monotonic()))

    return work


async def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.02)


async def test_one_node_works_and_a_clean_stop_hands_over_at_once(node: Nodes) -> None:
    spans: Spans = []
    a = Duty(await node(), "telegram-poller", "node-a", 30.0, poller("node-a", spans), retry=0.1)
    b = Duty(await node(), "telegram-poller", "node-b", 30.0, poller("node-b", spans), retry=0.1)
    running_a = asyncio.create_task(a.run())
    await wait_for(lambda: a.lease is not None, 2)
    running_b = asyncio.create_task(b.run())
    await asyncio.sleep(1.0)  # node-b keeps asking: still node-a's
    assert a.lease is not None and b.lease is None
    stopped = time.monotonic()
    running_a.cancel()
    await asyncio.gather(running_a, return_exceptions=True)
    await wait_for(lambda: b.lease is not None, 5)
    assert time.monotonic() - stopped < 5  # released, not waited out (ttl is 30 s)
    assert b.lease is not None and a.lease is None
    running_b.cancel()
    await asyncio.gather(running_b, return_exceptions=True)
    (first, token_a, _, ended_a), (second, token_b, started_b, _) = spans
    assert (first, second) == ("node-a", "node-b")
    assert token_b > token_a and started_b >= ended_a  # never both at once


async def test_a_node_that_loses_its_lease_stops_its_work(node: Nodes, redis_server: RedisServer) -> None:
    spans: Spans = []
    a = Duty(await node(), "worker:alice", "node-a", 0.6, poller("node-a", spans))
    running = asyncio.create_task(a.run())
    await wait_for(lambda: a.lease is not None, 2)
    async with aioredis.Redis.from_url(redis_server.url) as admin:
        await admin.delete("chatbus:lease:worker:alice")  # as if it had run out while node-a was cut off
    taken = await (await node()).acquire("worker:alice", "node-b", 60)
    assert taken is not None
    await wait_for(lambda: len(spans) == 1, 2)  # node-a's next renewal fails: its work stops
    assert spans[0][0] == "node-a" and spans[0][1] < taken.token
    await asyncio.sleep(0.5)
    assert a.lease is None  # and it waits for the lease, which node-b holds
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)


_NODE = """
import asyncio, sys
from chatbus.core.engine.duty import Duty
from chatbus.core.engine.redis import RedisEngine

async def main():
    engine = RedisEngine(sys.argv[1])
    await engine.open()
    async def work(lease):
        print("held", lease.token, flush=True)
        await asyncio.sleep(3600)
    await Duty(engine, "telegram-poller", "node-a", 1.0, work).run()

asyncio.run(main())
"""


async def test_a_node_killed_with_sigkill_loses_its_duty_within_the_lease_time(
    node: Nodes, redis_server: RedisServer
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _NODE, redis_server.url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        assert line.startswith("held ")
        token_a = int(line.split()[1])
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    killed = time.monotonic()
    spans: Spans = []
    b = Duty(await node(), "telegram-poller", "node-b", 1.0, poller("node-b", spans))
    running = asyncio.create_task(b.run())
    try:
        await wait_for(lambda: b.lease is not None, 5)
        assert time.monotonic() - killed < 1.0 + 1.0 / 3 + 1.5  # the lease time, one try, and a busy machine
        assert b.lease is not None and b.lease.token > token_a
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
