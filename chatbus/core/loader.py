"""Finding and registering plugins and transports: the built-in list and entry points.

Entry points are loaded one by one by our own loop (not pluggy's
``load_setuptools_entrypoints``) so a broken plugin is reported with its name,
distribution and error while the others still load. A plugin's settings
section (``[name]``, ``CHATBUS_NAME__KEY``) is validated with the plugin's
own ``settings_model`` before the plugin is built, so a misspelled key stops
start-up with a line that names it.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from importlib.metadata import version as _dist_version
from typing import TYPE_CHECKING, Any

import pluggy

from . import hooks
from .errors import ChatbusError, ConfigError, PluginError
from .sections import VARIABLES, SectionSettings
from .transport import BuiltFromOptions, Transport

if TYPE_CHECKING:
    from .hub import Hub

__all__ = [
    "BUILTIN_PLUGINS",
    "PLUGIN_GROUP",
    "TRANSPORT_GROUP",
    "Loader",
    "PluginInfo",
    "describe_error",
    "distribution_of",
    "import_object",
    "instantiate_plugin",
    "iter_entry_points",
    "own_version",
]

log = logging.getLogger("chatbus.plugins")

PLUGIN_GROUP = "chatbus.plugins"
TRANSPORT_GROUP = "chatbus.transports"

#: Plugins that ship with chatbus, by stable name, registered exactly like
#: third-party ones (and blocked or replaced the same way). A plugin's name is
#: also the name of its settings section.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("mentions", "chatbus.plugins.mentions:MentionParser"),
    ("ratelimit", "chatbus.plugins.ratelimit:RateLimiter"),
    ("auth", "chatbus.plugins.auth:Authenticator"),
    ("agents", "chatbus.plugins.agents:AgentsPlugin"),
    ("commands", "chatbus.plugins.commands:CommandsPlugin"),
    ("files", "chatbus.plugins.files:LocalFiles"),
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


def instantiate_plugin(obj: Any, hub: Any, settings: SectionSettings | None = None) -> Any:
    """Modules and instances register as they are; a class is instantiated.

    Its constructor gets ``hub`` and ``settings`` when it names them (as
    keywords), or the hub alone when it takes one positional argument.
    """
    if not inspect.isclass(obj):
        return obj
    try:
        parameters = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return obj()
    kwargs: dict[str, Any] = {}
    if "settings" in parameters:
        kwargs["settings"] = settings
    if "hub" in parameters:
        kwargs["hub"] = hub
    required = [
        p
        for name, p in parameters.items()
        if name not in kwargs and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    factory: Any = obj
    return factory(hub, **kwargs) if required else factory(**kwargs)


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


def own_version() -> str:
    """chatbus's installed version."""
    try:
        return _dist_version("chatbus")
    except Exception:  # noqa: BLE001 - running from a source tree
        return "0+unknown"


def default_name(plugin: object) -> str:
    """A plugin's own ``name`` when it declares one, else its module or class name."""
    own = getattr(plugin, "name", None)
    if isinstance(own, str) and own:
        return own
    module_name = getattr(plugin, "__name__", None)
    if isinstance(module_name, str):
        return module_name
    cls = type(plugin)
    return f"{cls.__module__}.{cls.__qualname__}"


class Loader:
    """Registers a hub's plugins and builds its transports from the settings."""

    def __init__(self, hub: Hub, pm: pluggy.PluginManager) -> None:
        self.hub = hub
        self.pm = pm
        self.infos: list[PluginInfo] = []
        #: Each plugin's validated settings, by plugin (section) name.
        self.plugin_settings: dict[str, SectionSettings] = {}

    # plugins ---------------------------------------------------------------
    def allowed(self, name: str) -> bool:
        chosen = self.hub.settings.plugins
        if name in chosen.disable:
            return False
        return chosen.only is None or name in chosen.only

    def load_plugins(self, *, builtins: bool, load_entrypoints: bool, extra: Iterable[object]) -> None:
        token = VARIABLES.set(self.hub.settings.origin.variables)
        try:
            self._load_plugins(builtins=builtins, load_entrypoints=load_entrypoints, extra=extra)
        finally:
            VARIABLES.reset(token)

    def _load_plugins(self, *, builtins: bool, load_entrypoints: bool, extra: Iterable[object]) -> None:
        for name in self.hub.settings.plugins.disable:
            self.pm.set_blocked(name)
        if builtins:
            for name, spec in BUILTIN_PLUGINS:
                if self.allowed(name):
                    self._load_one(name, lambda spec=spec: import_object(spec), ("chatbus", own_version()))
        installed: dict[str, tuple[str, str]] = {}
        if load_entrypoints:
            for ep in iter_entry_points(PLUGIN_GROUP):
                if self.allowed(ep.name) and not self.pm.has_plugin(ep.name):
                    installed[ep.name] = distribution_of(ep)
                    self._load_one(ep.name, ep.load, installed[ep.name])
        for plugin in extra:
            self.register(self._build(plugin, default_name(plugin)))
        for name, dist in installed.items():
            self._refuse_unknown_hooks(name, dist)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {exc.plugin!r} implements a hook chatbus does not have: {exc}") from None
        for plugin in self.pm.get_plugins():  # implementations of specs added while loading
            hooks.adapt(self.pm, plugin)

    def _refuse_unknown_hooks(self, name: str, dist: tuple[str, str]) -> None:
        """An installed plugin implementing a hook nobody declared (``on_mesage``)
        is unregistered and reported broken, like one that fails to import."""
        plugin = self.pm.get_plugin(name)
        if plugin is None:
            return
        unknown = sorted(
            caller.name
            for caller in self.pm.get_hookcallers(plugin) or ()
            if caller.spec is None and not all(impl.optionalhook for impl in caller.get_hookimpls())
        )
        if not unknown:
            return
        self.pm.unregister(plugin)
        self.infos[:] = [info for info in self.infos if info.name != name]
        declared = sorted(
            caller for caller in dir(self.pm.hook) if getattr(getattr(self.pm.hook, caller), "spec", None) is not None
        )
        close = difflib.get_close_matches(unknown[0], declared, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        self._broken(name, dist, PluginError(f"implements {', '.join(unknown)}, which is not a chatbus hook{hint}"))

    def _load_one(self, name: str, load: Any, dist: tuple[str, str]) -> None:
        """Import, build and register one plugin; a failure is reported, not fatal."""
        try:
            plugin = self._build(load(), name)
            self.register(plugin, name=name, dist=dist)
        except ChatbusError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported with its name; the others still load
            self._broken(name, dist, exc)

    def _broken(self, name: str, dist: tuple[str, str], exc: BaseException) -> None:
        error = describe_error(exc)
        self.infos.append(PluginInfo(name, "plugin", dist[0], dist[1], error=error))
        log.error("plugin %r from %s could not be loaded: %s", name, dist[0], error)
        if self.hub.settings.plugins.strict:
            raise PluginError(f"plugin {name!r} from {dist[0]} could not be loaded: {error}") from exc

    def _build(self, obj: Any, name: str) -> Any:
        """The plugin object for ``obj``, its settings section validated first."""
        model = getattr(obj, "settings_model", None)
        settings = None
        if isinstance(model, type) and issubclass(model, SectionSettings):
            settings = model.read(self.hub.settings, name)
            self.plugin_settings[name] = settings
        return instantiate_plugin(obj, self.hub, settings)

    def register(self, plugin: object, name: str | None = None, *, dist: tuple[str, str] | None = None) -> str:
        """Register a plugin object (module, class instance) under ``name``
        (by default its own ``name``, module or class name), so logs can say which failed."""
        if name is None:
            name = default_name(plugin)
            base, number = name, 2
            while self.pm.has_plugin(name) or self.pm.is_blocked(name):
                name, number = f"{base}#{number}", number + 1
        try:
            registered = self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name!r} is not valid: {exc}") from None
        except ValueError as exc:
            raise PluginError(f"plugin {name!r} cannot be registered: {exc}") from None
        if registered is None:  # blocked
            return name
        hooks.adapt(self.pm, plugin)
        if dist is None:
            dist = ("chatbus", own_version()) if registered in dict(BUILTIN_PLUGINS) else ("", "")
        implemented = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or ())
        self.infos.append(PluginInfo(registered, "plugin", dist[0], dist[1], hooks=implemented))
        return registered

    # transports ------------------------------------------------------------
    def load_transports(self, names: Sequence[str]) -> None:
        token = VARIABLES.set(self.hub.settings.origin.variables)
        try:
            self._load_transports(names)
        finally:
            VARIABLES.reset(token)

    def _load_transports(self, names: Sequence[str]) -> None:
        available = {ep.name: ep for ep in iter_entry_points(TRANSPORT_GROUP)}
        for name in names:
            ep = available.get(name)
            if ep is None:
                known = ", ".join(sorted(available)) or "none"
                raise ConfigError(f"unknown transport {name!r}: the installed transports are {known}")
            dist, version = distribution_of(ep)
            try:
                cls = ep.load()
            except Exception as exc:
                raise ConfigError(f"transport {name!r} from {dist} could not be loaded: {describe_error(exc)}") from exc
            options = self.hub.settings.section(name)
            transport = cls.from_options(options) if isinstance(cls, BuiltFromOptions) else cls()
            self.hub.add_transport(transport, dist=(dist, version))

    def add_transport_info(self, transport: Transport, dist: tuple[str, str] | None) -> None:
        dist = dist or ("", "")
        self.infos.append(PluginInfo(transport.name, "transport", dist[0], dist[1]))

    # the configuration file --------------------------------------------------
    def check_file_keys(self) -> None:
        """Refuse a key of the TOML file that is neither a setting nor the
        section of an installed transport or plugin, naming the nearest one."""
        settings = self.hub.settings
        origin = settings.origin
        if origin.toml_file is None:
            return
        known = set(type(settings).model_fields) | self._section_names()
        unknown = sorted(origin.toml_keys - known)
        if unknown:
            key = unknown[0]
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"the settings are {', '.join(sorted(known))}"
            raise ConfigError(f"{origin.toml_file}: unknown setting {key!r}; {hint}")

    def _section_names(self) -> set[str]:
        """Every section a transport or plugin here could read, older names included."""
        names = {name for name, _ in BUILTIN_PLUGINS} | set(self.hub.transports)
        names |= {ep.name for group in (PLUGIN_GROUP, TRANSPORT_GROUP) for ep in iter_entry_points(group)}
        names |= {name for name, _ in self.pm.list_name_plugin()}
        for model in self.plugin_settings.values():
            names |= set(model.section_aliases)
        return names
