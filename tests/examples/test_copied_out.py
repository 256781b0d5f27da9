"""The examples people copy work where they copy them.

Each example in ``examples/`` that has tests, and the test-kit example of the
README, is copied to an empty folder outside the repository and run there with
plain ``python -m pytest``, as someone who copied it would: no settings from
this repository, no conftest of ours, nothing on ``PYTHONPATH``. Only chatbus
and the test tools installed in this environment are shared. Whatever an
example needs (pytest-asyncio's mode, say) must therefore be declared in the
example itself. The README's files are read from README.md by this test, so
the text people read is the text that runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.support import chatbus_env

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
README = ROOT / "README.md"
#: The examples that have tests of their own.
WITH_TESTS = ["agents", "console-transport", "plugins"]
#: A fenced block whose first line names the file it is: "# shout.py: what it does" or "# pyproject.toml".
NAMED_BLOCK = re.compile(r"^```[a-z]*\n# ([\w.-]+\.(?:py|toml))\b[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: pytest's own settings and plugins must come from the copied folder, not from whoever runs this suite.
PYTEST_VARIABLES = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTHONPATH")


def pytest_in(folder: Path, *options: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``python -m pytest`` run in ``folder`` with none of this suite's settings or paths."""
    env = {k: v for k, v in chatbus_env().items() if k not in PYTEST_VARIABLES}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *options],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_pytest_in(folder: Path) -> dict[str, int]:
    """Run pytest in ``folder``, require it to pass, and return its counts (tests, failures, errors, skipped)."""
    report = folder.parent / f"{folder.name}-report.xml"
    result = pytest_in(folder, f"--junitxml={report}")
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"pytest failed in the copied {folder.name}:\n{output}"
    suite = ElementTree.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    counts = {key: int(suite.get(key, "0")) for key in ("tests", "failures", "errors", "skipped")}
    assert counts["failures"] == counts["errors"] == counts["skipped"] == 0, output
    return counts


def test_every_example_with_tests_is_copied_out() -> None:
    found = sorted(path.name for path in EXAMPLES.iterdir() if path.is_dir() and any(path.rglob("test_*.py")))
    assert found == WITH_TESTS


@pytest.mark.parametrize("name", WITH_TESTS)
def test_example_passes_when_copied_out_of_the_repository(name: str, tmp_path: Path) -> None:
    source = EXAMPLES / name
    copy = tmp_path / name
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", ".pytest_cache"))
    assert ROOT not in copy.parents
    written = sum(
        len(re.findall(r"^(?:async )?def test_", path.read_text(), re.MULTILINE)) for path in copy.rglob("test_*.py")
    )
    counts = run_pytest_in(copy)
    assert counts["tests"] >= written > 0


def readme_files() -> dict[str, str]:
    """The files of the README's test-kit example: the plugin it tests, the test and the settings."""
    text = README.read_text(encoding="utf-8")
    plugin = text[text.index("## Writing a plugin") : text.index("## Writing a transport")]
    kit = text[text.index("## Testing plugins: the test kit") : text.index("## The web chat")]
    files = {name: body for name, body in NAMED_BLOCK.findall(plugin) if name == "shout.py"}
    files.update(NAMED_BLOCK.findall(kit))
    return files


def test_the_readme_test_kit_example_passes_in_a_folder_of_its_own(tmp_path: Path) -> None:
    files = readme_files()
    assert sorted(files) == ["pyproject.toml", "shout.py", "test_shout.py"]
    folder = tmp_path / "shout"
    folder.mkdir()
    for name, body in files.items():
        (folder / name).write_text(body, encoding="utf-8")
    counts = run_pytest_in(folder)
    assert counts["tests"] == 1


def test_a_copied_example_without_its_settings_fails(tmp_path: Path) -> None:
    """The check above can fail: without the README's pyproject.toml, pytest does not run the async test."""
    folder = tmp_path / "shout"
    folder.mkdir()
    for name, body in readme_files().items():
        if name != "pyproject.toml":
            (folder / name).write_text(body, encoding="utf-8")
    result = pytest_in(folder, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed" in result.stdout
