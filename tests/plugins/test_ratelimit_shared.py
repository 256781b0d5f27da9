"""The rate limiter on a store several nodes share: one allowance per person for the whole chat.

Each ``RateLimiter`` here is one node's, over its own connection to a real
redis-server; a person who sends through two nodes still gets one burst.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chatbus import Identity, Incoming, RateDecision
from chatbus.core.engine.redis import RedisEngine
from chatbus.plugins.ratelimit import RateLimiter, RateLimitSettings
from chatbus.testing import FakeClock
from tests.core.engine.redis_server import RedisServer

ALICE = Identity("alice", "user", "human")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
async def engines(redis_server: RedisServer) -> AsyncIterator[list[RedisEngine]]:
    """Two nodes' connections to the same Redis."""
    opened = [RedisEngine(redis_server.url, prefix="rl") for _ in range(2)]
    for engine in opened:
        await engine.open()
    yield opened
    for engine in opened:
        await engine.close()


def node(engine: RedisEngine | None, clock: FakeClock | None = None, **limits: Any) -> RateLimiter:
    """One node's rate limiter over ``engine`` (None: a node of its own, the embedded store)."""
    store = SimpleNamespace(shared=engine is not None, engine=engine)
    hub = SimpleNamespace(clock=clock or FakeClock(), store=store)
    settings = RateLimitSettings(**{"burst": 3, "per_second": 0.5, "per_hour": 600, **limits})
    return RateLimiter(hub, settings)  # type: ignore[arg-type]


async def send(limiter: RateLimiter, identity: Identity = ALICE) -> RateDecision:
    answer = limiter.rate_limit(identity=identity, message=Incoming(identity, "hi"))
    return answer if isinstance(answer, RateDecision) else await answer


async def test_one_burst_for_a_person_on_two_nodes(engines: list[RedisEngine]) -> None:
    a, b = node(engines[0]), node(engines[1])
    answers = [await send(limiter) for limiter in (a, b, a, b, a, b)]
    assert [answer.allowed for answer in answers] == [True, True, True, False, False, False]
    refused = answers[3]
    # the same answer as one node gives: the wait until the bucket holds one message again
    assert 0 < refused.retry_after <= 2.0
    assert refused.retry_after == pytest.approx(2.0, abs=0.2)


async def test_people_are_counted_apart_across_nodes(engines: list[RedisEngine]) -> None:
    a, b = node(engines[0], burst=1), node(engines[1], burst=1)
    assert (await send(a)).allowed
    assert not (await send(b)).allowed
    assert (await send(b, Identity("bob", "user", "human"))).allowed


async def test_the_hourly_cap_is_shared_too(engines: list[RedisEngine]) -> None:
    a, b = node(engines[0], burst=10, per_second=1000.0, per_hour=4), node(engines[1], burst=10, per_hour=4)
    assert [(await send(limiter)).allowed for limiter in (a, b, a, b, a)] == [True] * 4 + [False]
    refused = await send(b)
    assert refused.retry_after == pytest.approx(3600, abs=5)


async def test_agents_are_not_counted_on_redis(engines: list[RedisEngine]) -> None:
    a = node(engines[0], burst=1)
    helper = Identity("helper", "developer", "agent")
    assert all([(await send(a, helper)).allowed for _ in range(20)])


async def test_redis_down_counts_on_this_node_and_says_so_once(
    engines: list[RedisEngine], redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    a = node(engines[0], clock, burst=2)
    caplog.set_level(logging.INFO, logger="chatbus.plugins.ratelimit")
    redis_server.kill()
    # not unlimited: this node's own bucket (the hub's clock) keeps the burst
    answers = [await send(a) for _ in range(4)]
    assert [answer.allowed for answer in answers] == [True, True, False, False]
    assert answers[2].retry_after == pytest.approx(2.0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "counted on this node alone until Redis answers again" in warnings[0].getMessage()
    assert "Traceback" not in caplog.text

    redis_server.start()  # back on the same port, empty: a fresh shared allowance
    assert [(await send(a)).allowed for _ in range(3)] == [True, True, False]
    assert "counted across all nodes again" in caplog.text
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


async def test_one_node_of_its_own_counts_on_the_hubs_clock_as_before() -> None:
    clock = FakeClock()
    limiter = node(None, clock, burst=2)
    answer = limiter.rate_limit(identity=ALICE, message=Incoming(ALICE, "x"))
    assert isinstance(answer, RateDecision)  # answered at once, nothing awaited
    assert [(await send(limiter)).allowed for _ in range(2)] == [True, False]
    clock.advance(2.0)
    assert (await send(limiter)).allowed
