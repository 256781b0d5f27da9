"""What Telegram messages say arrives whole: media without a file as placeholders, links with their address,
mentions of people without a username, and a text too long for the hub answered in the chat."""

from __future__ import annotations

from typing import Any

import pytest

from chatbus import Settings

from .conftest import CHAT, build_hub
from .fakebot import FakeBotAPI
from .test_files import picture

# Photos, documents, voice notes and videos are fetched as files: see test_files.py.
MEDIA: list[tuple[dict[str, Any], str]] = [
    (
        {
            "sticker": {
                "file_id": "s",
                "file_unique_id": "s",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "type": "regular",
                "emoji": "😀",
            }
        },
        "[sticker 😀]",
    ),
    ({"location": {"latitude": 48.858370, "longitude": 2.294481}}, "[location 48.85837, 2.29448]"),
    (
        {
            "poll": {
                "id": "1",
                "question": "Lunch?",
                "options": [
                    {"text": "pizza", "voter_count": 0, "persistent_id": "a"},
                    {"text": "sushi", "voter_count": 0, "persistent_id": "b"},
                ],
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
                "allows_revoting": False,
                "members_only": False,
            }
        },
        "[poll] Lunch? (pizza / sushi)",
    ),
]


@pytest.mark.parametrize(("media", "shown"), MEDIA, ids=[shown.split("]")[0][1:] for _, shown in MEDIA])
async def test_media_arrive_as_a_clear_placeholder(api: FakeBotAPI, media: dict[str, Any], shown: str) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        api.post(CHAT, None, user=api.user(5, username="alice"), **media)
        message = await web.wait_for(lambda m: m.transport == "telegram")
        assert message.text == shown


async def test_a_hyperlink_keeps_its_address(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        text = "see the docs and https://example.org/raw"
        api.post(
            CHAT,
            text,
            user=api.user(5, username="alice"),
            entities=[
                {"type": "text_link", "offset": 8, "length": 4, "url": "https://docs.example.org/"},
                {"type": "url", "offset": 22, "length": 23},
            ],
        )
        message = await web.wait_for(lambda m: m.transport == "telegram")
        assert message.text == "see the docs (https://docs.example.org/) and https://example.org/raw"


async def test_links_in_a_caption_and_after_emoji_keep_their_place(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        caption = "🎉🎉 release notes"  # emoji count twice in Telegram's offsets
        api.post_media(
            CHAT,
            "photo",
            picture(),
            user=api.user(5, username="alice"),
            caption=caption,
            caption_entities=[{"type": "text_link", "offset": 5, "length": 7, "url": "https://example.org/notes"}],
        )
        message = await web.wait_for(lambda m: m.transport == "telegram")
        assert message.text == "🎉🎉 release (https://example.org/notes) notes"
        assert len(message.attachments) == 1


async def test_a_mention_without_username_is_the_persons_id_and_an_agent_is_found(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        await hub.hire("coder", "developer")
        grace = api.user(777, first_name="Grace")
        agent_account = api.user(778, first_name="Coder")  # someone picked "Coder" from the member list
        api.post(
            CHAT,
            "Grace and Coder, look",
            user=api.user(5, username="alice"),
            entities=[
                {"type": "text_mention", "offset": 0, "length": 5, "user": grace},
                {"type": "text_mention", "offset": 10, "length": 5, "user": agent_account},
            ],
        )
        message = await web.wait_for(lambda m: m.transport == "telegram")
        assert message.mentions == ("tg:777", "tg:778", "coder")
        assert "Grace" not in message.mentions  # never a web user who happens to be called Grace


async def test_an_at_username_of_someone_seen_mentions_their_id_too(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        api.post(CHAT, "hello", user=api.user(31, username="bob"))
        api.post(CHAT, "@bob ping", user=api.user(5, username="alice"), entities=[
            {"type": "mention", "offset": 0, "length": 4}])  # fmt: skip
        message = await web.wait_for(lambda m: m.text == "@bob ping")
        assert message.mentions == ("bob", "tg:31")


async def test_a_text_over_the_hubs_limit_is_answered_in_the_chat_every_time(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api, settings=Settings.isolated(db=":memory:", max_text_length=4000))
    async with hub:
        user = api.user(10, username="alice")
        api.post(CHAT, "x" * 4096, user=user)  # Telegram took it; this hub takes 4000
        api.post(CHAT, "y" * 4050, user=user)
        notices = await api.wait_sent(2)
        assert [n.reply_to for n in notices] == [1, 2]
        assert all(n.text.startswith("⚠️ Not relayed to the chatbus chat:") for n in notices)
        assert "4096 characters" in notices[0].text and "limit is 4000" in notices[0].text
        api.post(CHAT, "short", user=user)
        await web.wait_for(lambda m: m.text == "short")
        assert [m.text for m in web.delivered] == ["short"]


async def test_a_full_telegram_message_with_links_is_not_refused_for_their_addresses(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api, settings=Settings.isolated(db=":memory:"))
    async with hub:
        assert hub.settings.max_text_length >= 4000
        text = "docs " + "a" * (hub.settings.max_text_length - 5)
        api.post(CHAT, text, user=api.user(5, username="alice"), entities=[
            {"type": "text_link", "offset": 0, "length": 4, "url": "https://example.org/"}])  # fmt: skip
        message = await web.wait_for(lambda m: m.transport == "telegram")
        assert message.text == text  # the address did not fit; the text is taken whole
