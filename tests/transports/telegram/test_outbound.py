"""From the hub to Telegram: names in bold, escaping, long texts, replies, rooms."""

from __future__ import annotations

from chatbus import Settings

from .conftest import CHAT, OTHER_CHAT, build_hub
from .fakebot import FakeBotAPI


async def test_web_message_appears_with_the_sender_in_bold_and_escaped(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        await web.say("ana.b", "if a < b && c > d then <i>nothing</i> is italic")
        [sent] = await api.wait_sent(1)
        assert sent.chat_id == CHAT
        assert sent.parse_mode == "HTML"
        assert sent.text == "ana.b: if a < b && c > d then <i>nothing</i> is italic"
        assert sent.bold() == ["ana.b"]
        assert [e["type"] for e in sent.entities] == ["bold"]


async def test_agent_and_system_messages_are_relayed_too(api: FakeBotAPI) -> None:
    hub, _web, _telegram = build_hub(api)
    async with hub:
        await hub.hire("coder", "developer")
        await hub.send("on it", sender="coder")
        await hub.send("maintenance at noon")
        sent = await api.wait_sent(2)
        assert [(s.text, s.bold()) for s in sent] == [
            ("coder: on it", ["coder"]),
            ("system: maintenance at noon", ["system"]),
        ]


async def test_a_10000_character_message_arrives_whole_in_parts(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    lines = [f"line {n:04d}: a < b & c > d" + " word" * (n % 17) for n in range(400)]
    text = "\n".join(lines)[:9_999] + "."
    assert len(text) == 10_000
    async with hub:
        await web.say("ana", text)
        await web.say("ana", "after")
        sent = await api.wait_sent(4)
        parts, after = sent[:-1], sent[-1]
        assert after.text == "ana: after"
        assert len(parts) == 3
        assert all(len(part.text) <= 4096 for part in parts)
        assert all(part.bold() == ["ana"] for part in parts)
        bodies = [part.text.removeprefix("ana: ") for part in parts]
        # Split at line ends: every line is whole and in order.
        assert "\n".join(bodies) == text


async def test_one_huge_word_is_cut_only_because_it_must_be(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    word = "".join(chr(ord("a") + n % 26) for n in range(10_000))
    async with hub:
        await web.say("ana", word)
        parts = await api.wait_sent(3)
        assert "".join(p.text.removeprefix("ana: ") for p in parts) == word


async def test_an_agent_reply_to_a_telegram_message_is_a_telegram_reply(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        await hub.hire("coder", "developer")
        posted = api.post(CHAT, "@coder status?", user=api.user(5, username="alice"))
        question = await web.wait_for(lambda m: m.transport == "telegram")
        await hub.send("all green", sender="coder", reply_to=question.id)
        await api.wait_for(lambda: any(s.text == "coder: all green" for s in api.sent))
        answer = next(s for s in api.sent if s.text == "coder: all green")
        assert answer.reply_to == posted["message_id"]


async def test_replies_survive_a_restart(api: FakeBotAPI, db_path: object) -> None:
    from .conftest import sqlite

    hub, web, _ = build_hub(api, store=sqlite(db_path))  # type: ignore[arg-type]
    async with hub:
        first = await web.say("ana", "question for later")
        [relayed] = await api.wait_sent(1)
    hub, web, _telegram = build_hub(api, store=sqlite(db_path))  # type: ignore[arg-type]
    async with hub:
        await web.say("ana", "answer", reply_to=first.id)
        sent = await api.wait_sent(2)
        assert sent[1].text == "ana: answer"
        assert sent[1].reply_to == relayed.message_id
        # And a Telegram reply to the old message still points at the hub message.
        api.post(CHAT, "agreed", user=api.user(5, username="alice"), reply_to=relayed.message_id)
        reply = await web.wait_for(lambda m: m.text == "agreed")
        assert reply.reply_to == first.id


async def test_rooms_go_to_their_own_chats_and_a_chat_sees_other_chats_of_its_room(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api, chat_ids={str(CHAT): "general", str(OTHER_CHAT): "general"})
    async with hub:
        api.post(CHAT, "from the team chat", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "from the team chat")
        [first] = await api.wait_sent(1)
        assert (first.chat_id, first.text) == (OTHER_CHAT, "alice: from the team chat")
        await web.say("ana", "elsewhere", room="ops")  # no chat for this room
        await web.say("ana", "to both")
        sent = await api.wait_sent(3)
        assert sorted((s.chat_id, s.text) for s in sent[1:]) == [(OTHER_CHAT, "ana: to both"), (CHAT, "ana: to both")]


async def test_custom_format(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(
        api, format="<i>{room}</i> · <b>{sender}</b>\n{text}", settings=Settings.isolated(db=":memory:")
    )
    async with hub:
        await web.say("ana", "hello <you>")
        [sent] = await api.wait_sent(1)
        assert sent.text == "general · ana\nhello <you>"
        assert sent.bold() == ["ana"]


async def test_a_chat_configured_by_its_public_username(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api, chat_ids="@team_chat")
    async with hub:
        api.post(CHAT, "hello from the group", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "hello from the group")
        await web.say("ana", "hello group")
        [sent] = await api.wait_sent(1)  # the group's own message was not echoed back to it
        assert (sent.chat_id, sent.text) == (CHAT, "ana: hello group")


async def test_a_text_no_wire_can_carry_is_relayed_with_a_replacement_and_blocks_nothing(api: FakeBotAPI) -> None:
    hub, web, _ = build_hub(api)
    async with hub:
        await web.say("ana", "broken \ud800 surrogate")
        await web.say("ana", "next")
        sent = await api.wait_sent(2)
        assert [s.text for s in sent] == ["ana: broken \ufffd surrogate", "ana: next"]


async def test_a_web_mention_of_a_telegram_user_without_username_notifies_them(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        api.post(CHAT, "hi", user=api.user(777, first_name="Grace", last_name="Hopper"))
        await web.wait_for(lambda m: m.text == "hi")
        await web.say("ana", "@tg:777 can you look? cc @tg:999 & <b>")
        [sent] = await api.wait_sent(1)
        assert sent.text == "ana: Grace Hopper can you look? cc tg:999 & <b>"
        assert sent.mentioned() == [777, 999]  # real Telegram mentions: both are notified


async def test_a_team_mention_is_relayed_as_written(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        message = await web.say("ana", "@team standup in 5")
        assert "team" in message.mentions
        [sent] = await api.wait_sent(1)
        assert sent.text == "ana: @team standup in 5"
        # And from Telegram, @team mentions everyone in chatbus too.
        api.post(CHAT, "@team I'm late", user=api.user(5, username="alice"))
        late = await web.wait_for(lambda m: m.text == "@team I'm late")
        assert "team" in late.mentions
