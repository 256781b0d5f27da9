"""Keeps the plugin surface honest: every hook is documented and tested."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import chatbus
from chatbus.core import hookspecs
from chatbus.plugins.agents import hookspecs as agent_hookspecs

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
#: Every hook: the core's and those the built-in plugins add.
SPECS = {
    name: value
    for module in (hookspecs, agent_hookspecs)
    for name, value in vars(module).items()
    if callable(value) and hasattr(value, hookspecs.PROJECT + "_spec")
}
HOOKS = sorted(SPECS)
TEST_SOURCES = "\n".join(
    path.read_text() for folder in ("tests", "examples") for path in (ROOT / folder).rglob("test_*.py")
)


def test_the_hook_list_is_found() -> None:
    assert {"on_auth", "rate_limit", "parse_message", "on_message", "on_startup"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_one_line_contract(hook: str) -> None:
    doc = inspect.getdoc(SPECS[hook]) or ""
    assert doc and "\n" not in doc.strip(), f"{hook} needs a one-line docstring"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_in_the_readme_with_its_signature(hook: str) -> None:
    parameters = ", ".join(inspect.signature(SPECS[hook]).parameters)
    names = re.findall(rf"`{hook}\(([^)]*)\)", README)
    assert names, f"README.md does not document the hook {hook}"
    documented = ", ".join(part.split(":")[0].strip() for part in names[0].split(","))
    assert documented == parameters, f"README documents {hook}({documented}), the spec is {hook}({parameters})"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_implemented_by_some_test(hook: str) -> None:
    assert re.search(rf"def {hook}\(", TEST_SOURCES), f"no test implements the hook {hook}"


def test_hookimpl_is_exported_from_the_package_root() -> None:
    assert chatbus.hookimpl is hookspecs.hookimpl
    assert set(chatbus.__all__) <= set(dir(chatbus))
