"""The ``telegram`` settings section: every spelling of chat ids, clear errors, legacy names."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbus import ConfigError, Hub, Settings
from chatbus.core.store import MemoryStore
from chatbus.transports.telegram import TelegramTransport, parse_chat_ids


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-1001234", {-1001234: "general"}),
        (-1001234, {-1001234: "general"}),
        ("-100, -200", {-100: "general", -200: "general"}),
        ("-100:dev, -200", {-100: "dev", -200: "general"}),
        ('["-100", -200]', {-100: "general", -200: "general"}),
        ('{"-100": "dev", "@team_chat": "ops"}', {-100: "dev", "@team_chat": "ops"}),
        ({"-100": "dev", "-200": None}, {-100: "dev", -200: "general"}),
        ([-100, "-200:ops"], {-100: "general", -200: "ops"}),
    ],
)
def test_chat_ids_accept_every_documented_spelling(value: object, expected: dict[object, str]) -> None:
    assert parse_chat_ids(value) == expected


def test_chats_without_a_room_use_the_configured_default_room() -> None:
    transport = TelegramTransport({"token": "1:a", "chat_ids": "-100, -200:dev", "room": "team"})
    assert transport.settings.chat_ids == {-100: "team", -200: "dev"}


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"chat_ids": "-100"}, "CHATBUS_TELEGRAM__TOKEN"),
        ({"token": "1:a"}, "CHATBUS_TELEGRAM__CHAT_IDS"),
        ({"token": "1:a", "chat_ids": "abc"}, "not a chat id"),
        ({"token": "1:a", "chat_ids": "-100:bad room"}, "not a room name"),
        ({"token": "1:a", "chat_ids": "-100", "format": "<b>{sender}: {text}"}, "never closed"),
        ({"token": "1:a", "chat_ids": "-100", "format": "{sender}"}, "{text}"),
        ({"token": "1:a", "chat_ids": "-100", "format": "{who}: {text}"}, "{who}"),
        ({"token": "1:a", "chat_ids": "-100", "base_url": "api.telegram.org"}, "http"),
        ({"token": "1:a", "chat_ids": "-100", "webhook_secret": "no spaces!"}, "secret"),
        ({"token": "1:a", "chat_ids": "-100", "colour": "blue"}, "colour"),
    ],
)
def test_bad_settings_are_one_clear_config_error(options: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TelegramTransport(options)
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_token_never_shows_in_reprs() -> None:
    transport = TelegramTransport({"token": "123:very-secret", "chat_ids": "-100"})
    assert "very-secret" not in repr(transport.settings)
    assert "very-secret" not in str(transport.status())


def test_legacy_environment_names_configure_the_transport_by_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMUNICATION_TRANSPORT", "telegram")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "42:legacy")
    monkeypatch.setenv("TELEGRAM_CHAT_ID", "-100777")
    hub = Hub(Settings.load(), store=MemoryStore())
    transport = hub.transports["telegram"]
    assert isinstance(transport, TelegramTransport)
    assert transport.settings.token.get_secret_value() == "42:legacy"
    assert transport.settings.chat_ids == {-100777: "general"}


def test_chatbus_variables_and_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "chatbus.toml").write_text(
        'transports = ["telegram"]\n[telegram]\ntoken = "7:toml"\nchat_ids = {"-100" = "dev"}\npoll_timeout = 10\n'
    )
    monkeypatch.setenv("CHATBUS_TELEGRAM__GROUP_RATE", "0")
    hub = Hub(Settings.load(), store=MemoryStore())
    transport = hub.transports["telegram"]
    assert isinstance(transport, TelegramTransport)
    assert transport.settings.chat_ids == {-100: "dev"}
    assert transport.settings.poll_timeout == 10
    assert transport.settings.group_rate == 0
