"""Slow mode, tested with chatbus's test kit: a few lines per behaviour."""

from __future__ import annotations

import pytest
from chatbus_example_plugins.slowmode import SlowMode

from chatbus import ConfigError, RateLimited, Settings
from chatbus.testing import FakeClock, MemoryTransport, make_hub


@pytest.fixture
def chatbus_plugins() -> list[object]:
    return [SlowMode]


@pytest.fixture
def chatbus_settings() -> Settings:
    return Settings.isolated(db=":memory:", slowmode={"interval": 30})


async def test_one_message_per_interval(chatbus_transport: MemoryTransport, chatbus_clock: FakeClock) -> None:
    await chatbus_transport.say("alice", "first")
    chatbus_clock.advance(10)
    with pytest.raises(RateLimited) as refused:
        await chatbus_transport.say("alice", "too soon")
    assert refused.value.retry_after == pytest.approx(20)
    chatbus_clock.advance(20)
    await chatbus_transport.say("alice", "on time")
    await chatbus_transport.wait_for(lambda m: m.text == "on time")
    assert chatbus_transport.texts == ["first", "on time"]


async def test_rooms_and_people_are_separate(chatbus_transport: MemoryTransport) -> None:
    await chatbus_transport.say("alice", "general")
    await chatbus_transport.say("alice", "ops", room="ops")
    await chatbus_transport.say("bob", "general too")


async def test_it_replaces_the_builtin_burst(chatbus_transport: MemoryTransport, chatbus_clock: FakeClock) -> None:
    # The built-in limiter would allow a burst of 5 and then 1 per second; slow mode decides alone.
    for _ in range(10):
        await chatbus_transport.say("alice", "tick")
        chatbus_clock.advance(30)


def test_a_misspelled_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="did you mean 'interval'"):
        make_hub([SlowMode], settings=Settings.isolated(db=":memory:", slowmode={"intervall": 5}))
