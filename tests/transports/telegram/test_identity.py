"""Telegram people are tg:<id>: names never merge them with anyone, roles come from the settings."""

from __future__ import annotations

import pytest

from chatbus import AuthError, ConfigError, Forbidden, Presence
from chatbus.transports.telegram import TelegramTransport

from .conftest import CHAT, OTHER_CHAT, build_hub
from .fakebot import FakeBotAPI


async def test_two_telegram_users_called_ana_stay_two_people(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        api.post(CHAT, "I am ana", user=api.user(11, first_name="ana"))
        api.post(CHAT, "me too", user=api.user(12, first_name="ana"))
        await web.wait_for(lambda m: m.text == "me too")
        [first, second] = [m for m in web.delivered if m.transport == "telegram"]
        assert (first.sender, first.display_name) == ("tg:11", "ana")
        assert (second.sender, second.display_name) == ("tg:12", "ana")
        assert hub.is_online("tg:11") and hub.is_online("tg:12")
        # Neither may change the other's message.
        with pytest.raises(Forbidden):
            await hub.edit(await web.join("tg:12", verified=True), first.id, "taken over")


async def test_a_telegram_user_named_like_a_web_user_is_not_that_web_user(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        mine = await web.say("ana", "web ana here")
        api.post(CHAT, "telegram ana here", user=api.user(21, username="ana", first_name="ana"))
        theirs = await web.wait_for(lambda m: m.text == "telegram ana here")
        assert theirs.sender == "tg:21" and mine.sender == "ana"
        offline = [e for e in web.events if isinstance(e, Presence) and e.user_id == "ana" and e.status == "offline"]
        assert offline == []  # the web ana was not taken offline or replaced
        # The Telegram ana cannot edit the web ana's message, nor the web ana the Telegram one.
        telegram_ana = await web.join("tg:21", verified=True, display_name="ana")
        with pytest.raises(Forbidden):
            await hub.edit(telegram_ana, mine.id, "hijacked")
        with pytest.raises(Forbidden):
            await hub.edit(await web.join("ana"), theirs.id, "hijacked")
        # And the web side cannot sign in as the Telegram person.
        with pytest.raises(AuthError):
            await web.join("tg:21")


async def test_a_telegram_user_named_like_an_agent_is_shown_as_who_they_are(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api, chat_ids={str(CHAT): "general", str(OTHER_CHAT): "general"})
    async with hub:
        await hub.hire("coder", "developer")
        api.post(CHAT, "deploy now, this is coder speaking", user=api.user(88, username="coder"))
        message = await web.wait_for(lambda m: m.transport == "telegram")
        assert message.sender == "tg:88" and message.kind == "human"
        assert message.display_name == "coder (tg:88)"
        # Relayed to the other chat of the room, the name says it is not the agent.
        [relayed] = await api.wait_sent(1)
        assert (relayed.chat_id, relayed.text) == (OTHER_CHAT, "coder (tg:88): deploy now, this is coder speaking")
        assert "coder" not in [m.sender for m in web.delivered]


async def test_roles_come_from_the_settings_by_telegram_id(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api, roles={"42": "manager", "tg:43": "developer"}, role="guest")
    async with hub:
        api.post(CHAT, "boss", user=api.user(42, username="boss"))
        api.post(CHAT, "dev", user=api.user(43, username="dev"))
        api.post(CHAT, "someone", user=api.user(44, username="manager"))
        await web.wait_for(lambda m: m.text == "someone")
        roles = {m.text: m.sender_role for m in web.delivered}
        assert roles == {"boss": "manager", "dev": "developer", "someone": "guest"}


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"role": "manager"}, "telegram.roles"),
        ({"roles": {"alice": "manager"}}, "not a Telegram user id"),
        ({"roles": '{"1": ""}'}, "a role is text"),
    ],
)
def test_manager_is_only_ever_given_to_particular_ids(options: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TelegramTransport({"token": "1:a", "chat_ids": "-100", **options})
    assert words in str(caught.value)


def test_roles_from_the_environment_read_as_json() -> None:
    transport = TelegramTransport({"token": "1:a", "chat_ids": "-100", "roles": '{"42": "manager"}'})
    assert transport.settings.role_for("tg:42") == "manager"
    assert transport.settings.role_for("tg:7") == "user"


async def test_a_telegram_account_linked_with_link_posts_as_its_web_person(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        await web.join("ana")
        grace = api.user(42, first_name="Grace")
        api.post(CHAT, "before linking", user=grace)
        assert (await web.wait_for(lambda m: m.text == "before linking")).sender == "tg:42"
        await web.say("ana", "/link")  # told to ana alone, naming the Telegram chat
        await hub.settle()
        told = web.notices[-1].text
        assert told.startswith("To post from Telegram as ana, send /link ") and "in the Telegram chat" in told
        code = told.split("/link ")[1].split()[0]
        api.post(CHAT, f"/link {code}", user=grace)
        await web.wait_for(lambda m: m.text == f"/link {code}")
        await hub.settle()
        api.post(CHAT, "after linking", user=grace)
        after = await web.wait_for(lambda m: m.text == "after linking")
        assert after.sender == "ana"
        # Someone else called Grace is still someone else.
        api.post(CHAT, "another Grace", user=api.user(43, first_name="Grace"))
        assert (await web.wait_for(lambda m: m.text == "another Grace")).sender == "tg:43"
