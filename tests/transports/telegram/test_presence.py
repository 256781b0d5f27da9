"""Telegram people are online while they post and offline after a quiet time."""

from __future__ import annotations

import asyncio

from chatbus import Presence
from chatbus.transports.telegram.presence import QuietTimer

from .conftest import CHAT, build_hub
from .fakebot import FakeBotAPI


def statuses(events: list[object], user_id: str) -> list[str]:
    return [e.status for e in events if isinstance(e, Presence) and e.user_id == user_id]


async def test_online_while_posting_offline_after_the_quiet_time(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api, presence_timeout=1.0)
    async with hub:
        api.post(CHAT, "hello", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "hello")
        assert hub.is_online("tg:5")
        api.post(CHAT, "still here", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "still here")
        assert statuses(web.events, "tg:5") == ["online"]  # posting again keeps them online
        await web.wait_for_event(lambda e: isinstance(e, Presence) and e.status == "offline")
        assert not hub.is_online("tg:5")
        api.post(CHAT, "back", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "back")
        assert statuses(web.events, "tg:5") == ["online", "offline", "online"]
    assert statuses(web.events, "tg:5")[-1] == "offline"  # the transport stopping takes them offline


async def test_the_quiet_time_is_a_setting_with_a_default_of_minutes(api: FakeBotAPI) -> None:
    hub, web, telegram = build_hub(api)
    assert telegram.settings.presence_timeout == 300
    async with hub:
        api.post(CHAT, "hello", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "hello")
        await asyncio.sleep(0.3)
        assert hub.is_online("tg:5")


def test_the_quiet_timer_forgets_people_in_the_order_they_went_quiet() -> None:
    now = [0.0]
    timer = QuietTimer(10.0, clock=lambda: now[0])
    assert timer.seen("a") and timer.seen("b")
    now[0] = 5.0
    assert not timer.seen("a")  # a posted again: b is now the first to go quiet
    assert timer.next_expiry() == 5.0
    now[0] = 10.0
    assert timer.expired() == ["b"]
    now[0] = 15.0
    assert timer.expired() == ["a"]
    assert timer.next_expiry() is None
