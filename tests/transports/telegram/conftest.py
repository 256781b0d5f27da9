"""Fixtures for the Telegram transport tests: a fake Bot API and hubs wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from chatbus import Hub, Settings
from chatbus.core.store import MemoryStore, SQLiteStore, Store
from chatbus.testing import FakeClock, MemoryTransport
from chatbus.transports.telegram import TelegramTransport

from .fakebot import FakeBotAPI

CHAT = -1001234567890
OTHER_CHAT = -1009999999999


def telegram_options(api: FakeBotAPI, **overrides: Any) -> dict[str, Any]:
    """Transport settings pointing at the fake server, with short retry waits."""
    options: dict[str, Any] = {
        "token": api.token,
        "chat_ids": str(CHAT),
        "base_url": api.base_url,
        "poll_timeout": 5,
        "retry_initial_delay": 0.05,
        "retry_max_delay": 0.2,
        "request_timeout": 5,
    }
    options.update(overrides)
    return options


def build_hub(
    api: FakeBotAPI,
    *,
    store: Store | None = None,
    memory: MemoryTransport | None = None,
    settings: Settings | None = None,
    plugins: tuple[object, ...] = (),
    **overrides: Any,
) -> tuple[Hub, MemoryTransport, TelegramTransport]:
    """A hub with a MemoryTransport (the "web side") and a TelegramTransport."""
    memory = memory or MemoryTransport()
    telegram = TelegramTransport(telegram_options(api, **overrides))
    hub = Hub(
        settings or Settings.isolated(db=":memory:", max_text_length=20_000),
        store=store or MemoryStore(),
        transports=[memory, telegram],
        plugins=plugins,
        load_entrypoints=False,
        clock=FakeClock(),
    )
    return hub, memory, telegram


@pytest_asyncio.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    server = FakeBotAPI()
    server.add_chat(CHAT, "Team", username="team_chat")
    server.add_chat(OTHER_CHAT, "Elsewhere")
    async with server:
        yield server


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "chatbus.db"


def sqlite(path: Path) -> SQLiteStore:
    return SQLiteStore(path)
