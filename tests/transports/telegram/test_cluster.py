"""The Telegram relay on a cluster: run by one node at a time, moved to another without losing or doubling.

The relay runs where the duty ``transport:telegram`` is held. In one process:
the same transport stopped and started again (the duty lost and won back)
catches up both ways; a node whose fenced write is refused stops reading and
relaying at once; what a node stored or sent before it died is not stored or
sent twice by the next. Then two real ``chatbus serve`` nodes on a real
redis-server, the holder killed with SIGKILL while people keep writing on both
sides.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import pytest

from chatbus import Hub
from chatbus.core.message import Message, utcnow
from chatbus.core.store import Store
from chatbus.transports.telegram.session import DUTY
from chatbus.transports.telegram.state import DELIVERED_KEY

from .conftest import CHAT, build_hub
from .fakebot import FakeBotAPI

TIMEOUT = 10.0


class Duty:
    """The hub's cluster as this node sees the duty ``transport:telegram``: held, or lost to another node.

    It stands for the hub's ``cluster`` (``set_state(key, value, duty=...)``, a write fenced
    by the duty's lease); the real ``chatbus serve`` nodes below use the real one, on Redis.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.held = True
        self.refused: list[str] = []

    async def set_state(self, key: str, value: str | None, duty: str = DUTY) -> bool:
        assert duty == DUTY
        if not self.held:
            self.refused.append(key)
            return False
        await self.store.set_state(key, value)
        return True


def on_duty(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> Duty:
    """The hub's fenced writes go through ``Duty``: this node holds the duty until a test says not."""
    duty = Duty(hub.store)
    cluster = getattr(hub, "cluster", None)
    if cluster is None:
        monkeypatch.setattr(hub, "cluster", duty, raising=False)
    else:
        monkeypatch.setattr(cluster, "set_state", duty.set_state)
    return duty


async def eventually(predicate: Any, timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def sent_texts(api: FakeBotAPI) -> Counter[str]:
    return Counter(sent.text for sent in api.sent)


async def test_the_relay_stopped_and_started_again_catches_up_both_ways_each_time(api: FakeBotAPI) -> None:
    hub, web, telegram = build_hub(api)
    alice = api.user(42, username="alice")
    async with hub:
        await web.say("ana", "before")
        await api.wait_sent(1)
        for turn in range(3):
            await telegram.stop()  # the duty went to another node, which is down as well
            assert not telegram.is_connected()
            await web.say("ana", f"said while nobody relayed {turn}")
            api.post(CHAT, f"written while nobody read {turn}", user=alice)
            await telegram.start(hub)  # the duty came back
            await web.wait_for(lambda m, t=turn: m.text == f"written while nobody read {t}")
            await api.wait_for(lambda t=turn: f"ana: said while nobody relayed {t}" in sent_texts(api))
            await eventually(telegram.is_connected)
        await web.say("ana", "after")
        await api.wait_for(lambda: "ana: after" in sent_texts(api))
    assert set(sent_texts(api).values()) == {1}, sent_texts(api)
    assert len(api.sent) == 5
    from_telegram = Counter(m.text for m in web.delivered if m.transport == "telegram")
    assert from_telegram == Counter(f"written while nobody read {turn}" for turn in range(3))


async def test_a_node_that_lost_the_duty_stops_reading_and_relaying_at_once(
    api: FakeBotAPI, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger="chatbus.telegram")
    hub, web, telegram = build_hub(api)
    alice = api.user(42, username="alice")
    async with hub:
        duty = on_duty(hub, monkeypatch)
        api.post(CHAT, "first", user=alice)
        await web.wait_for(lambda m: m.text == "first")
        offset = await hub.store.get_state(f"telegram:{api.bot['id']}:offset")

        duty.held = False  # another node took the duty while this one was polling
        second = api.post(CHAT, "second", user=alice)
        await web.wait_for(lambda m: m.text == "second")  # taken: the hub keeps a person's message anyway
        await eventually(lambda: bool(duty.refused))
        await web.say("ana", "for Telegram, from the node that runs the relay now")
        polls = len(api.calls_of("getUpdates"))
        await asyncio.sleep(0.5)
        assert len(api.calls_of("getUpdates")) == polls  # no more polling: it would end the other node's poll
        assert api.sent == []  # and no relaying: the other node does it
        assert await hub.store.get_state(f"telegram:{api.bot['id']}:offset") == offset
        await telegram.stop()
        assert len(api.calls_of("getUpdates")) == polls  # not even to confirm the offset
        lost = [r for r in caplog.records if "another node took over" in r.getMessage()]
        assert len(lost) == 1, [r.getMessage() for r in caplog.records]

        duty.held = True  # the duty comes back to this node: the update is read again, stored once
        await telegram.start(hub)
        await api.wait_for(lambda: not api.updates)  # all confirmed
        await api.wait_for(lambda: len(api.sent) == 1)
        assert api.sent[0].text == "ana: for Telegram, from the node that runs the relay now"
    assert [m.text for m in web.delivered if m.transport == "telegram"] == ["first", "second"]
    assert second["message_id"] > 0


async def test_a_message_sent_to_telegram_just_before_a_crash_is_not_sent_again(api: FakeBotAPI) -> None:
    """A node died between sending and writing the last relayed id: the next start sees where it went."""
    hub, web, telegram = build_hub(api)
    async with hub:
        before = (await web.say("ana", "before")).id
        await api.wait_for(lambda: len(api.sent) == 1)
        await web.say("ana", "sent, but the node died before writing it down")
        await api.wait_for(lambda: len(api.sent) == 2)
        await telegram.stop()
        await hub.store.set_state(DELIVERED_KEY, str(before))  # as the dead node left it
        await web.say("ana", "stored while nobody relayed")
        await telegram.start(hub)
        await api.wait_for(lambda: len(api.sent) == 3)
        await asyncio.sleep(0.3)
    assert [s.text for s in api.sent] == [
        "ana: before",
        "ana: sent, but the node died before writing it down",
        "ana: stored while nobody relayed",
    ]


async def test_an_update_stored_just_before_a_crash_is_not_stored_again_by_the_next_node(api: FakeBotAPI) -> None:
    """A node stored a Telegram message and died before mapping it and saving the offset: the
    node that takes over reads the update again and finds the message already in the hub."""
    hub, web, telegram = build_hub(api)
    alice = api.user(42, username="alice")
    async with hub:  # the hub stands for the node taking over; its pipeline never saw the dead node's message
        api.post(CHAT, "hello", user=alice)
        await web.wait_for(lambda m: m.text == "hello")
        await telegram.stop()
        posted = api.post(CHAT, "stored by the node that died", user=alice)
        external = f"{CHAT}:{posted['message_id']}"
        # What the dead node did before SIGKILL: the message is in the shared log, nothing else.
        dead = Message(0, "stored by the node that died", "tg:42", utcnow(), transport="telegram", client_id=external)
        stored = await hub.store.add(dead)
        await telegram.start(hub)
        await api.wait_for(lambda: not api.updates)  # read again, and confirmed
        log = await hub.store.since(0, 100)
    assert [m.text for m in log if m.transport == "telegram"] == ["hello", "stored by the node that died"]
    assert await hub.store.hub_id_for("telegram", external) == stored.id
