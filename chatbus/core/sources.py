"""Where settings come from, beyond what pydantic-settings reads by itself.

* :class:`SectionEnvSource`: ``CHATBUS_<NAME>__<KEY>`` for the sections of
  transports and plugins, which the core does not declare;
* :class:`LegacyEnvSource`: the environment names of the earlier system
  (``WEBSOCKET_PORT``, ...), each mapped to the chatbus key it stands for;
* :func:`read_toml`: the TOML file, read once so a syntax error names the
  file, and so the keys it holds can be checked against what exists.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic_settings import PydanticBaseSettingsSource

from .errors import ConfigError

__all__ = [
    "LEGACY_KEYS",
    "LegacyEnvSource",
    "SectionEnvSource",
    "dotenv_values",
    "legacy_values",
    "read_toml",
]

#: The earlier system's variables and the chatbus key each stands for.
LEGACY_KEYS: Mapping[str, tuple[str, ...]] = {
    "COMMUNICATION_TRANSPORT": ("transports",),
    "WEBSOCKET_HOST": ("websocket", "host"),
    "WEBSOCKET_PORT": ("websocket", "port"),
    "TELEGRAM_BOT_TOKEN": ("telegram", "token"),
    "TELEGRAM_CHAT_ID": ("telegram", "chat_ids"),
}


def dotenv_values() -> dict[str, str]:
    """The ``.env`` file of the current directory, when there is one."""
    dotenv = Path(".env")
    if not dotenv.is_file():
        return {}
    from dotenv import dotenv_values as read

    return {key: value for key, value in read(dotenv).items() if value is not None}


class SectionEnvSource(PydanticBaseSettingsSource):
    """``CHATBUS_<NAME>__<KEY>`` for sections chatbus itself does not declare:
    the settings of transports and plugins."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values = dotenv_values()
        values.update(os.environ)
        out: dict[str, Any] = {}
        declared = set(self.settings_cls.model_fields)
        for key, value in values.items():
            if not key.upper().startswith("CHATBUS_") or "__" not in key:
                continue
            path = [part.lower() for part in key[len("CHATBUS_") :].split("__")]
            if path[0] in declared or not all(path):
                continue
            _put(out, path, value)
        return out


def _put(target: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        nested = target.setdefault(part, {})
        if not isinstance(nested, dict):
            return
        target = nested
    target[path[-1]] = value


class LegacyEnvSource(PydanticBaseSettingsSource):
    """The environment names of the earlier Telegram/WebSocket system."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in legacy_values().items():
            _put(out, list(LEGACY_KEYS[name]), value)
        return out


def legacy_values() -> dict[str, str]:
    """Legacy names from the environment, else from ``.env`` (as the earlier system read them)."""
    values = {key: value for key, value in dotenv_values().items() if key in LEGACY_KEYS and value}
    for key in LEGACY_KEYS:
        if os.environ.get(key):
            values[key] = os.environ[key]
    return values


def read_toml(path: Path) -> dict[str, Any]:
    """The settings in a TOML file; a syntax error names the file, line and column."""
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot read {path}: {exc}; fix the TOML there") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
