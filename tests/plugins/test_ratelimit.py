"""The built-in rate limiter, with an injected clock: exact and never sleeping."""

from __future__ import annotations

import pytest

from chatbus import Identity, Incoming, RateLimited, Settings
from chatbus.plugins.ratelimit import TokenBucket
from chatbus.testing import FakeClock, MemoryTransport, make_hub


def bucket(clock: FakeClock, burst: int = 5, per_second: float = 1.0, per_hour: int = 600) -> TokenBucket:
    return TokenBucket(burst=burst, per_second=per_second, per_hour=per_hour, clock=clock)


def test_burst_then_one_per_second() -> None:
    clock = FakeClock()
    limits = bucket(clock)
    assert all(limits.check("alice").allowed for _ in range(5))
    refused = limits.check("alice")
    assert not refused.allowed and refused.retry_after == pytest.approx(1.0)
    clock.advance(0.4)
    assert limits.check("alice").retry_after == pytest.approx(0.6)
    clock.advance(0.6)
    assert limits.check("alice").allowed
    assert not limits.check("alice").allowed


def test_senders_are_limited_separately() -> None:
    clock = FakeClock()
    limits = bucket(clock, burst=1)
    assert limits.check("alice").allowed
    assert not limits.check("alice").allowed
    assert limits.check("bob").allowed


def test_the_bucket_refills_only_up_to_the_burst() -> None:
    clock = FakeClock()
    limits = bucket(clock, burst=3)
    clock.advance(3600)
    assert [limits.check("alice").allowed for _ in range(4)] == [True, True, True, False]


def test_the_hourly_cap_says_when_the_oldest_message_leaves_the_hour() -> None:
    clock = FakeClock()
    limits = bucket(clock, burst=10, per_second=10.0, per_hour=20)
    for _ in range(20):
        assert limits.check("alice").allowed
        clock.advance(1.0)
    refused = limits.check("alice")
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(3600 - 20)
    clock.advance(refused.retry_after)
    assert limits.check("alice").allowed


def test_refused_messages_do_not_use_up_the_allowance() -> None:
    clock = FakeClock()
    limits = bucket(clock, burst=1)
    assert limits.check("alice").allowed
    for _ in range(50):
        assert not limits.check("alice").allowed
    clock.advance(1.0)
    assert limits.check("alice").allowed


def test_idle_senders_are_forgotten_so_memory_stays_bounded() -> None:
    clock = FakeClock()
    limits = bucket(clock, burst=1, per_hour=5)
    for i in range(1024):
        limits.check(f"user{i}")
    clock.advance(3601)
    for i in range(1024):
        limits.check(f"other{i}")
    assert len(limits) <= 1024 + 1


async def test_the_hub_refuses_with_the_wait_and_uses_the_settings() -> None:
    clock = FakeClock()
    settings = Settings.isolated(db=":memory:", rate_limit={"burst": 2, "per_second": 0.5, "per_hour": 100})
    hub = make_hub(settings=settings, clock=clock)
    async with hub:
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        await memory.say("alice", "one")
        await memory.say("alice", "two")
        with pytest.raises(RateLimited) as refused:
            await memory.say("alice", "three")
        assert refused.value.retry_after == pytest.approx(2.0)
        assert "Wait 2 seconds" in str(refused.value)
        clock.advance(2.0)
        await memory.say("alice", "three")


async def test_agents_and_the_system_pass_the_limiter() -> None:
    hub = make_hub()
    async with hub:
        limiter = hub.pm.get_plugin("ratelimit")
        for kind in ("agent", "system"):
            identity = Identity("helper", "developer", kind)  # type: ignore[arg-type]
            for _ in range(100):
                assert limiter.rate_limit(identity=identity, message=Incoming(identity, "x")).allowed
