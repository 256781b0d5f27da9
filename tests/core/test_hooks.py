"""Hooks go through pluggy: wrappers, tracing, plugin-defined hooks, typed settings."""

from __future__ import annotations

import logging
import types
from collections.abc import Generator
from typing import Any

import pluggy
import pytest

from chatbus import (
    ConfigError,
    Hub,
    Identity,
    Incoming,
    Message,
    Parsed,
    PluginSettings,
    RateDecision,
    Settings,
    hookimpl,
    hookspec,
)
from chatbus.testing import MemoryTransport, make_hub


class Shouting:
    """A wrapper around parse_message: it sees what the others answered and may change it."""

    def __init__(self) -> None:
        self.seen: list[Parsed | None] = []

    @hookimpl(wrapper=True)
    def parse_message(self, text: str) -> Generator[None, Parsed | None, Parsed | None]:
        parsed = yield
        self.seen.append(parsed)
        if parsed is None:
            return None
        return Parsed(tuple(name.upper() for name in parsed.mentions), parsed.command, parsed.args)


class Timing:
    """An old-style wrapper around on_message (``hookwrapper=True``)."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    @hookimpl(hookwrapper=True)
    def on_message(self, message: Message) -> Generator[None, Any, None]:
        yield
        self.calls.append(message.id)


async def test_wrappers_run_around_every_call() -> None:
    shouting, timing = Shouting(), Timing()
    hub = make_hub([shouting, timing])
    async with hub:
        message = await hub.send("hi @bob and @carol")
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        await memory.wait_for(lambda m: m.id == message.id)
    assert message.mentions == ("BOB", "CAROL")
    assert shouting.seen == [Parsed(("bob", "carol"))]
    assert timing.calls == [message.id]


async def test_hook_calls_are_seen_by_pluggy_monitoring() -> None:
    hub = make_hub()
    seen: list[str] = []
    hub.pm.add_hookcall_monitoring(lambda name, impls, kwargs: seen.append(name), lambda *args: None)
    async with hub:
        await hub.send("hello @dan")
        await (await _person(hub)).say("erin", "hi")
    for hook in ("on_startup", "parse_message", "rate_limit", "on_message"):
        assert hook in seen, f"monitoring did not see {hook}"


async def _person(hub: Hub) -> MemoryTransport:
    memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
    return memory


class AsyncAbstainsThenSyncAnswers:
    """An async first-result implementation that abstains lets the next ones answer."""

    @hookimpl(tryfirst=True)
    async def rate_limit(self, identity: Identity, message: Incoming) -> RateDecision | None:
        return None


class Refuses:
    @hookimpl
    def rate_limit(self, identity: Identity) -> RateDecision:
        return RateDecision.refuse(7)


async def test_an_abstaining_async_implementation_hands_on_to_the_next() -> None:
    hub = make_hub([Refuses(), AsyncAbstainsThenSyncAnswers()])
    async with hub:
        decision = await hub.hooks.rate_limit(Identity("ann"), Incoming(Identity("ann"), "hi"))
    assert decision == RateDecision(False, 7)


class Broken:
    @hookimpl
    def on_message(self, message: Message) -> None:
        raise RuntimeError("this plugin is broken")


class Listening:
    def __init__(self) -> None:
        self.heard: list[str] = []

    @hookimpl
    async def on_message(self, message: Message) -> None:
        self.heard.append(message.text)


async def test_one_plugin_failing_in_an_all_hook_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    listening = Listening()
    hub = make_hub([listening, Broken()])
    caplog.set_level(logging.ERROR)
    async with hub:
        await hub.send("still heard")
    assert listening.heard == ["still heard"]
    assert any("failed in on_message" in record.getMessage() for record in caplog.records)


# A plugin that brings hooks of its own, as the agents plugin does ---------------
SPECS = types.ModuleType("cb_greeting_specs")
exec(  # noqa: S102 - a hook-spec module built for this test
    "from chatbus import hookspec\n"
    "@hookspec(firstresult=True)\n"
    "def greeting_for(name):\n"
    '    """The greeting for ``name``; first result wins."""\n',
    SPECS.__dict__,
)


class Greeter:
    @hookimpl
    def add_hookspecs(self, pm: pluggy.PluginManager) -> None:
        pm.add_hookspecs(SPECS)

    @hookimpl(trylast=True)
    def greeting_for(self, name: str) -> str:
        return f"hello {name}"


class Pirate:
    @hookimpl
    async def greeting_for(self, name: str) -> str | None:
        return f"ahoy {name}" if name != "bob" else None


async def test_a_plugin_adds_its_own_hooks_and_others_implement_them() -> None:
    hub = make_hub([Greeter(), Pirate()])
    async with hub:
        assert await hub.hooks.first("greeting_for", name="ann") == "ahoy ann"
        assert await hub.hooks.first("greeting_for", name="bob") == "hello bob"


def test_a_hook_nobody_declared_is_refused_by_name() -> None:
    with pytest.raises(Exception, match="greeting_for"):
        make_hub([Pirate()])


def test_hookspec_is_the_projects_marker() -> None:
    assert hookspec.project_name == "chatbus"


# Typed settings of a plugin --------------------------------------------------
class QuietHoursSettings(PluginSettings):
    start: int = 22
    end: int = 7


class QuietHours:
    name = "quiet_hours"
    settings_model = QuietHoursSettings

    def __init__(self, hub: Hub, settings: QuietHoursSettings) -> None:
        self.hub = hub
        self.settings = settings


def test_a_plugin_gets_its_section_validated_and_typed() -> None:
    hub = make_hub([QuietHours], settings=Settings.isolated(db=":memory:", quiet_hours={"start": "23"}))
    plugin = hub.pm.get_plugin("quiet_hours")
    assert isinstance(plugin, QuietHours)
    assert (plugin.settings.start, plugin.settings.end) == (23, 7)
    assert hub.plugin_settings("quiet_hours") == plugin.settings


def test_a_misspelled_key_of_a_plugin_is_refused_with_the_nearest_name() -> None:
    with pytest.raises(ConfigError) as failure:
        make_hub([QuietHours], settings=Settings.isolated(db=":memory:", quiet_hours={"strat": 23}))
    assert "quiet_hours.strat (CHATBUS_QUIET_HOURS__STRAT)" in str(failure.value)
    assert "did you mean 'start'?" in str(failure.value)


def test_the_builtin_plugins_sections_are_their_names() -> None:
    hub = make_hub(settings=Settings.isolated(db=":memory:", ratelimit={"burst": 2}, mentions={"strip_suffix": ""}))
    assert getattr(hub.plugin_settings("ratelimit"), "burst", None) == 2
    assert getattr(hub.plugin_settings("mentions"), "strip_suffix", None) == ""
    for name in ("auth", "agents"):
        assert hub.plugin_settings(name) is not None, f"the {name} plugin has no typed settings"
