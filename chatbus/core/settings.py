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
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from .errors import ConfigError
from .sections import describe_validation_error
from .sources import LEGACY_KEYS, LegacyEnvSource, SectionEnvSource, dotenv_values, legacy_values, read_toml

__all__ = [
    "BOTH",
    "EngineSettings",
    "MetricsSettings",
    "PluginSelection",
    "Settings",
    "expand_transports",
    "split_names",
]

log = logging.getLogger("chatbus.settings")

DEFAULT_CONFIG_FILE = "chatbus.toml"
_toml_data: ContextVar[dict[str, Any] | None] = ContextVar("chatbus_toml_data", default=None)


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
    #: Whether the chat port answers ``/metrics`` too; ``false`` keeps them off a public chat port.
    on_chat_port: bool = True


class EngineSettings(_Section):
    """What the nodes of one chat share: absent ``url``, the embedded SQLite store (one node)."""

    #: ``redis://HOST:PORT/DB`` (``rediss://`` with TLS, ``unix://PATH``): several nodes, one chat.
    url: str | None = None
    #: The start of every Redis key and channel, so chats can share one Redis.
    prefix: str = Field("chatbus", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    #: How many messages the Redis log keeps; a client further behind is told to reload (``missedReset``).
    max_length: int = Field(100_000, ge=1000)
    #: Seconds the Redis log keeps a message (0: as long as ``max_length`` allows).
    max_age: float = Field(0, ge=0)
    #: This node's name in presence, leases and logs (default: host name and process id).
    node: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    #: Seconds a dead node's people stay online and a dead node keeps a duty (the Telegram poller,
    #: the agents) before another node takes it over.
    lease_ttl: float = Field(10.0, ge=1.0, le=300.0)

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected redis://HOST:PORT/DB (or rediss://, unix://PATH)")
        return value or None


@dataclass(frozen=True)
class Origin:
    """Where settings came from, for error messages that point there."""

    toml_file: Path | None = None
    #: The top-level keys of the TOML file.
    toml_keys: frozenset[str] = frozenset()
    #: Dotted keys whose value came from an earlier system's variable (and its name) or the TOML file.
    variables: Mapping[str, str] = field(default_factory=dict)


class Settings(BaseSettings):
    """Everything chatbus reads from its configuration."""

    _origin: Origin = PrivateAttr(default_factory=Origin)

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
    #: Telegram splits longer texts itself, so the hub takes whatever Telegram accepts (4,096).
    max_text_length: int = Field(4096, ge=1, le=1_000_000)
    plugins: PluginSelection = Field(default_factory=PluginSelection)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    #: The engine several nodes share (issue 14); nothing set: the embedded SQLite store.
    engine: EngineSettings = Field(default_factory=EngineSettings)
    #: Seconds clients are told to wait before reconnecting when ``chatbus serve``
    #: stops on SIGTERM or SIGINT (the base of their backoff).
    restart_retry_after: float = Field(2.0, gt=0, le=3600)
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
        return (
            init_settings,
            env_settings,
            SectionEnvSource(settings_cls),
            LegacyEnvSource(settings_cls),
            dotenv_settings,
            InitSettingsSource(settings_cls, init_kwargs=_toml_data.get() or {}),
        )

    @classmethod
    def load(cls, config: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
        """Read the settings; any problem is a ``ConfigError`` with one clear line.

        ``config`` names a TOML file that must exist; without it ``chatbus.toml``
        in the current directory is read when present. ``overrides`` win over
        every other source (they are the command-line flags).
        """
        path = Path(config) if config is not None else Path(DEFAULT_CONFIG_FILE)
        if config is not None and not path.is_file():
            raise ConfigError(f"config file {path} not found: give the path of a readable TOML file")
        data = read_toml(path) if path.is_file() else {}
        token = _toml_data.set(data)
        try:
            settings = cls(**overrides)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc, variables=_origins(overrides, path, data))) from None
        except SettingsError as exc:  # a value that should be JSON and is not
            raise ConfigError(f"invalid setting: {exc}; complex values are JSON") from None
        except ValueError as exc:  # a malformed .env file
            raise ConfigError(f"cannot read the configuration: {exc}") from None
        finally:
            _toml_data.reset(token)
        settings._origin = Origin(path if data else None, frozenset(data), _origins(overrides, path, data))
        return settings

    @property
    def origin(self) -> Origin:
        """Where these settings came from: the TOML file and its keys, and the
        values that came from an earlier system's variables."""
        return self._origin

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


def _origins(overrides: Mapping[str, Any], path: Path, data: Mapping[str, Any]) -> dict[str, str]:
    """Where each dotted key's value came from, when not from a ``CHATBUS_`` variable: the TOML
    file (``in chatbus.toml``) or an earlier system's variable, so an error points there."""
    environment = {name.upper() for name in (*dotenv_values(), *os.environ)}
    origins: dict[str, str] = {}
    for key, value in data.items():
        keys = [f"{key}.{inner}" for inner in value] if isinstance(value, Mapping) else [key]
        for dotted in keys:
            variable = "CHATBUS_" + dotted.upper().replace(".", "__")
            if key not in overrides and variable not in environment:
                origins[dotted] = f"in {path}"
    return {**origins, **_legacy_origins(overrides)}


def _legacy_origins(overrides: Mapping[str, Any]) -> dict[str, str]:
    """Dotted keys set by an earlier system's variable that nothing stronger overrides."""
    origins: dict[str, str] = {}
    for name in legacy_values():
        path = LEGACY_KEYS[name]
        chatbus_name = "CHATBUS_" + "__".join(part.upper() for part in path)
        if path[0] in overrides or chatbus_name in os.environ:
            continue
        origins[".".join(path)] = name
    return origins
