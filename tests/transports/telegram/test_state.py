"""What the relay remembers lives under the store keys existing databases already hold."""

from __future__ import annotations

import json
import time

from chatbus import MemoryStore
from chatbus.transports.telegram import TelegramSettings
from chatbus.transports.telegram.state import RelayState

SETTINGS = TelegramSettings.model_validate({"token": "123456:secret", "chat_ids": "-4242, @team_chat"})


async def test_a_database_written_earlier_is_read_as_it_is() -> None:
    store = MemoryStore()
    await store.open()
    await store.set_state("telegram:123456:offset", json.dumps({"next": 42, "at": time.time()}))
    await store.set_state("telegram:delivered", "7")
    await store.set_state("telegram:migrated:-4242", "-1004242")
    state = RelayState(SETTINGS)
    await state.load(store)
    assert (state.offset, state.delivered) == (42, 7)
    assert state.current(-4242) == -1004242
    assert state.room_of(-1004242, None) == (-4242, "general")


async def test_what_the_relay_learns_is_written_under_the_same_keys() -> None:
    store = MemoryStore()
    await store.open()
    state = RelayState(SETTINGS)
    await state.load(store)
    await state.save_offset(store, 43)
    await state.mark_delivered(store, 8)
    await state.mark_delivered(store, 5)  # never goes back
    await state.record_migration(store, -4242, -1004242)
    assert json.loads(await store.get_state("telegram:123456:offset") or "{}")["next"] == 43
    assert await store.get_state("telegram:delivered") == "8"
    assert await store.get_state("telegram:migrated:-4242") == "-1004242"


async def test_a_week_old_offset_is_forgotten_as_telegram_forgets_it() -> None:
    store = MemoryStore()
    await store.open()
    await store.set_state("telegram:123456:offset", json.dumps({"next": 42, "at": time.time() - 7 * 24 * 3600}))
    state = RelayState(SETTINGS)
    await state.load(store)
    assert state.offset is None


async def test_a_first_start_relays_from_now_on() -> None:
    store = MemoryStore()
    await store.open()
    state = RelayState(SETTINGS)
    await state.load(store)
    assert state.delivered == store.last_id
    assert await store.get_state("telegram:delivered") == str(store.last_id)


def test_a_public_chat_is_found_by_its_username_until_its_id_is_known() -> None:
    state = RelayState(SETTINGS)
    assert state.room_of(-100777, "Team_Chat") == ("@team_chat", "general")
    assert state.current("@team_chat") == "@team_chat"
    state.resolved["@team_chat"] = -100777
    assert state.current("@team_chat") == -100777
    assert state.room_of(-100777, None) == ("@team_chat", "general")
    assert state.room_of(-100888, "elsewhere") is None
