"""A third-party transport package is found just by being installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import ChatbusProcess, chatbus_env, pip_install_to, run_chatbus

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "console-transport"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    pip_install_to(target, EXAMPLE)
    return target


def test_chatbus_plugins_lists_the_installed_transport(site: Path) -> None:
    result = run_chatbus("plugins", env=chatbus_env(pythonpath=[site]))
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if " console " in f" {line} ")
    assert "transport" in line and "chatbus-console" in line and "1.0.0" in line


def test_serve_with_the_console_transport_exchanges_messages(site: Path, tmp_path: Path) -> None:
    env = chatbus_env({"CHATBUS_CONSOLE__USER": "ops-desk"}, pythonpath=[site])
    with ChatbusProcess(
        "serve", "--transport", "console", "--db", str(tmp_path / "chat.db"), env=env, cwd=tmp_path, stdin=True
    ) as server:
        server.stdout.wait_for("you are ops-desk", timeout=30)
        server.type_line("hello from the terminal @alice")
        server.stdout.wait_for("ops-desk: hello from the terminal @alice", timeout=10)
        assert server.terminate() == 0
    assert not any("Traceback" in line for line in server.stderr.drain())


def test_without_the_package_the_transport_is_unknown(tmp_path: Path) -> None:
    result = run_chatbus("serve", "--transport", "console", "--db", str(tmp_path / "chat.db"), cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown transport 'console'" in result.stderr
    assert "websocket" in result.stderr
    assert "Traceback" not in result.stderr
