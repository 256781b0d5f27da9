"""Installing replacement plugins changes behaviour with no configuration."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatbus import Hub, MemoryStore, RateLimited, Settings
from chatbus.testing import FakeClock, MemoryTransport
from tests.support import chatbus_env, pip_install_to, run_chatbus

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plugins"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    pip_install_to(target, EXAMPLE)
    return target


@pytest.fixture
def installed(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(site))
    yield
    for name in [m for m in sys.modules if m.startswith("chatbus_example_plugins")]:
        del sys.modules[name]


def test_chatbus_plugins_lists_them_with_their_hooks(site: Path) -> None:
    result = run_chatbus("plugins", env=chatbus_env(pythonpath=[site]))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    slowmode = next(line for line in lines if "slowmode" in line)
    assert "chatbus-example-plugins" in slowmode and "rate_limit" in slowmode
    mentions = next(line for line in lines if "addressed_mentions" in line)
    assert "parse_message" in mentions
    builtin = next(line for line in lines if line.split()[:2] == ["plugin", "ratelimit"])
    assert "chatbus" in builtin


async def test_installed_plugins_replace_the_builtins_without_configuration(installed: None) -> None:
    clock = FakeClock()
    memory = MemoryTransport()
    hub = Hub(Settings.isolated(db=":memory:"), store=MemoryStore(), transports=[memory], clock=clock)
    async with hub:
        first = await memory.say("alice", "Bob: the build is green")
        assert first.mentions == ("bob",)
        with pytest.raises(RateLimited) as refused:
            await memory.say("alice", "second message right away")
        assert refused.value.retry_after == pytest.approx(10)


async def test_blocking_them_by_name_brings_the_builtins_back(installed: None) -> None:
    settings = Settings.isolated(db=":memory:", plugins={"disable": ["slowmode", "addressed_mentions"]})
    memory = MemoryTransport()
    async with Hub(settings, store=MemoryStore(), transports=[memory], clock=FakeClock()):
        first = await memory.say("alice", "Bob: the build is green")
        assert first.mentions == ()
        await memory.say("alice", "second message right away")
