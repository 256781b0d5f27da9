"""Forum topics are rooms: read from message_thread_id, and sent back with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbus import ConfigError
from chatbus.transports.telegram import TelegramTransport

from .conftest import CHAT, build_hub, sqlite
from .fakebot import FakeBotAPI


async def test_each_topic_is_a_room_and_the_general_topic_is_the_chats(api: FakeBotAPI) -> None:
    releases = api.add_topic(CHAT, "Release plans")
    hub, web, _telegram = build_hub(api)
    async with hub:
        alice = api.user(5, username="alice")
        api.post(CHAT, "ship friday?", user=alice, topic=releases)
        api.post(CHAT, "lunch?", user=alice)
        in_topic = await web.wait_for(lambda m: m.text == "ship friday?")
        in_general = await web.wait_for(lambda m: m.text == "lunch?")
        assert (in_topic.room, in_general.room) == ("Release_plans", "general")
        assert in_topic.reply_to is None  # the topic's first message is not what it answers

        await web.say("ana", "friday works", room="Release_plans")
        await web.say("ana", "pizza", room="general")
        topic_answer, general_answer = await api.wait_sent(2)
        assert (topic_answer.text, topic_answer.thread) == ("ana: friday works", releases)
        assert (general_answer.text, general_answer.thread) == ("ana: pizza", None)


async def test_topics_are_configured_by_id_or_by_name(api: FakeBotAPI) -> None:
    ops = api.add_topic(CHAT, "Ops")
    design = api.add_topic(CHAT, "Design")
    hub, web, _telegram = build_hub(api, topics={f"{CHAT}:{ops}": "dev", "design": "ux"})
    async with hub:
        alice = api.user(5, username="alice")
        api.post(CHAT, "deploying", user=alice, topic=ops)
        api.post(CHAT, "new mockups", user=alice, topic=design)
        assert (await web.wait_for(lambda m: m.text == "deploying")).room == "dev"
        assert (await web.wait_for(lambda m: m.text == "new mockups")).room == "ux"
        await web.say("ana", "to ops", room="dev")
        [sent] = await api.wait_sent(1)
        assert sent.thread == ops
        # A reply in a topic is still a reply.
        api.post(CHAT, "which deploy?", user=api.user(6, username="bob"), topic=ops, reply_to=sent.message_id)
        reply = await web.wait_for(lambda m: m.text == "which deploy?")
        assert reply.room == "dev" and reply.reply_to is not None


async def test_a_room_keeps_its_topic_across_restarts(api: FakeBotAPI, db_path: Path) -> None:
    releases = api.add_topic(CHAT, "Release plans")
    hub, web, _telegram = build_hub(api, store=sqlite(db_path))
    async with hub:
        api.post(CHAT, "ship friday?", user=api.user(5, username="alice"), topic=releases)
        await web.wait_for(lambda m: m.text == "ship friday?")
    hub, web, _telegram = build_hub(api, store=sqlite(db_path))
    async with hub:
        await web.say("ana", "still friday", room="Release_plans")
        [sent] = await api.wait_sent(1)
        assert (sent.text, sent.thread) == ("ana: still friday", releases)


def test_bad_topic_settings_are_a_clear_error() -> None:
    with pytest.raises(ConfigError) as caught:
        TelegramTransport({"token": "1:a", "chat_ids": "-100", "topics": {"-100:7": "bad room"}})
    assert "not a room name" in str(caught.value)
    settings = TelegramTransport({"token": "1:a", "chat_ids": "-100", "topics": '{"-100:7": "dev", "Ops": "ops"}'})
    assert settings.settings.topics == {"-100:7": "dev", "Ops": "ops"}
