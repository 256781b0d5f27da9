"""Flood limits, 5xx, dropped connections, bad tokens, outages, restarts and conflicts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from chatbus import TransportError

from .conftest import CHAT, build_hub, sqlite
from .fakebot import FakeBotAPI

# python-telegram-bot's own RetryAfter constructor reads its deprecated
# ``retry_after`` attribute; the transport itself reads the wait as a timedelta.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``predicate()`` holds, checking every few milliseconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_flood_limit_waits_then_delivers_exactly_once(api: FakeBotAPI) -> None:
    hub, web, telegram = build_hub(api)
    async with hub:
        api.fail("sendMessage", status=429, retry_after=1)
        await web.say("ana", "hello")
        await web.say("ana", "second")
        sent = await api.wait_sent(2)
        assert [s.text for s in sent] == ["ana: hello", "ana: second"]
        calls = api.calls_of("sendMessage")
        assert [c.status for c in calls] == [429, 200, 200]
        assert calls[1].at - calls[0].at >= 1.0  # Telegram's retry_after was honoured
        assert telegram.health().healthy


async def test_a_burst_of_5xx_and_dropped_connections_recovers(
    api: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="chatbus.telegram")
    hub, web, telegram = build_hub(api)
    async with hub:
        api.fail("sendMessage", status=500, times=2)
        api.fail("sendMessage", status=502, description="Bad Gateway")
        api.fail("sendMessage", drop=True)
        api.fail("sendMessage", status=503, description="Service Unavailable")
        api.fail("getUpdates", status=500, times=3)
        await web.say("ana", "through the storm")
        [sent] = await api.wait_sent(1)
        assert sent.text == "ana: through the storm"
        assert [c.status for c in api.calls_of("sendMessage")] == [500, 500, 502, -1, 503, 200]
        api.post(CHAT, "and back", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "and back")
        await eventually(lambda: telegram.health().healthy)
        assert any("retrying" in r.getMessage() for r in caplog.records)
        assert len(api.sent) == 1


async def test_a_bad_token_fails_start_up_with_one_clear_error(api: FakeBotAPI) -> None:
    hub, _web, _telegram = build_hub(api, token="999:not-the-token")
    with pytest.raises(TransportError) as caught:
        await hub.start()
    message = str(caught.value)
    assert "rejected the bot token" in message
    assert "@BotFather" in message and "CHATBUS_TELEGRAM__TOKEN" in message
    assert "not-the-token" not in message
    assert not hub.running
    assert api.calls_of("sendMessage") == []


async def test_telegram_going_away_and_coming_back_loses_nothing(api: FakeBotAPI) -> None:
    hub, web, telegram = build_hub(api)
    async with hub:
        await web.say("ana", "before")
        await api.wait_sent(1)
        await api.stop()
        for n in range(3):
            await web.say("ana", f"while away {n}")
        await eventually(lambda: not telegram.health().healthy)
        assert "Bot API" in telegram.health().detail
        assert not hub.transport_status()["telegram"]["healthy"]
        await web.say("bob", "the web side still works")
        assert web.texts[-1] == "the web side still works"
        await api.start()  # same port
        api.post(CHAT, "we are back", user=api.user(5, username="alice"))
        sent = await api.wait_sent(5)
        assert [s.text for s in sent] == [
            "ana: before",
            "ana: while away 0",
            "ana: while away 1",
            "ana: while away 2",
            "bob: the web side still works",
        ]
        await web.wait_for(lambda m: m.text == "we are back")
        await eventually(lambda: telegram.health().healthy)
    assert len(api.sent) == 5


async def test_messages_stored_while_telegram_was_away_are_relayed_after_a_restart(
    api: FakeBotAPI, db_path: Path
) -> None:
    hub, web, telegram = build_hub(api, store=sqlite(db_path))
    await hub.start()
    await web.say("ana", "seen")
    await api.wait_sent(1)
    await api.stop()
    await web.say("ana", "stored while Telegram was away")
    await eventually(lambda: not telegram.health().healthy)
    await hub.stop(timeout=1)
    await api.start()
    hub, web, telegram = build_hub(api, store=sqlite(db_path))
    async with hub:
        sent = await api.wait_sent(2)
        assert [s.text for s in sent] == ["ana: seen", "ana: stored while Telegram was away"]
        await web.say("ana", "after the restart")
        sent = await api.wait_sent(3)
    assert [s.text for s in api.sent] == [
        "ana: seen",
        "ana: stored while Telegram was away",
        "ana: after the restart",
    ]


async def test_no_update_is_replayed_after_a_restart(api: FakeBotAPI, db_path: Path) -> None:
    hub, web, _ = build_hub(api, store=sqlite(db_path))
    async with hub:
        api.post(CHAT, "once", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "once")
        handled = [u for u in api.calls_of("getUpdates")]
        assert handled
    # Telegram still holds the update, as when the last confirmation was lost.
    api.updates.insert(0, {"update_id": api.confirmed_up_to, "message": {
        "message_id": 1, "date": 0, "chat": api.chats[CHAT].as_dict(),
        "from": api.user(5, username="alice"), "text": "once"}})  # fmt: skip
    hub, web, _telegram = build_hub(api, store=sqlite(db_path))
    async with hub:
        api.post(CHAT, "twice?", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "twice?")
        history, _ = await hub.history(limit=10)
        assert [m.text for m in history] == ["once", "twice?"]


async def test_a_conflict_with_another_reader_is_reported_and_nothing_is_lost(
    api: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="chatbus.telegram")
    hub, web, telegram = build_hub(api)
    async with hub:
        await api.wait_for(lambda: len(api.calls_of("deleteWebhook")) == 1)
        api.post(CHAT, "first", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "first")
        await api.wait_for(lambda: api.polls_waiting == 1)
        async with httpx.AsyncClient() as other:  # a second program polling with the same token
            await other.post(f"{api.base_url}{api.token}/getUpdates", data={"timeout": "0", "offset": "-1"})
        await eventually(lambda: any(c.status == 409 for c in api.calls_of("getUpdates")))
        api.post(CHAT, "second", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "second")
        assert [m.text for m in web.delivered if m.transport == "telegram"] == ["first", "second"]
        assert any("another program is reading" in r.getMessage() for r in caplog.records)
        await eventually(lambda: telegram.health().healthy)


async def test_bot_removed_from_the_chat_is_unhealthy_while_the_hub_keeps_working(api: FakeBotAPI) -> None:
    hub, web, telegram = build_hub(api)
    async with hub:
        api.kick(CHAT)
        await web.say("ana", "anyone there?")
        await eventually(lambda: not telegram.health().healthy)
        status = hub.transport_status()
        assert status["telegram"]["healthy"] is False
        assert "kicked" in status["telegram"]["detail"] and "add the bot back" in status["telegram"]["detail"]
        assert status["telegram"]["chats"][str(CHAT)]["healthy"] is False
        assert status["memory"]["healthy"] is True
        await web.say("bob", "the hub still runs")
        assert web.texts[-2:] == ["anyone there?", "the hub still runs"]
        await api.wait_for(lambda: [c.status for c in api.calls_of("sendMessage")] == [403, 403])
        # Someone adds the bot back: Telegram says so, and relaying resumes.
        api.chats[CHAT].member = True
        api.push_update({"my_chat_member": {
            "chat": api.chats[CHAT].as_dict(), "from": api.user(5, username="alice"), "date": 0,
            "old_chat_member": {"status": "left", "user": api.bot},
            "new_chat_member": {"status": "member", "user": api.bot}}})  # fmt: skip
        await eventually(lambda: telegram.health().healthy)
        await web.say("ana", "welcome back")
        [sent] = await api.wait_sent(1)
        assert sent.text == "ana: welcome back"


async def test_a_token_revoked_later_is_unhealthy_and_relayed_after_a_fixed_restart(
    api: FakeBotAPI, db_path: Path
) -> None:
    hub, web, telegram = build_hub(api, store=sqlite(db_path))
    await hub.start()
    try:
        api.revoked = True
        await eventually(lambda: not telegram.health().healthy)
        assert "token" in telegram.health().detail
        await web.say("ana", "while revoked")
        assert hub.running and web.texts[-1] == "while revoked"
    finally:
        await hub.stop(timeout=1)
    assert api.sent == []
    api.revoked = False  # the operator puts a working token in place
    hub, web, telegram = build_hub(api, store=sqlite(db_path))
    async with hub:
        [sent] = await api.wait_sent(1)
        assert sent.text == "ana: while revoked"


async def test_a_group_upgraded_to_a_supergroup_is_followed(api: FakeBotAPI) -> None:
    api.add_chat(-4242, "Small group", type="group")
    hub, web, _telegram = build_hub(api, chat_ids="-4242")
    async with hub:
        api.migrate(-4242, -1004242)
        await web.say("ana", "still here?")
        [sent] = await api.wait_sent(1)
        assert (sent.chat_id, sent.text) == (-1004242, "ana: still here?")
        api.post(-1004242, "yes", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "yes")
        assert await hub.store.get_state("telegram:migrated:-4242") == "-1004242"


async def test_telegram_unreachable_at_start_up_does_not_keep_the_chat_from_starting(api: FakeBotAPI) -> None:
    await api.stop()
    hub, web, telegram = build_hub(api)
    async with hub:
        assert hub.running
        assert not telegram.health().healthy
        assert "cannot reach the Telegram Bot API" in telegram.health().detail
        await web.say("ana", "said before Telegram was reachable")
        await api.start()
        [sent] = await api.wait_sent(1)
        assert sent.text == "ana: said before Telegram was reachable"
        api.post(CHAT, "hello", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "hello")
        await eventually(lambda: telegram.health().healthy)
