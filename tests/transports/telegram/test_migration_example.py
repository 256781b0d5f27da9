"""The files of examples/migration configure what its walkthrough says."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chatbus import Hub, MemoryStore, Settings
from chatbus.transports.telegram import TelegramTransport

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "migration"


@pytest.fixture
def team_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder set up as step 2 of the walkthrough says."""
    shutil.copy(EXAMPLE / "chatbus.toml", tmp_path / "chatbus.toml")
    shutil.copy(EXAMPLE / ".env.example", tmp_path / ".env")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_sample_configuration_runs_both_transports(team_folder: Path) -> None:
    settings = Settings.load()
    hub = Hub(settings, store=MemoryStore())
    assert list(hub.transports) == ["websocket", "telegram"]
    telegram = hub.transports["telegram"]
    assert isinstance(telegram, TelegramTransport)
    assert telegram.settings.token.get_secret_value() == "123456789:replace-with-your-bot-token"
    assert telegram.settings.chat_ids == {-1001234567890: "general"}
    assert telegram.settings.catch_up == 200
    assert not telegram.settings.webhook


def test_the_earlier_names_in_env_override_the_file(team_folder: Path) -> None:
    env = (team_folder / ".env").read_text()
    env = env.replace("# TELEGRAM_CHAT_ID=-1001234567890", "TELEGRAM_CHAT_ID=-1005555,-1006666")
    env = env.replace("# COMMUNICATION_TRANSPORT=both", "COMMUNICATION_TRANSPORT=telegram")
    (team_folder / ".env").write_text(env)
    hub = Hub(Settings.load(), store=MemoryStore())
    assert list(hub.transports) == ["telegram"]
    telegram = hub.transports["telegram"]
    assert isinstance(telegram, TelegramTransport)
    assert telegram.settings.chat_ids == {-1005555: "general", -1006666: "general"}


def test_the_walkthrough_names_files_that_exist() -> None:
    text = (EXAMPLE / "README.md").read_text()
    for name in ("chatbus.toml", ".env.example"):
        assert f"]({name})" in text
        assert (EXAMPLE / name).is_file()
