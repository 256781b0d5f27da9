"""A worker does not outlive the server that started it: killed with SIGKILL (a crash), the
server's worker and everything it started are stopped by the worker's keeper, so a task
reported as interrupted is not still being done, and ``/retry`` runs it once, not beside it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from chatbus.plugins.agents import keeper
from tests.support import alive, run_chatbus

from .test_serve import COMMAND, TIMEOUT, Client, answer, serve

KEEPER = [sys.executable, "-I", "-S", keeper.__file__]


def until(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:g} s"
        time.sleep(0.05)


def group() -> subprocess.Popen[bytes]:
    """A stand-in for a worker: a session of its own with a child, both sleeping."""
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    return subprocess.Popen([sys.executable, "-c", script], start_new_session=True)


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def keep(worker: subprocess.Popen[bytes], grace: float = 1.0) -> tuple[subprocess.Popen[bytes], int]:
    read, write = os.pipe()
    started = subprocess.Popen([*KEEPER, str(read), str(worker.pid), str(grace)], pass_fds=(read,))
    os.close(read)
    return started, write


def test_the_keeper_leaves_a_worker_alone_when_the_server_says_it_is_done_with_it() -> None:
    worker = group()
    try:
        until(lambda: len(children_of(worker.pid)) == 1, "the worker's child starting")
        guard, write = keep(worker)
        os.write(write, b"x")
        os.close(write)
        assert guard.wait(TIMEOUT) == 0
        assert worker.poll() is None and all(alive(pid) for pid in children_of(worker.pid))
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(TIMEOUT)


def test_the_keeper_stops_the_whole_worker_when_the_server_is_gone() -> None:
    worker = group()
    try:
        until(lambda: len(children_of(worker.pid)) == 1, "the worker's child starting")
        (child,) = children_of(worker.pid)
        guard, write = keep(worker)
        os.close(write)  # what the death of the server does
        assert guard.wait(TIMEOUT) == 0
        assert worker.wait(TIMEOUT) == -signal.SIGTERM
        until(lambda: not alive(child), "the worker's child stopping")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)


def test_a_server_killed_mid_task_takes_its_worker_along_and_retry_runs_the_task_once(tmp_path: Path) -> None:
    hired = run_chatbus(
        "agents", "hire", "alice", "developer", "--command", COMMAND, "--db", "chat.db", "--create", cwd=tmp_path
    )
    assert hired.returncode == 0, hired.stderr
    pids_file = tmp_path / "agents" / "alice" / "pids.txt"
    server, port = serve(tmp_path)
    with server:
        carol = Client(port, "carol", role="developer")
        asked = carol.say("@alice please run the hang test")
        ack = carol.expect(answer(asked, "alice", "Got it!"))
        until(lambda: pids_file.exists() and pids_file.read_text().strip() != "", "the worker starting")
        pids = [int(pid) for pid in pids_file.read_text().split()]
        pids_file.unlink()
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(TIMEOUT)
        until(lambda: not any(alive(pid) for pid in pids), "the worker and its child stopping", 5)

    server, port = serve(tmp_path)
    with server:
        carol = Client(port, "carol", role="developer", lastSeenId=ack["id"])
        report = answer(asked, "alice", "⚠️ The server stopped while I was working on this task")
        if not any(report(frame) for frame in carol.auth.get("missed", [])):
            carol.expect(report)
        retry = carol.say("/retry alice")
        carol.expect(answer(retry, "alice", "🔁"))
        until(lambda: pids_file.exists() and pids_file.read_text().strip() != "", "the task running again")
        assert not any(alive(pid) for pid in pids)
        carol.close()
        assert server.terminate() == 0
