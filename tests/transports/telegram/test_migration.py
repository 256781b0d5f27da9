"""A group that becomes a supergroup, seen from both sides, loses no message in between."""

from __future__ import annotations

from .conftest import build_hub
from .fakebot import FakeBotAPI

OLD, NEW = -4242, -1004242


async def test_the_service_messages_of_a_migration_are_followed_from_both_sides(api: FakeBotAPI) -> None:
    api.add_chat(OLD, "Small group", type="group")
    hub, web, _telegram = build_hub(api, chat_ids=str(OLD))
    async with hub:
        api.migrate(OLD, NEW, announce=True)
        api.post(NEW, "first words in the supergroup", user=api.user(5, username="alice"))
        arrived = await web.wait_for(lambda m: m.text == "first words in the supergroup")
        assert arrived.client_id == f"{NEW}:2"  # after the service message that opened the supergroup
        assert await hub.store.get_state(f"telegram:migrated:{OLD}") == str(NEW)
        await web.say("ana", "welcome to the supergroup")
        [sent] = await api.wait_sent(1)
        assert sent.chat_id == NEW
        # Known before sending: no refused send to the old id first.
        assert [call.status for call in api.calls_of("sendMessage")] == [200]
        assert [m.text for m in web.delivered if m.transport == "telegram"] == ["first words in the supergroup"]


async def test_messages_from_the_new_supergroup_before_its_migration_is_known_are_not_lost(api: FakeBotAPI) -> None:
    api.add_chat(OLD, "Small group", type="group")
    hub, web, _telegram = build_hub(api, chat_ids=str(OLD))
    async with hub:
        api.migrate(OLD, NEW)
        # The supergroup's first messages reach the bot before the news that it is the old group.
        api.post(NEW, "early one", user=api.user(5, username="alice"))
        api.post(NEW, "early two", user=api.user(6, username="bob"))
        api.service(NEW, api.user(1, username="admin"), migrate_from_chat_id=OLD)
        api.post(NEW, "after", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "after")
        assert [m.text for m in web.delivered if m.transport == "telegram"] == ["early one", "early two", "after"]


async def test_an_unrelated_supergroup_stays_ignored(api: FakeBotAPI) -> None:
    api.add_chat(OLD, "Small group", type="group")
    api.add_chat(-100777, "Someone else's group")
    hub, web, _telegram = build_hub(api, chat_ids=str(OLD))
    async with hub:
        api.post(-100777, "not for us", user=api.user(9, username="mallory"))
        api.service(-100777, api.user(1, username="admin"), migrate_from_chat_id=-999)
        api.post(OLD, "ours", user=api.user(5, username="alice"))
        await web.wait_for(lambda m: m.text == "ours")
        assert [m.text for m in web.delivered] == ["ours"]
