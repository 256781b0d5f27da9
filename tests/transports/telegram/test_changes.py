"""Edits, deletions and reactions both ways, and an answer written as it streams."""

from __future__ import annotations

import asyncio
import itertools
import logging
from pathlib import Path

import pytest

from chatbus import MessageEdited, Reaction

from .conftest import CHAT, OTHER_CHAT, build_hub, sqlite
from .fakebot import FakeBotAPI

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


async def test_a_telegram_edit_edits_the_hub_message_as_its_sender(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        alice = api.user(5, username="alice")
        posted = api.post(CHAT, "the buidl is red", user=alice)
        original = await web.wait_for(lambda m: m.text == "the buidl is red")
        api.edit(CHAT, posted["message_id"], "the build is red, @coder", user=alice)
        change = await web.wait_for_change(lambda c: isinstance(c, MessageEdited))
        assert change.message.id == original.id
        assert (change.message.text, change.message.edited_by) == ("the build is red, @coder", "tg:5")
        assert "coder" in change.message.mentions


async def test_an_edit_of_a_message_the_hub_does_not_know_is_ignored(
    api: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="chatbus.telegram")
    hub, web, _telegram = build_hub(api)
    async with hub:
        alice = api.user(5, username="alice")
        api.edit(CHAT, 4711, "edited before chatbus ever saw it", user=alice)
        api.post(CHAT, "next", user=alice)
        await web.wait_for(lambda m: m.text == "next")
        assert web.changes == []
        assert any("does not know" in r.getMessage() for r in caplog.records)


async def test_a_web_edit_and_delete_change_the_relayed_telegram_message(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        ana = await web.join("ana")
        message = await web.say(ana, "meeting at 10")
        [sent] = await api.wait_sent(1)
        await hub.edit(ana, message.id, "meeting at 11 <sharp>")
        await api.wait_for(lambda: sent.text == "ana: meeting at 11 <sharp>")
        assert sent.edits == ["ana: meeting at 10"] and sent.bold() == ["ana"]
        await hub.delete(ana, message.id)
        await api.wait_for(lambda: sent.deleted)


async def test_editing_a_long_message_edits_its_parts_and_adds_or_drops_some(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        ana = await web.join("ana")
        long = "\n".join(f"line {n:04d}" + " word" * 20 for n in range(45))  # two Telegram messages
        message = await web.say(ana, long)
        first, second = await api.wait_sent(2)
        await hub.edit(ana, message.id, "short now")
        await api.wait_for(lambda: first.text == "ana: short now" and second.deleted)
        await hub.edit(ana, message.id, long + "\n" + long)  # now three parts
        await api.wait_for(lambda: len(api.sent) == 4)
        third, fourth = api.sent[2], api.sent[3]
        assert [third.reply_to, fourth.reply_to] == [first.message_id, third.message_id]
        shown = [s.text.removeprefix("ana: ") for s in (first, third, fourth)]
        assert "\n".join(shown) == long + "\n" + long


async def test_edits_reach_the_copies_in_other_chats_but_not_the_persons_own(api: FakeBotAPI) -> None:
    hub, _web, _telegram = build_hub(api, chat_ids={str(CHAT): "general", str(OTHER_CHAT): "general"})
    async with hub:
        alice = api.user(5, username="alice")
        posted = api.post(CHAT, "typo hree", user=alice)
        [copy] = await api.wait_sent(1)
        assert copy.chat_id == OTHER_CHAT
        api.edit(CHAT, posted["message_id"], "typo here", user=alice)
        await api.wait_for(lambda: copy.text == "alice: typo here")
        assert [int(c.params["chat_id"]) for c in api.calls_of("editMessageText")] == [OTHER_CHAT]


async def test_a_manager_deleting_a_telegram_message_deletes_it_where_the_bot_may(api: FakeBotAPI) -> None:
    api.admin_of.add(CHAT)
    hub, web, _telegram = build_hub(api, chat_ids={str(CHAT): "general", str(OTHER_CHAT): "general"})
    async with hub:
        posted = api.post(CHAT, "spam spam", user=api.user(66, username="spammer"))
        message = await web.wait_for(lambda m: m.text == "spam spam")
        [copy] = await api.wait_sent(1)
        await hub.delete(await web.join("boss", role="manager"), message.id)
        await api.wait_for(lambda: copy.deleted and posted["message_id"] not in api.chats[CHAT].posted)


async def test_reactions_from_telegram_reach_the_hub_and_back(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        alice = api.user(5, username="alice")
        posted = api.post(CHAT, "shipped!", user=alice)
        message = await web.wait_for(lambda m: m.text == "shipped!")
        api.react(CHAT, posted["message_id"], user=api.user(6, username="bob"), old=[], new=["🔥"])
        added = await web.wait_for_change(lambda c: isinstance(c, Reaction))
        assert isinstance(added, Reaction)
        assert (added.message.id, added.emoji, added.user_id, added.on) == (message.id, "🔥", "tg:6", True)
        api.react(CHAT, posted["message_id"], user=api.user(6, username="bob"), old=["🔥"], new=["👍"])
        await web.wait_for_change(lambda c: isinstance(c, Reaction) and c.emoji == "👍")
        after = await hub.store.get(message.id)
        assert after is not None and after.reactions == (("👍", ("tg:6",)),)
        # A Telegram person's own reaction is already in Telegram: the bot does not repeat it.
        assert api.calls_of("setMessageReaction") == []


async def test_web_reactions_become_the_bots_reaction_where_telegram_allows_it(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        posted = api.post(CHAT, "release is out", user=api.user(5, username="alice"))
        from_telegram = await web.wait_for(lambda m: m.text == "release is out")
        ana, bob = await web.join("ana"), await web.join("bob")
        await hub.react(ana, from_telegram.id, "🎉")
        await api.wait_for(lambda: api.chats[CHAT].reactions.get(posted["message_id"], {}).get(api.bot["id"]) == ["🎉"])
        mine = await web.say(ana, "thanks all")
        [relayed] = await api.wait_sent(1)
        await hub.react(bob, mine.id, "🥑")  # not a reaction Telegram allows a bot: not relayed
        await hub.react(ana, mine.id, "+1")  # the web's spelling of 👍
        await api.wait_for(lambda: relayed.reaction == "👍")
        await hub.react(ana, mine.id, "+1", on=False)
        await api.wait_for(lambda: relayed.reaction is None)
        emoji = [c.params.get("reaction") for c in api.calls_of("setMessageReaction")]
        assert all(not r or r[0]["emoji"] != "🥑" for r in emoji)


async def test_an_edit_of_a_merged_message_rewrites_its_line(api: FakeBotAPI) -> None:
    api.flood_limit = (1, 2.0)
    hub, web, _telegram = build_hub(api, group_rate=0)
    async with hub:
        ana = await web.join("ana")
        await web.say(ana, "first")
        for n in range(4):
            await web.say(ana, f"queued {n}")
        await api.wait_for(lambda: any("\n" in s.text for s in api.sent), timeout=15)
        merged = next(s for s in api.sent if "\n" in s.text)  # "queued 0" met the 429, the rest waited
        assert merged.text == "ana: queued 1\nana: queued 2\nana: queued 3"
        middle = next(m for m in web.delivered if m.text == "queued 2")
        await hub.edit(ana, middle.id, "queued two, edited")
        await api.wait_for(lambda: merged.text == "ana: queued 1\nana: queued two, edited\nana: queued 3", timeout=15)
        await hub.delete(ana, middle.id)
        await api.wait_for(lambda: merged.text == "ana: queued 1\nana: queued 3", timeout=15)


async def test_a_streaming_answer_is_edited_in_place_within_telegrams_edit_limit(api: FakeBotAPI) -> None:
    hub, _web, _telegram = build_hub(api, edit_interval=0.5)
    async with hub:
        await hub.hire("coder", "developer")
        answer = await hub.send("Thinking", sender="coder", streaming=True)
        [sent] = await api.wait_sent(1)
        coder = hub.agents["coder"].identity
        text = "Thinking"
        for n in range(20):
            text += f" step{n}"
            await hub.edit(coder, answer.id, text, streaming=True)
            await asyncio.sleep(0.05)
        await hub.edit(coder, answer.id, "Done: all green", streaming=False)
        await api.wait_for(lambda: sent.text == "coder: Done: all green", timeout=10)
        edits = api.calls_of("editMessageText")
        assert len(edits) <= 5  # 20 updates in a second, not 21 edits
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(edits)]
        assert all(gap >= 0.45 for gap in gaps)
        assert len(api.sent) == 1


async def test_two_answers_written_at_once_in_one_chat_share_its_edit_limit(api: FakeBotAPI) -> None:
    hub, _web, _telegram = build_hub(api, edit_interval=0.5)
    async with hub:
        for name in ("coder", "tester"):
            await hub.hire(name, "developer")
        answers = [await hub.send("Thinking", sender=name, streaming=True) for name in ("coder", "tester")]
        await api.wait_sent(2)
        texts = ["Thinking", "Thinking"]
        for n in range(10):
            for i, (name, answer) in enumerate(zip(("coder", "tester"), answers, strict=True)):
                texts[i] += f" step{n}"
                await hub.edit(hub.agents[name].identity, answer.id, texts[i], streaming=True)
            await asyncio.sleep(0.1)
        for name, answer in zip(("coder", "tester"), answers, strict=True):
            await hub.edit(hub.agents[name].identity, answer.id, f"{name} is done", streaming=False)
        for name in ("coder", "tester"):
            await api.wait_for(lambda n=name: any(m.text == f"{n}: {n} is done" for m in api.sent), timeout=15)
        edits = api.calls_of("editMessageText")
        # Both answers were edited (each ends with its final text), in about 1 s of updates ...
        assert {int(c.params["message_id"]) for c in edits} == {sent.message_id for sent in api.sent}
        assert 2 <= len(edits) <= 8
        # ... and never two edits in the chat closer than edit_interval, whichever answer they were of.
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(edits)]
        assert all(gap >= 0.45 for gap in gaps)


async def test_what_was_edited_or_deleted_while_telegram_was_away_is_caught_up_as_it_is_now(
    api: FakeBotAPI, db_path: Path
) -> None:
    hub, web, _telegram = build_hub(api, store=sqlite(db_path))
    async with hub:
        ana = await web.join("ana")
        await web.say(ana, "seen")
        await api.wait_sent(1)
        await api.stop()
        gone = await web.say(ana, "said then taken back")
        fixed = await web.say(ana, "teh plan")
        await hub.delete(ana, gone.id)
        await hub.edit(ana, fixed.id, "the plan")
        await hub.stop(timeout=1)
    await api.start()
    hub, web, _telegram = build_hub(api, store=sqlite(db_path))
    async with hub:
        await web.say("ana", "after the restart")
        await api.wait_for(lambda: any(s.text == "ana: after the restart" for s in api.sent))
    assert [s.text for s in api.sent] == ["ana: seen", "ana: the plan", "ana: after the restart"]


async def test_a_linked_persons_reaction_in_telegram_is_not_repeated_by_the_bot(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        ana = await web.join("ana")
        mine = await web.say(ana, "lunch at noon")
        [relayed] = await api.wait_sent(1)
        grace = api.user(42, first_name="Grace")
        code = hub.links.offer("ana")
        api.post(CHAT, f"/link {code}", user=grace)
        await web.wait_for(lambda m: m.text == f"/link {code}")
        await hub.settle()
        api.react(CHAT, relayed.message_id, user=grace, old=[], new=["👍"])
        reaction = await web.wait_for_change(lambda c: isinstance(c, Reaction))
        assert isinstance(reaction, Reaction) and (reaction.user_id, reaction.message.id) == ("ana", mine.id)
        bob = await web.join("bob")
        await hub.react(bob, mine.id, "🔥")  # a reaction from the web side is shown by the bot
        await api.wait_for(lambda: relayed.reaction == "🔥")
        assert [c.params["reaction"][0]["emoji"] for c in api.calls_of("setMessageReaction")] == ["🔥"]
