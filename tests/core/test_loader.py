"""Plugins and transports found by entry point: good ones load, broken ones are reported."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from chatbus import ConfigError, Hub, MemoryStore, PluginError, Settings
from tests.support import chatbus_env, run_chatbus


def install_fake_distribution(site: Path, name: str, entry_points: str, modules: dict[str, str]) -> None:
    """Write a minimal installed distribution (dist-info with entry points) into ``site``."""
    info = site / f"{name.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(entry_points)
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)


GOOD = """
from chatbus import hookimpl, Parsed

@hookimpl
def parse_message(text):
    return Parsed(mentions=("from-entry-point",))
"""

BROKEN = "import a_module_that_is_not_installed\n"

TRANSPORT = """
from chatbus import BaseTransport, TransportSettings

class EchoSettings(TransportSettings):
    greeting: str = "hello"

class EchoTransport(BaseTransport):
    name = "echo"
    settings_model = EchoSettings

    async def deliver(self, message):
        pass
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for module in ("cb_good_plugin", "cb_broken_plugin", "cb_echo_transport", "cb_typo_plugin"):
        sys.modules.pop(module, None)


def make(settings: Settings) -> Hub:
    return Hub(settings, store=MemoryStore(), transports=[])


def test_a_broken_plugin_is_reported_and_the_others_still_load(site: Path, caplog: pytest.LogCaptureFixture) -> None:
    install_fake_distribution(
        site,
        "chatbus-fake-plugins",
        "[chatbus.plugins]\ngood = cb_good_plugin\nbroken = cb_broken_plugin\n",
        {"cb_good_plugin": GOOD, "cb_broken_plugin": BROKEN},
    )
    caplog.set_level(logging.ERROR)
    hub = make(Settings.isolated(db=":memory:"))
    assert hub.pm.has_plugin("good")
    broken = next(info for info in hub.plugin_infos if info.name == "broken")
    assert broken.distribution == "chatbus-fake-plugins"
    assert broken.version == "1.2.3"
    assert "ModuleNotFoundError" in (broken.error or "")
    assert "a_module_that_is_not_installed" in (broken.error or "")
    assert any("'broken' from chatbus-fake-plugins" in r.getMessage() for r in caplog.records)
    good = next(info for info in hub.plugin_infos if info.name == "good")
    assert good.hooks == ["parse_message"]
    assert good.distribution == "chatbus-fake-plugins"


def test_strict_mode_makes_a_broken_plugin_fatal(site: Path) -> None:
    install_fake_distribution(
        site, "chatbus-fake-plugins", "[chatbus.plugins]\nbroken = cb_broken_plugin\n", {"cb_broken_plugin": BROKEN}
    )
    with pytest.raises(PluginError) as failure:
        make(Settings.isolated(db=":memory:", plugins={"strict": True}))
    assert "'broken' from chatbus-fake-plugins" in str(failure.value)


async def test_an_installed_plugin_changes_behaviour_with_no_configuration(site: Path) -> None:
    install_fake_distribution(
        site, "chatbus-fake-plugins", "[chatbus.plugins]\ngood = cb_good_plugin\n", {"cb_good_plugin": GOOD}
    )
    hub = make(Settings.isolated(db=":memory:"))
    async with hub:
        message = await hub.send("hi @alice")
    assert message.mentions == ("from-entry-point",)


def test_an_entry_point_plugin_can_be_blocked_by_name(site: Path) -> None:
    install_fake_distribution(
        site, "chatbus-fake-plugins", "[chatbus.plugins]\ngood = cb_good_plugin\n", {"cb_good_plugin": GOOD}
    )
    hub = make(Settings.isolated(db=":memory:", plugins={"disable": ["good"]}))
    assert not hub.pm.has_plugin("good")


def test_transports_are_found_by_entry_point_with_their_own_settings(site: Path) -> None:
    install_fake_distribution(
        site,
        "chatbus-echo",
        "[chatbus.transports]\necho = cb_echo_transport:EchoTransport\n",
        {"cb_echo_transport": TRANSPORT},
    )
    settings = Settings.isolated(db=":memory:", transports=["echo"], echo={"greeting": "hi"})
    hub = Hub(settings, store=MemoryStore())
    transport = hub.transports["echo"]
    assert transport.settings.greeting == "hi"  # type: ignore[attr-defined]

    bad = Settings.isolated(db=":memory:", transports=["echo"], echo={"greting": "typo"})
    with pytest.raises(ConfigError) as failure:
        Hub(bad, store=MemoryStore())
    assert "echo.greting" in str(failure.value)


def test_an_unknown_transport_name_lists_the_ones_that_exist(site: Path) -> None:
    install_fake_distribution(
        site,
        "chatbus-echo",
        "[chatbus.transports]\necho = cb_echo_transport:EchoTransport\n",
        {"cb_echo_transport": TRANSPORT},
    )
    with pytest.raises(ConfigError) as failure:
        Hub(Settings.isolated(db=":memory:", transports=["carrier-pigeon"]), store=MemoryStore())
    message = str(failure.value)
    assert "unknown transport 'carrier-pigeon'" in message
    assert "echo" in message and "websocket" in message


MISSPELLED = """
from chatbus import hookimpl

@hookimpl
def on_mesage(message):
    pass
"""


def test_a_misspelled_hook_of_an_installed_plugin_is_a_broken_row_and_the_others_load(site: Path) -> None:
    install_fake_distribution(
        site,
        "chatbus-fake-plugins",
        "[chatbus.plugins]\ntypo = cb_typo_plugin\ngood = cb_good_plugin\n",
        {"cb_typo_plugin": MISSPELLED, "cb_good_plugin": GOOD},
    )
    result = run_chatbus("plugins", "--json", env=chatbus_env(pythonpath=[site]))
    assert result.returncode == 0, result.stderr
    found = {entry["name"]: entry for entry in json.loads(result.stdout)}
    typo = found["typo"]
    assert typo["distribution"] == "chatbus-fake-plugins"
    assert typo["error"] == "PluginError: implements on_mesage, which is not a chatbus hook (did you mean on_message?)"
    assert found["good"]["error"] is None and found["good"]["hooks"] == ["parse_message"]
    table = run_chatbus("plugins", env=chatbus_env(pythonpath=[site]))
    row = next(line for line in table.stdout.splitlines() if " typo " in f" {line} ")
    assert "chatbus-fake-plugins" in row and "BROKEN: PluginError: implements on_mesage" in row

    with pytest.raises(PluginError, match="on_mesage"):  # strict mode stops at it
        make(Settings.isolated(db=":memory:", plugins={"strict": True}))
