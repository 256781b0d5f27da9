"""``[engine]``: nothing set is the embedded SQLite store as before; a Redis url names the Redis engine."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from chatbus import ConfigError, Settings
from chatbus.core.engine import redis_engine
from chatbus.core.engine.redis import RedisEngine


def test_nothing_set_keeps_the_embedded_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.load()
    assert settings.engine.url is None
    assert settings.db == "./chatbus.db"
    with pytest.raises(ConfigError, match="CHATBUS_ENGINE__URL"):
        redis_engine(settings.engine)


def test_the_engine_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHATBUS_ENGINE__URL", "redis://127.0.0.1:6390/2")
    monkeypatch.setenv("CHATBUS_ENGINE__MAX_LENGTH", "5000")
    settings = Settings.load()
    engine = redis_engine(settings.engine)
    assert isinstance(engine, RedisEngine)
    assert (engine.url, engine.max_length) == ("redis://127.0.0.1:6390/2", 5000)


def test_the_engine_section_of_the_toml_file(tmp_path: Path) -> None:
    config = tmp_path / "chatbus.toml"
    config.write_text('[engine]\nurl = "redis://10.0.0.5:6379/0"\nprefix = "team-a"\n')
    settings = Settings.load(config)
    assert (settings.engine.url, settings.engine.prefix) == ("redis://10.0.0.5:6379/0", "team-a")


def test_an_engine_url_that_is_not_redis_says_what_is_expected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHATBUS_ENGINE__URL", "postgres://db/chat")
    with pytest.raises(ConfigError, match=r"redis://HOST:PORT/DB"):
        Settings.load()


def test_without_the_redis_extra_chatbus_runs_and_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "redis" or n.startswith(("redis.", "chatbus.core.engine.redis"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "redis", None)  # as if it were not installed
    settings = Settings.isolated(engine={"url": "redis://127.0.0.1:6390/0"})
    with pytest.raises(ConfigError, match=r"pip install 'chatbus\[redis\]'"):
        redis_engine(settings.engine)
