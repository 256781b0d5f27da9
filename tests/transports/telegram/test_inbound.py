"""From Telegram into the hub: senders, mentions, replies, commands, chats, loops."""

from __future__ import annotations

import logging

import pytest

from chatbus import Presence

from .conftest import CHAT, OTHER_CHAT, build_hub
from .fakebot import FakeBotAPI


async def test_message_with_mentions_and_reply_reaches_the_hub(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        # Something from the web side is relayed first, so there is a Telegram message to reply to.
        original = await web.say("ana", "the build is red")
        [relayed] = await api.wait_sent(1)
        # Alice replies to it, mentioning @coder (a mention entity) and a user without a username.
        text = "@coder please fix, Grace can help"
        api.post(
            CHAT,
            text,
            user=api.user(501, username="alice", first_name="Alice", last_name="Liddell"),
            entities=[
                {"type": "mention", "offset": 0, "length": 6},
                {
                    "type": "text_mention",
                    "offset": 23,
                    "length": 5,
                    "user": api.user(777, first_name="Grace", last_name="Hopper"),
                },
            ],
            reply_to=relayed.message_id,
        )
        message = await web.wait_for(lambda m: m.transport == "telegram")
        assert (message.sender, message.display_name) == ("tg:501", "alice")
        assert message.text == text
        assert message.room == "general"
        assert message.reply_to == original.id
        # Grace has no username: her Telegram id is the mention, never her name.
        assert message.mentions == ("coder", "tg:777")
        assert message.kind == "human"
        online = await web.wait_for_event(lambda e: isinstance(e, Presence) and e.user_id == "tg:501")
        assert isinstance(online, Presence) and online.status == "online"
        assert hub.is_online("tg:501")
        # Telegram users saw it already: it is not posted back to their chat.
        await web.say("ana", "marker")
        sent = await api.wait_sent(2)
        assert [s.text for s in sent] == ["ana: the build is red", "ana: marker"]


async def test_sender_is_the_telegram_id_shown_by_username_else_full_name(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        api.post(CHAT, "one", user=api.user(1, username="bob_smith", first_name="Bob"))
        api.post(CHAT, "two", user=api.user(2, first_name="José", last_name="Núñez Ortega"))
        api.post(CHAT, "three", user=api.user(3, first_name="Иван"))
        await web.wait_for(lambda m: m.text == "three")
        await web.wait_for(lambda m: m.text == "two")
        senders = {m.text: (m.sender, m.display_name) for m in web.delivered}
        assert senders == {
            "one": ("tg:1", "bob_smith"),
            "two": ("tg:2", "José Núñez Ortega"),
            "three": ("tg:3", "Иван"),
        }


async def test_only_configured_chats_are_relayed_and_others_logged_once(
    api: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="chatbus.telegram")
    hub, web, _telegram = build_hub(api)
    async with hub:
        api.post(OTHER_CHAT, "secret one", user=api.user(9, username="mallory"))
        api.post(OTHER_CHAT, "secret two", user=api.user(9, username="mallory"))
        api.post(CHAT, "public", user=api.user(10, username="alice"))
        await web.wait_for(lambda m: m.text == "public")
        await api.wait_for(lambda: not api.updates)
        assert [m.text for m in web.delivered] == ["public"]
        ignored = [r for r in caplog.records if str(OTHER_CHAT) in r.getMessage()]
        assert len(ignored) == 1


async def test_commands_for_this_bot_are_commands_and_for_other_bots_ignored(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        user = api.user(10, username="alice")
        api.post(CHAT, "/status@OtherBot now", user=user)
        api.post(CHAT, "/status@chatbus_relay_bot coder", user=user)
        api.post(CHAT, "/help", user=user)
        await web.wait_for(lambda m: m.text == "/help")
        commands = [(m.text, m.command, m.command_args) for m in web.delivered if m.transport == "telegram"]
        assert commands == [("/status coder", "status", ("coder",)), ("/help", "help", ())]


async def test_the_bots_own_messages_never_come_back_in(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        api.post(CHAT, "ana: echo?", user=api.bot)
        api.post(CHAT, "after", user=api.user(10, username="alice"))
        await web.wait_for(lambda m: m.text == "after")
        assert [m.text for m in web.delivered] == ["after"]


async def test_refused_message_gets_a_reply_in_telegram_and_polling_goes_on(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        api.post(CHAT, "x" * 20_001, user=api.user(10, username="alice"))
        [notice] = await api.wait_sent(1)
        assert "20001 characters" in notice.text and "limit is 20000" in notice.text
        assert notice.reply_to is not None
        api.post(CHAT, "short", user=api.user(10, username="alice"))
        await web.wait_for(lambda m: m.text == "short")
        assert [m.text for m in web.delivered] == ["short"]


async def test_channel_posts_are_attributed_to_the_channel(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        chat = api.chats[CHAT].as_dict()
        api.post(CHAT, "announcement", user=api.user(1087968824, username="GroupAnonymousBot"), sender_chat=chat)
        message = await web.wait_for(lambda m: m.text == "announcement")
        assert (message.sender, message.display_name) == (f"tg:{CHAT}", "team_chat")
