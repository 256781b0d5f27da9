"""Configuration from the environment, legacy names, .env and chatbus.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbus import ConfigError, Hub, MemoryStore, Settings
from chatbus.plugins.auth import AuthSettings
from chatbus.plugins.ratelimit import RateLimitSettings


def limits(settings: Settings) -> RateLimitSettings:
    return RateLimitSettings.read(settings, "ratelimit")


def auth(settings: Settings) -> AuthSettings:
    return AuthSettings.read(settings, "auth")


def test_defaults_need_nothing_configured() -> None:
    settings = Settings.load()
    assert settings.transports == ["websocket"]
    assert settings.db == "./chatbus.db"
    assert settings.max_text_length == 4096
    assert (limits(settings).burst, limits(settings).per_second, limits(settings).per_hour) == (5, 1.0, 600)
    assert auth(settings).mode == "open"
    assert (settings.log_level, settings.log_format) == ("INFO", "text")
    assert settings.plugins.disable == [] and settings.plugins.only is None


def test_environment_with_prefix_and_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATBUS_TRANSPORTS", "websocket,telegram")
    monkeypatch.setenv("CHATBUS_DB", ":memory:")
    monkeypatch.setenv("CHATBUS_MAX_TEXT_LENGTH", "100")
    monkeypatch.setenv("CHATBUS_RATE_LIMIT__BURST", "9")
    monkeypatch.setenv("CHATBUS_RATE_LIMIT__PER_SECOND", "0.5")
    monkeypatch.setenv("CHATBUS_RATE_LIMIT__PER_HOUR", "50")
    monkeypatch.setenv("CHATBUS_AUTH__MODE", "token")
    monkeypatch.setenv("CHATBUS_AUTH__TOKENS", '{"s3cret": {"userId": "alice", "role": "manager"}}')
    monkeypatch.setenv("CHATBUS_LOG_LEVEL", "debug")
    monkeypatch.setenv("CHATBUS_LOG_FORMAT", "json")
    monkeypatch.setenv("CHATBUS_PLUGINS__DISABLE", "ratelimit, mentions")
    monkeypatch.setenv("CHATBUS_PLUGINS__ONLY", '["auth"]')
    monkeypatch.setenv("CHATBUS_WEBSOCKET__HOST", "0.0.0.0")
    monkeypatch.setenv("CHATBUS_WEBSOCKET__PORT", "9001")
    monkeypatch.setenv("CHATBUS_TELEGRAM__TOKEN", "123:abc")
    monkeypatch.setenv("CHATBUS_TELEGRAM__BASE_URL", "http://127.0.0.1:9/bot")
    settings = Settings.load()
    assert settings.transports == ["websocket", "telegram"]
    assert settings.db == ":memory:"
    assert settings.max_text_length == 100
    assert (limits(settings).burst, limits(settings).per_second, limits(settings).per_hour) == (9, 0.5, 50)
    assert auth(settings).mode == "token"
    assert auth(settings).tokens["s3cret"].user_id == "alice"
    assert auth(settings).tokens["s3cret"].role == "manager"
    assert (settings.log_level, settings.log_format) == ("DEBUG", "json")
    assert settings.plugins.disable == ["ratelimit", "mentions"]
    assert settings.plugins.only == ["auth"]
    assert settings.section("websocket") == {"host": "0.0.0.0", "port": "9001"}
    assert settings.section("telegram") == {"token": "123:abc", "base_url": "http://127.0.0.1:9/bot"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("websocket", ["websocket"]), ("telegram", ["telegram"]), ("both", ["websocket", "telegram"])],
)
def test_the_earlier_systems_names_still_work(monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]) -> None:
    monkeypatch.setenv("COMMUNICATION_TRANSPORT", value)
    monkeypatch.setenv("WEBSOCKET_HOST", "0.0.0.0")
    monkeypatch.setenv("WEBSOCKET_PORT", "8090")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("TELEGRAM_CHAT_ID", "-100123")
    settings = Settings.load()
    assert settings.transports == expected
    assert settings.section("websocket") == {"host": "0.0.0.0", "port": "8090"}
    assert settings.section("telegram") == {"token": "123:abc", "chat_ids": "-100123"}


def test_chatbus_names_win_over_the_earlier_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMUNICATION_TRANSPORT", "both")
    monkeypatch.setenv("CHATBUS_TRANSPORTS", '["telegram"]')
    monkeypatch.setenv("WEBSOCKET_PORT", "8090")
    monkeypatch.setenv("CHATBUS_WEBSOCKET__PORT", "9000")
    settings = Settings.load()
    assert settings.transports == ["telegram"]
    assert settings.section("websocket")["port"] == "9000"


def test_toml_file_and_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "chatbus.toml").write_text(
        'db = "from-toml.db"\nmax_text_length = 50\n[websocket]\nport = 7000\n[rate_limit]\nburst = 2\n'
        '[console]\nprompt = "> "\n'
    )
    (tmp_path / ".env").write_text("CHATBUS_MAX_TEXT_LENGTH=60\nTELEGRAM_BOT_TOKEN=from-dotenv\n")
    monkeypatch.setenv("CHATBUS_RATE_LIMIT__PER_HOUR", "7")
    settings = Settings.load()
    assert settings.db == "from-toml.db"
    assert settings.max_text_length == 60  # .env wins over the TOML file
    assert limits(settings).burst == 2 and limits(settings).per_hour == 7
    assert settings.section("websocket") == {"port": 7000}
    assert settings.section("console") == {"prompt": "> "}  # a third-party transport's section
    assert settings.section("telegram") == {"token": "from-dotenv"}


def test_config_flag_names_another_file_and_overrides_win(tmp_path: Path) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text('db = "elsewhere.db"\ntransports = ["telegram"]\n')
    settings = Settings.load(config, transports=["websocket"])
    assert settings.db == "elsewhere.db"
    assert settings.transports == ["websocket"]


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as failure:
        Settings.load(tmp_path / "nope.toml")
    assert "nope.toml not found" in str(failure.value)


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("CHATBUS_MAX_TEXT_LENGTH", "lots", "max_text_length (CHATBUS_MAX_TEXT_LENGTH)"),
        ("CHATBUS_AUTH__MODE", "magic", "auth.mode (CHATBUS_AUTH__MODE): Input should be 'open' or 'token'"),
        ("CHATBUS_RATE_LIMIT__BURST", "0", "rate_limit.burst"),
        ("CHATBUS_LOG_LEVEL", "LOUD", "log_level"),
        ("CHATBUS_LOG_FORMAT", "xml", "log_format"),
        ("CHATBUS_AUTH__TOKENS", "{not json", "JSON like"),
    ],
)
def test_an_invalid_value_names_the_key_and_what_is_allowed(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, words: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as failure:
        # The core's keys are checked as the settings are read, each plugin's
        # section as the hub builds the plugin: chatbus serve does both at once.
        Hub(Settings.load(), store=MemoryStore(), transports=[], load_entrypoints=False)
    assert words in str(failure.value)
    assert "\n" not in str(failure.value)


def test_the_rate_limiter_reads_its_section_by_its_plugin_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATBUS_RATE_LIMIT__BURST", "3")
    monkeypatch.setenv("CHATBUS_RATELIMIT__BURST", "4")
    monkeypatch.setenv("CHATBUS_RATE_LIMIT__PER_HOUR", "70")
    settings = Settings.load()
    assert (limits(settings).burst, limits(settings).per_hour) == (4, 70)


def test_a_misspelled_key_in_a_plugin_section_is_refused_with_the_nearest_name(tmp_path: Path) -> None:
    (tmp_path / "chatbus.toml").write_text("[ratelimit]\nbrust = 10\n")
    with pytest.raises(ConfigError) as failure:
        Hub(Settings.load(tmp_path / "chatbus.toml"), store=MemoryStore(), transports=[], load_entrypoints=False)
    # It was written in the file, so the error sends the reader there, not to a variable.
    assert f"ratelimit.brust (in {tmp_path / 'chatbus.toml'})" in str(failure.value)
    assert "did you mean 'burst'?" in str(failure.value)


def test_a_bad_value_is_reported_where_it_was_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "chatbus.toml"
    config.write_text('max_text_length = "long"\n[websocket]\nport = "eighty"\n')
    with pytest.raises(ConfigError) as failure:
        Settings.load(config)
    assert str(failure.value).startswith(f"invalid setting max_text_length (in {config}): ")
    config.write_text('[ratelimit]\nburst = "many"\n')

    def build() -> None:
        Hub(Settings.load(config), store=MemoryStore(), transports=[], load_entrypoints=False)

    with pytest.raises(ConfigError) as failure:
        build()
    assert str(failure.value).startswith(f"invalid setting ratelimit.burst (in {config}): ")
    # A variable wins over the file, and is named when its value is the bad one.
    monkeypatch.setenv("CHATBUS_RATELIMIT__BURST", "lots")
    with pytest.raises(ConfigError) as failure:
        build()
    assert str(failure.value).startswith("invalid setting ratelimit.burst (CHATBUS_RATELIMIT__BURST): ")


def test_a_malformed_toml_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "chatbus.toml").write_text("this is = = not toml")
    with pytest.raises(ConfigError) as failure:
        Settings.load()
    message = str(failure.value)
    assert message.startswith("cannot read chatbus.toml: ")
    assert "(at line 1, column 6)" in message and "\n" not in message


def test_isolated_settings_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATBUS_DB", "from-env.db")
    assert Settings.isolated().db == "./chatbus.db"
    assert Settings.isolated(db=":memory:").db == ":memory:"


def test_third_party_sections_come_from_the_environment_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATBUS_CONSOLE__USER", "ops-desk")
    monkeypatch.setenv("CHATBUS_CONSOLE__COLOURS__PROMPT", "green")
    settings = Settings.load()
    assert settings.section("console") == {"user": "ops-desk", "colours": {"prompt": "green"}}
    assert settings.section("nothing-here") == {}


def test_an_unknown_top_level_key_in_the_file_is_refused_with_the_nearest_name(tmp_path: Path) -> None:
    config = tmp_path / "chatbus.toml"
    config.write_text('transprots = ["websocket"]\n')
    with pytest.raises(ConfigError) as failure:
        Hub(Settings.load(config), store=MemoryStore(), transports=[], load_entrypoints=False)
    assert str(failure.value) == f"{config}: unknown setting 'transprots'; did you mean 'transports'?"


def test_sections_of_installed_transports_and_plugins_are_not_unknown(tmp_path: Path) -> None:
    config = tmp_path / "chatbus.toml"
    config.write_text("[websocket]\nport = 9000\n[telegram]\ntoken = 'x'\n[ratelimit]\nburst = 3\n[rate_limit]\n")
    hub = Hub(Settings.load(config), store=MemoryStore(), transports=[], load_entrypoints=False)
    assert hub.plugin_settings("ratelimit") is not None


def test_a_value_from_an_earlier_systems_variable_is_reported_under_that_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chatbus.core.loader import Loader

    monkeypatch.setenv("WEBSOCKET_PORT", "abc")
    hub = Hub(Settings.load(), store=MemoryStore(), transports=[], load_entrypoints=False)
    with pytest.raises(ConfigError) as failure:
        Loader(hub, hub.pm).load_transports(["websocket"])
    assert "invalid setting websocket.port (WEBSOCKET_PORT)" in str(failure.value)
    monkeypatch.setenv("CHATBUS_WEBSOCKET__PORT", "abd")  # the chatbus name wins, and is named
    hub = Hub(Settings.load(), store=MemoryStore(), transports=[], load_entrypoints=False)
    with pytest.raises(ConfigError) as failure:
        Loader(hub, hub.pm).load_transports(["websocket"])
    assert "(CHATBUS_WEBSOCKET__PORT)" in str(failure.value)
