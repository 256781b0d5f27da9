"""examples/deploy/chatbus.service and chatbus.toml: checked so they cannot rot.

systemd itself cannot run in the test container (nor in CI's), so the unit
is checked two ways: ``systemd-analyze verify`` reads it as systemd would
(skipped where the tool is missing, CI included, since CI is a container
without systemd), and its ExecStart is parsed by chatbus's own argument
parser and the settings it names are loaded by chatbus. The nginx test runs
``chatbus serve`` with the same settings.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from chatbus import Hub, Settings
from chatbus.cli import build_parser
from chatbus.transports.websocket import WebSocketTransport

DEPLOY = Path(__file__).resolve().parents[2] / "examples" / "deploy"
UNIT = DEPLOY / "chatbus.service"
TOML = DEPLOY / "chatbus.toml"
NGINX_SITE = DEPLOY / "nginx.conf"


def unit_settings(text: str) -> dict[str, dict[str, list[str]]]:
    """The unit's sections and their keys (a key may repeat), comments left out."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line in {UNIT.name}: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


SERVICE = unit_settings(UNIT.read_text())["Service"]


def one(key: str) -> str:
    values = SERVICE[key]
    assert len(values) == 1, f"{key} is set {len(values)} times"
    return values[0]


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed; CI runs in a container without systemd, so this is skipped there too",
)
def test_systemd_analyze_verify_finds_nothing_to_say(tmp_path: Path) -> None:
    # verify insists that the program exists: point ExecStart at the chatbus installed here.
    installed = Path(sys.executable).with_name("chatbus")
    assert installed.exists(), installed
    text = UNIT.read_text()
    assert text.count("ExecStart=/opt/chatbus/.venv/bin/chatbus ") == 1
    unit = tmp_path / "chatbus.service"
    unit.write_text(text.replace("ExecStart=/opt/chatbus/.venv/bin/chatbus ", f"ExecStart={installed} "))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    # The same check does notice a mistake (it warns, and still exits 0).
    broken = tmp_path / "broken" / "chatbus.service"
    broken.parent.mkdir()
    broken.write_text(unit.read_text().replace("ProtectHome=yes", "ProtectHomes=yes"))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, timeout=60, check=False
    )
    assert "Unknown key 'ProtectHomes'" in result.stdout + result.stderr


def test_exec_start_is_a_command_line_chatbus_accepts() -> None:
    program, *arguments = shlex.split(one("ExecStart"))
    assert PurePosixPath(program).name == "chatbus" and PurePosixPath(program).is_absolute()
    args = build_parser().parse_args(arguments)
    assert args.command == "serve"
    assert args.config == "/etc/chatbus/chatbus.toml"
    assert TOML.read_text().startswith("# /etc/chatbus/chatbus.toml:"), "the example says where it goes"


def test_the_unit_runs_chatbus_as_its_own_user_and_restarts_it() -> None:
    assert one("User") == "chatbus"
    assert one("WorkingDirectory") == "/var/lib/chatbus"
    assert one("Restart") == "on-failure"
    assert one("KillSignal") == "SIGTERM"
    assert 10 <= int(one("TimeoutStopSec")) <= 90  # time to close connections, short enough for restarts
    assert int(one("LimitNOFILE")) >= 65536  # one open file per connection


def test_the_unit_sandboxes_chatbus() -> None:
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "SystemCallFilter": "@system-service",
        "CapabilityBoundingSet": "",
    }.items():
        assert one(key) == value, key
    assert set(one("RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    # Agents' commands run in the same sandbox: the unit says what to loosen for them.
    comments = UNIT.read_text()
    for option in ("MemoryDenyWriteExecute=no", "ProtectHome=", "ReadWritePaths=", "SystemCallFilter="):
        assert re.search(rf"^#.*{re.escape(option)}", comments, re.MULTILINE), option


def test_the_example_settings_load_and_fit_the_unit_and_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The tokens come from /etc/chatbus/chatbus.env, as the unit's EnvironmentFile.
    assert one("EnvironmentFile") == "-/etc/chatbus/chatbus.env"
    monkeypatch.setenv("CHATBUS_AUTH__TOKENS", '{"s3cret": {"userId": "alice", "role": "manager"}}')
    settings = Settings.load(TOML)
    hub = Hub(settings)
    transport = hub.transports["websocket"]
    assert isinstance(transport, WebSocketTransport)
    websocket = transport.settings
    # chatbus is reached only through nginx, which is told where it listens and is trusted.
    assert not websocket.listens_publicly() and not websocket.tls
    upstream = re.search(r"^\s*server\s+(\S+);", NGINX_SITE.read_text(), re.MULTILINE)
    assert upstream is not None and upstream.group(1) == f"{websocket.host}:{websocket.port}"
    assert [str(network) for network in websocket.trusted_proxies] == ["127.0.0.1/32", "::1/128"]
    # Everything chatbus writes is where the sandbox lets it write.
    writable = [PurePosixPath(path) for path in one("ReadWritePaths").split()]
    agents = hub.pm.get_plugin("agents")
    for path in (PurePosixPath(settings.db).parent, PurePosixPath(str(agents.settings.workdir))):
        assert any(path.is_relative_to(allowed) for allowed in writable), path
    assert hub.pm.get_plugin("auth").settings.mode == "token"
