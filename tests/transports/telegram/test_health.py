"""What the bot can see (privacy mode) and a relay that fails unexpectedly, as an operator sees them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from .conftest import CHAT, build_hub
from .fakebot import FakeBotAPI

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_privacy_mode_is_said_in_the_log_and_the_status_with_what_to_do(
    api: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="chatbus.telegram")
    api.privacy = True
    hub, _web, telegram = build_hub(api)
    async with hub:
        await eventually(lambda: "warning" in telegram.status()["chats"][str(CHAT)])
        status = hub.transport_status()["telegram"]
        assert status["privacyMode"] is True
        warning = status["chats"][str(CHAT)]["warning"]
        assert "/setprivacy" in warning and "admin" in warning
        assert status["healthy"] is True  # it works, only not fully
        assert "privacy mode is on" in status["detail"]
        assert any("/setprivacy" in r.getMessage() for r in caplog.records)


async def test_privacy_mode_does_not_matter_where_the_bot_is_an_admin(api: FakeBotAPI) -> None:
    api.privacy = True
    api.admin_of.add(CHAT)
    hub, web, telegram = build_hub(api)
    async with hub:
        api.post(CHAT, "hello", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "hello")
        assert api.calls_of("getChatMember")
        status = telegram.status()
        assert "warning" not in status["chats"][str(CHAT)]
        assert status["detail"] == "ok"


async def test_privacy_mode_off_is_not_mentioned(api: FakeBotAPI) -> None:
    hub, web, telegram = build_hub(api)
    async with hub:
        api.post(CHAT, "hello", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "hello")
        assert telegram.status()["privacyMode"] is False
        assert telegram.status()["detail"] == "ok"
        assert api.calls_of("getChatMember") == []


@pytest.mark.parametrize(
    "answer",
    [
        b'{"ok": true, "result": [{"update_id": "x", "message": 5}]}',  # a shape python-telegram-bot rejects
        b'{"ok": true, "result": {"update_id": 7}}',  # not even a list
        b"{not json at all",
    ],
    ids=["no-update-id", "not-a-list", "malformed-json"],
)
async def test_a_run_failing_on_an_unreadable_answer_restarts_and_is_unhealthy_meanwhile(
    api: FakeBotAPI, answer: bytes
) -> None:
    hub, web, telegram = build_hub(api)
    async with hub:
        await api.wait_for(lambda: api.polls_waiting == 1)
        api.fail("getUpdates", raw=answer, times=4)  # the polls after the one waiting now
        api.post(CHAT, "before the trouble", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "before the trouble")
        await eventually(lambda: not telegram.health().healthy)
        assert not telegram.is_connected()
        assert hub.transport_status()["telegram"]["healthy"] is False
        assert "Traceback" not in telegram.health().detail
        api.post(CHAT, "after the trouble", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "after the trouble")  # once Telegram answers properly again
        await eventually(lambda: telegram.health().healthy)
        assert telegram.is_connected()
        await web.say("ana", "still relaying")
        [sent] = await api.wait_sent(1)
        assert sent.text == "ana: still relaying"
    assert api.faults_left("getUpdates") == 0


async def test_an_unreadable_answer_to_get_me_at_start_up_is_retried_in_the_background(api: FakeBotAPI) -> None:
    api.fail("getMe", raw=b'{"ok": true, "result": {"id": "not a user"}}', times=2)
    hub, web, telegram = build_hub(api)
    async with hub:
        assert hub.running
        assert not telegram.is_connected()
        await eventually(lambda: telegram.health().healthy)
        api.post(CHAT, "hello", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "hello")


async def test_an_update_the_library_cannot_read_is_skipped_and_the_next_ones_arrive(
    api: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="chatbus.telegram")
    hub, web, telegram = build_hub(api)
    async with hub:
        await api.wait_for(lambda: api.polls_waiting == 1)
        # An update of a kind this python-telegram-bot cannot read (a required field it lacks).
        api.push_update({"message": {"message_id": 1, "date": 0, "chat": api.chats[CHAT].as_dict(), "poll": {}}})
        api.post(CHAT, "after the unreadable one", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "after the unreadable one")
        assert [m.text for m in web.delivered] == ["after the unreadable one"]
        assert any("cannot be read" in r.getMessage() for r in caplog.records)
        assert telegram.health().healthy
