"""Finding plugins and transports: the built-in list and entry points.

Entry points are loaded one by one by our own loop (not pluggy's
``load_setuptools_entrypoints``) so a broken plugin is reported with its name,
distribution and error while the others still load.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

__all__ = [
    "BUILTIN_PLUGINS",
    "PLUGIN_GROUP",
    "TRANSPORT_GROUP",
    "PluginInfo",
    "describe_error",
    "import_object",
    "instantiate_plugin",
    "iter_entry_points",
]

log = logging.getLogger("chatbus.plugins")

PLUGIN_GROUP = "chatbus.plugins"
TRANSPORT_GROUP = "chatbus.transports"

#: Plugins that ship with chatbus, by stable name, registered exactly like
#: third-party ones (and blocked or replaced the same way).
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("mentions", "chatbus.plugins.mentions:MentionParser"),
    ("ratelimit", "chatbus.plugins.ratelimit:RateLimiter"),
    ("auth", "chatbus.plugins.auth:Authenticator"),
    ("agents", "chatbus.plugins.agents:AgentsPlugin"),
    ("commands", "chatbus.plugins.commands:CommandsPlugin"),
)


@dataclass
class PluginInfo:
    """One plugin or transport as ``chatbus plugins`` shows it."""

    name: str
    kind: str  # "plugin" or "transport"
    distribution: str
    version: str
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    status: dict[str, Any] = field(default_factory=dict)

    @property
    def broken(self) -> bool:
        return self.error is not None


def describe_error(exc: BaseException) -> str:
    """A one-line description of why a plugin could not load, for operators."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def import_object(spec: str) -> Any:
    """Import ``package.module`` or ``package.module:attribute``."""
    module_name, _, attribute = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attribute.split(".")):
        obj = getattr(obj, part)
    return obj


def instantiate_plugin(obj: Any, hub: Any) -> Any:
    """Modules and instances register as they are; a class is instantiated,
    with the hub when its constructor takes an argument."""
    if not inspect.isclass(obj):
        return obj
    try:
        parameters = [
            p
            for p in inspect.signature(obj).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        parameters = []
    factory: Any = obj
    return factory(hub) if parameters else factory()


def iter_entry_points(group: str) -> Iterator[EntryPoint]:
    """Entry points of a group, each name once (the first one found wins)."""
    seen: set[str] = set()
    for ep in entry_points(group=group):
        if ep.name in seen:
            log.warning("%s %r is declared twice; using %s", group, ep.name, ep.value)
            continue
        seen.add(ep.name)
        yield ep


def distribution_of(ep: EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return "unknown", ""
    return dist.metadata["Name"] or dist.name, dist.version
