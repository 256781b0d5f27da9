"""Running the real ``chatbus`` command in tests, with timeouts on every wait, and what
tests that start real servers share: a free loopback port, a required Debian program."""

from __future__ import annotations

import itertools
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Self

CHATBUS = [sys.executable, "-m", "chatbus.cli"]


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now (for a server that takes no port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def require_program(path: Path, package: str) -> None:
    """Skip without Debian's ``package`` (at ``path``); in CI (``CI=true``, where .ci/run
    installs it) fail instead, so a missing install step can never pass unnoticed."""
    if path.exists():
        return
    import pytest

    message = f"{path} not found: install Debian's {package} package (apt-get install {package})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def chatbus_env(extra: Mapping[str, str] | None = None, pythonpath: Sequence[Path] = ()) -> dict[str, str]:
    """The environment for a chatbus subprocess: no chatbus variables leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATBUS_")}
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in pythonpath), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_chatbus(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a chatbus command to completion."""
    return subprocess.run(
        [*CHATBUS, *args],
        check=False,
        env=dict(env or chatbus_env()),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class _LineReader:
    """Collects a stream's lines on a thread so tests can wait for one with a timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _arriving(self, timeout: float) -> Iterator[str]:
        """Lines as they arrive, until the stream ends or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                return
            if line is None:
                return
            self.lines.append(line)
            yield line

    def wait_for(self, words: str, timeout: float) -> str:
        for line in itertools.chain(list(self.lines), self._arriving(timeout)):
            if words in line:
                return line
        raise AssertionError(f"{words!r} did not appear within {timeout} s; got:\n" + "\n".join(self.lines))

    def drain(self, timeout: float = 1.0) -> list[str]:
        for _ in self._arriving(timeout):
            pass
        return self.lines


class ChatbusProcess:
    """``chatbus serve ...`` as a user runs it, stopped with SIGTERM at the end."""

    def __init__(
        self, *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None, stdin: bool = False
    ) -> None:
        self.process = subprocess.Popen(
            [*CHATBUS, *args],
            env=dict(env or chatbus_env()),
            cwd=cwd,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        self.stdout = _LineReader(self.process.stdout)
        self.stderr = _LineReader(self.process.stderr)

    def type_line(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def terminate(self, timeout: float = 20) -> int:
        """Send SIGTERM and return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
            raise AssertionError(f"chatbus did not stop within {timeout} s of SIGTERM") from None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (Linux ``/proc``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pip_install_to(target: Path, package: Path) -> None:
    """Install a package into ``target`` (a folder put on PYTHONPATH), as a user's pip would.

    It is built from a copy, so the build leaves nothing (egg-info with entry
    points) in the source tree for other tests to find.
    """
    source = target.parent / f"{target.name}-source"
    shutil.copytree(package, source, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    package = source
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(package),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
