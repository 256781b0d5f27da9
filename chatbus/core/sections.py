"""Typed settings sections: each transport and plugin validates its own.

A transport or plugin named ``x`` reads ``[x]`` of ``chatbus.toml`` and the
``CHATBUS_X__KEY`` variables, validated by its own model: a subclass of
:class:`TransportSettings` or :class:`PluginSettings`. Unknown keys are an
error that names the nearest valid one, so a misspelled key never passes
silently.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError

if TYPE_CHECKING:
    from .settings import Settings

__all__ = [
    "VARIABLES",
    "PluginSettings",
    "SectionSettings",
    "TransportSettings",
    "describe_validation_error",
    "validate_section",
]

M = TypeVar("M", bound=BaseModel)


class SectionSettings(BaseModel):
    """Base of a section's model: unknown keys are an error, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    #: Older names of the section, still read (the newer name wins key by key).
    section_aliases: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def read(cls, settings: Settings, section: str) -> Self:
        """This model validated from ``section`` of ``settings`` (and its older names).

        A bad key is reported under the section name it was written with.
        """
        values = settings.section(section, aliases=cls.section_aliases)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            written = section
            key = exc.errors()[0].get("loc", ("",))[0]
            if key not in settings.section(section):
                written = next((alias for alias in cls.section_aliases if key in settings.section(alias)), section)
            raise ConfigError(describe_validation_error(exc, written, cls)) from None


class TransportSettings(SectionSettings):
    """Base for a transport's settings model (``settings_model`` on the transport)."""


class PluginSettings(SectionSettings):
    """Base for a plugin's settings model (``settings_model`` on the plugin)."""


def validate_section(model: type[M], values: Mapping[str, Any], section: str) -> M:
    """``values`` validated by ``model``; a ``ConfigError`` naming the key otherwise."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, section, model)) from None


#: While settings are validated: dotted keys whose value came from an earlier
#: system's variable, and that variable's name (see ``Settings.origin``).
VARIABLES: ContextVar[Mapping[str, str] | None] = ContextVar("chatbus_setting_variables", default=None)


def describe_validation_error(
    error: ValidationError,
    section: str = "",
    model: type[BaseModel] | None = None,
    *,
    variables: Mapping[str, str] | None = None,
) -> str:
    """One line naming the first bad key, the variable it came from and what is allowed there."""
    first = error.errors()[0]
    key = ".".join(str(part) for part in first.get("loc", ()))
    key = f"{section}.{key}" if section and key else (section or key)
    value = first.get("input")
    shown = "" if isinstance(value, Mapping) else f", got {value!r}"
    variables = variables if variables is not None else (VARIABLES.get() or {})
    env = variables.get(key) or ("CHATBUS_" + key.upper().replace(".", "__") if key else "")
    where = f"{key} ({env})" if env else "configuration"
    message = f"invalid setting {where}: {first.get('msg', 'invalid value')}{shown}"
    if first.get("type") == "extra_forbidden" and model is not None:
        return message + _nearest(str(first.get("loc", ("",))[-1]), model)
    return message


def _nearest(key: str, model: type[BaseModel]) -> str:
    names = list(model.model_fields)
    close = difflib.get_close_matches(key, names, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; the keys are {', '.join(names)}" if names else ""
