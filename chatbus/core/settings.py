"""chatbus configuration, read with pydantic-settings.

Sources, strongest first: keyword arguments (the command line), ``CHATBUS_*``
environment variables (nested with ``__``), the earlier system's variable
names (``COMMUNICATION_TRANSPORT``, ``WEBSOCKET_HOST``, ...), a ``.env`` file,
then ``chatbus.toml`` (or the file given with ``--config``).

Each transport and plugin validates its own section (``websocket``,
``ratelimit``, or the name of a third-party one) with its own settings model
when the hub builds it (:mod:`chatbus.core.sections`), so the core knows no
transport's or plugin's options.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from .errors import ConfigError
from .sections import describe_validation_error

__all__ = ["BOTH", "MetricsSettings", "PluginSelection", "Settings", "expand_transports", "split_names"]

log = logging.getLogger("chatbus.settings")

DEFAULT_CONFIG_FILE = "chatbus.toml"
_config_file: ContextVar[Path | None] = ContextVar("chatbus_config_file", default=None)


def _split_names(value: Any) -> Any:
    """Accept ``a,b``, ``["a", "b"]`` (JSON) or a list."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                raise ValueError("not a valid JSON list") from None
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


#: For the list settings of transports and plugins (environment values are strings).
split_names = _split_names

#: What ``both`` stands for in a list of transports (as the earlier system named them).
BOTH = ("websocket", "telegram")


def expand_transports(names: list[Any]) -> list[Any]:
    """Transport names in order, each once, with ``both`` standing for websocket and telegram."""
    expanded: list[Any] = []
    for name in names:
        for one in BOTH if name == "both" else (name,):
            if one not in expanded:
                expanded.append(one)
    return expanded


NameList = Annotated[list[str], NoDecode]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PluginSelection(_Section):
    """Which plugins load: block some by name, or allow only a list."""

    disable: NameList = Field(default_factory=list)
    only: NameList | None = None
    strict: bool = False

    _split = field_validator("disable", "only", mode="before")(classmethod(lambda cls, v: _split_names(v)))


class MetricsSettings(_Section):
    """Prometheus metrics: ``/metrics`` on the chat port, and a port of their own when ``port`` is set."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=0, le=65535)


class Settings(BaseSettings):
    """Everything chatbus reads from its configuration."""

    model_config = SettingsConfigDict(
        env_prefix="CHATBUS_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="allow",
        populate_by_name=True,
    )

    transports: NameList = Field(default_factory=lambda: ["websocket"], min_length=1)
    db: str = "./chatbus.db"
    max_text_length: int = Field(4000, ge=1, le=1_000_000)
    plugins: PluginSelection = Field(default_factory=PluginSelection)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    websocket: dict[str, Any] = Field(default_factory=dict)
    telegram: dict[str, Any] = Field(default_factory=dict)

    @field_validator("transports", mode="before")
    @classmethod
    def _split_transports(cls, value: Any) -> Any:
        value = _split_names(value)
        return expand_transports(value) if isinstance(value, list) else value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if not isinstance(logging.getLevelName(level), int):
            raise ValueError("expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL")  # noqa: TRY004 - pydantic's contract
        return level

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _config_file.get() or Path(DEFAULT_CONFIG_FILE)
        return (
            init_settings,
            env_settings,
            _SectionEnvSource(settings_cls),
            _LegacyEnvSource(settings_cls),
            dotenv_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )

    @classmethod
    def load(cls, config: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
        """Read the settings; any problem is a ``ConfigError`` with one clear line.

        ``config`` names a TOML file that must exist; without it ``chatbus.toml``
        in the current directory is read when present. ``overrides`` win over
        every other source (they are the command-line flags).
        """
        path: Path | None = None
        if config is not None:
            path = Path(config)
            if not path.is_file():
                raise ConfigError(f"config file {path} not found: give the path of a readable TOML file")
        token = _config_file.set(path)
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc)) from None
        except SettingsError as exc:  # a value that should be JSON and is not
            raise ConfigError(f"invalid setting: {exc}; complex values are JSON") from None
        except ValueError as exc:  # a malformed TOML or .env file
            raise ConfigError(f"cannot read the configuration: {exc}") from None
        finally:
            _config_file.reset(token)

    @classmethod
    def isolated(cls, **values: Any) -> Settings:
        """Settings from ``values`` and defaults only: no environment, ``.env`` or
        TOML file is read. For tests and embedding."""
        try:
            return _IsolatedSettings(**values)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc)) from None

    def section(self, name: str, *, aliases: Sequence[str] = ()) -> dict[str, Any]:
        """The options of one transport or plugin (``[name]`` in TOML, ``CHATBUS_NAME__KEY``).

        ``aliases`` are older names of the section, still read; where both
        give a key, ``name`` wins.
        """
        merged: dict[str, Any] = {}
        for key in (*aliases, name):
            value = getattr(self, key, None) if key in type(self).model_fields else None
            if value is None and self.model_extra:
                value = self.model_extra.get(key)
            if isinstance(value, BaseModel):
                value = value.model_dump()
            if isinstance(value, dict):
                if key != name and value:
                    log.warning("settings section %r is read as %r; rename it", key, name)
                merged.update(value)
        return merged


class _IsolatedSettings(Settings):
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


class _SectionEnvSource(PydanticBaseSettingsSource):
    """``CHATBUS_<NAME>__<KEY>`` for sections chatbus itself does not declare:
    the settings of third-party transports and plugins."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, str] = {}
        dotenv = Path(".env")
        if dotenv.is_file():
            from dotenv import dotenv_values

            values.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
        values.update(os.environ)
        out: dict[str, Any] = {}
        declared = set(self.settings_cls.model_fields)
        for key, value in values.items():
            if not key.upper().startswith("CHATBUS_") or "__" not in key:
                continue
            path = [part.lower() for part in key[len("CHATBUS_") :].split("__")]
            if path[0] in declared or not all(path):
                continue
            target = out
            for part in path[:-1]:
                nested = target.setdefault(part, {})
                if not isinstance(nested, dict):
                    break
                target = nested
            else:
                target[path[-1]] = value
        return out


class _LegacyEnvSource(PydanticBaseSettingsSource):
    """The environment names of the earlier Telegram/WebSocket system."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        env = _legacy_values()
        out: dict[str, Any] = {}
        if transport := env.get("COMMUNICATION_TRANSPORT"):
            out["transports"] = transport
        websocket: dict[str, Any] = {}
        if host := env.get("WEBSOCKET_HOST"):
            websocket["host"] = host
        if port := env.get("WEBSOCKET_PORT"):
            websocket["port"] = port
        telegram: dict[str, Any] = {}
        if token := env.get("TELEGRAM_BOT_TOKEN"):
            telegram["token"] = token
        if chat := env.get("TELEGRAM_CHAT_ID"):
            telegram["chat_ids"] = chat
        if websocket:
            out["websocket"] = websocket
        if telegram:
            out["telegram"] = telegram
        return out


_LEGACY_NAMES = (
    "COMMUNICATION_TRANSPORT",
    "WEBSOCKET_HOST",
    "WEBSOCKET_PORT",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_CHAT_ID",
)


def _legacy_values() -> dict[str, str]:
    """Legacy names from the environment, else from ``.env`` (as the earlier system read them)."""
    values: dict[str, str] = {}
    dotenv = Path(".env")
    if dotenv.is_file():
        from dotenv import dotenv_values

        for key, value in dotenv_values(dotenv).items():
            if key in _LEGACY_NAMES and value:
                values[key] = value
    for key in _LEGACY_NAMES:
        if os.environ.get(key):
            values[key] = os.environ[key]
    return values
