"""The typed facade over the plugin manager: the one place that calls hooks.

Every call goes through pluggy's own hook caller (``pm.hook.<name>(...)``),
so everything pluggy offers keeps working: ``tryfirst``/``trylast`` order,
wrappers (``wrapper=True`` and old-style ``hookwrapper=True``), and
``pm.add_hookcall_monitoring`` / ``pm.enable_tracing``.

pluggy itself is synchronous; chatbus adds two things on top, installed on
each implementation when its plugin is registered (:func:`adapt`):

* An ``async def`` implementation returns a coroutine, which the hub awaits.
  For a first-result hook that would make the first async implementation win
  whatever it answers, so chatbus awaits it and, when the answer is ``None``,
  calls the hook again on the implementations after it (through pluggy as
  well). A wrapper therefore sees an async implementation's answer as an
  awaitable, and an abstaining async implementation makes the call continue
  as a second pluggy call.
* In "all" hooks (``on_message``, ``on_connect``, ...) one plugin's failure
  is logged with the plugin's name and does not stop the others.
  ``on_startup`` is the exception: its implementations run one after the
  other, each awaited before the next starts, and a failure aborts start-up.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pluggy

from .message import Attachment, Credentials, Identity, Incoming, Message, Parsed, RateDecision

if TYPE_CHECKING:
    from pathlib import Path

    from .files_stored import StoredFile
    from .hub import Hub

__all__ = ["Hooks", "adapt"]

log = logging.getLogger("chatbus.hub")

#: Called at registration by pluggy itself (historic), before adapting.
_HISTORIC = frozenset({"add_hookspecs"})
_ADAPTED = "__chatbus_adapted__"


class _Pending:
    """An async implementation's answer to a first-result hook, not yet awaited."""

    __slots__ = ("awaitable", "plugin")

    def __init__(self, awaitable: Awaitable[Any], plugin: object) -> None:
        self.awaitable = awaitable
        self.plugin = plugin

    def __await__(self) -> Any:
        return self.awaitable.__await__()


def adapt(pm: pluggy.PluginManager, plugin: object) -> None:
    """Fit a registered plugin's implementations to chatbus's calling rules.

    Called once a plugin is registered and again after new hook specs were
    added (an implementation of a hook whose spec came later is adapted then).
    """
    for caller in pm.get_hookcallers(plugin) or ():
        spec = caller.spec
        if spec is None:
            continue  # adapted once a plugin adds the spec
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin or impl.wrapper or impl.hookwrapper:
                continue
            if getattr(impl.function, _ADAPTED, False):
                continue
            if spec.opts.get("firstresult"):
                adapted = _deferring(impl.function, plugin)
            elif caller.name == "on_startup":
                adapted = _later(impl.function)
            elif caller.name in _HISTORIC:
                continue
            else:
                adapted = _guarded(impl.function, impl.plugin_name, caller.name)
            setattr(adapted, _ADAPTED, True)
            # pluggy read the argument names from the original function when it
            # made the HookImpl; the adapted one takes the same arguments.
            impl.function = adapted  # type: ignore[misc]


def _deferring(function: Callable[..., Any], plugin: object) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        return _Pending(result, plugin) if inspect.isawaitable(result) else result

    return call


class _Later:
    """A call made when awaited: start-up steps run in order, and none runs
    after one that failed."""

    __slots__ = ("args", "function", "kwargs")

    def __init__(self, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.function = function
        self.args = args
        self.kwargs = kwargs

    def __await__(self) -> Any:
        result = self.function(*self.args, **self.kwargs)
        if inspect.isawaitable(result):
            result = yield from result.__await__()
        return result


def _later(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> _Later:
        return _Later(function, args, kwargs)

    return call


def _guarded(function: Callable[..., Any], plugin: str, hook: str) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            result = function(*args, **kwargs)
        except Exception:
            log.exception("plugin %r failed in %s", plugin, hook)
            return None
        return _guard(result, plugin, hook) if inspect.isawaitable(result) else result

    return call


async def _guard(awaitable: Awaitable[Any], plugin: str, hook: str) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("plugin %r failed in %s", plugin, hook)


class Hooks:
    """Typed calls of chatbus's hooks, plus :meth:`first` and :meth:`each` for
    the hooks a plugin adds itself (the agents plugin does)."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm

    async def first(self, hook: str, /, **kwargs: Any) -> Any:
        """Call first-result hook ``hook``: the first answer that is not ``None``
        wins, an async implementation's answer awaited before deciding."""
        caller = getattr(self._pm.hook, hook)
        tried: list[object] = []
        result = caller(**kwargs)
        while isinstance(result, _Pending):
            answer = await result
            if answer is not None:
                return answer
            tried.extend(self._answered_before(hook, result.plugin))
            result = self._pm.subset_hook_caller(hook, remove_plugins=tried)(**kwargs)
        if inspect.isawaitable(result):  # an implementation registered without chatbus
            result = await result
        return result

    def _answered_before(self, name: str, plugin: object) -> list[object]:
        """The plugins pluggy called up to and including ``plugin`` (all of them abstained)."""
        called: list[object] = []
        for impl in reversed(getattr(self._pm.hook, name).get_hookimpls()):
            if impl.wrapper or impl.hookwrapper:
                continue
            called.append(impl.plugin)
            if impl.plugin is plugin:
                break
        return called

    def each(self, hook: str, /, **kwargs: Any) -> list[Awaitable[Any]]:
        """Call "all" hook ``hook``; returns the awaitables its async
        implementations gave (each already guarded), for the caller to await."""
        try:
            results = getattr(self._pm.hook, hook)(**kwargs)
        except Exception:  # only a plugin registered behind chatbus's back gets here
            log.exception("a plugin failed in %s", hook)
            return []
        return [result for result in results if inspect.isawaitable(result)]

    async def _all(self, hook: str, /, **kwargs: Any) -> None:
        pending = self.each(hook, **kwargs)
        if pending:
            await asyncio.gather(*pending)

    async def auth(self, credentials: Credentials) -> Identity | None:
        result: Identity | None = await self.first("on_auth", credentials=credentials)
        return result

    async def rate_limit(self, identity: Identity, message: Incoming) -> RateDecision | None:
        result: RateDecision | None = await self.first("rate_limit", identity=identity, message=message)
        return result

    async def parse(self, text: str) -> Parsed | None:
        result: Parsed | None = await self.first("parse_message", text=text)
        return result

    async def store_file(self, attachment: Attachment, source: Path) -> bool:
        """Whether a backend kept the file (the built-in one keeps it in the files folder)."""
        return bool(await self.first("store_file", attachment=attachment, source=source))

    async def open_file(self, attachment: Attachment) -> StoredFile | None:
        result: StoredFile | None = await self.first("open_file", attachment=attachment)
        return result

    async def delete_file(self, attachment: Attachment) -> bool:
        return bool(await self.first("delete_file", attachment=attachment))

    def message(self, message: Message, hub: Hub) -> list[Awaitable[Any]]:
        return self.each("on_message", message=message, hub=hub)

    async def connect(self, identity: Identity, transport: str, hub: Hub) -> None:
        await self._all("on_connect", identity=identity, transport=transport, hub=hub)

    async def disconnect(self, identity: Identity, transport: str, hub: Hub) -> None:
        await self._all("on_disconnect", identity=identity, transport=transport, hub=hub)

    async def startup(self, hub: Hub) -> None:
        """Run ``on_startup``; an exception here aborts start-up, so it is not swallowed."""
        for result in self._pm.hook.on_startup(hub=hub):
            if inspect.isawaitable(result):
                await result

    async def shutdown(self, hub: Hub) -> None:
        await self._all("on_shutdown", hub=hub)
