"""Agents on several nodes: nothing is done twice when the node running the plugins dies (issue 14).

The agent ``alice`` is hired with ``chatbus agents hire`` against the shared
Redis while the nodes run; her worker command is a small script that writes
one line per run to a marker file (``runs``) and then waits until the test
lets that task finish (a file ``go-<task>``), so every run is counted and a
node can be killed while she works. People are real web clients on the
nodes; node ``a`` runs the plugins first (it starts alone and takes the duty
``on-message`` before the others start).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import alive, chatbus_env, run_chatbus

from .nodes import LEASE_TTL, Cluster, Node
from .people import TIMEOUT, Person

#: What a takeover may take beyond the lease ttl (the next try to take it, starting the plugins).
MARGIN = 3.0
#: How long a test waits after the last expected answer for one that should not come (a double).
QUIET = 1.5
#: The plugins run here: the node's log says so when it takes the duty ``on-message``.
RUNS_PLUGINS = "runs the plugins from message"

WORKER = """\
import os, pathlib, sys, time
marks, task = pathlib.Path(sys.argv[1]), sys.argv[2]
with open(marks / "runs", "a") as runs:
    runs.write(f"{os.getpid()} {task}\\n")
print(f"working on {task}", flush=True)
go, deadline = marks / ("go-" + "-".join(task.split())), time.monotonic() + 120
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
print(f"finished {task}")
"""


class Alice:
    """The agent's worker, as the test sees it: its runs and the switch that ends each task."""

    def __init__(self, folder: Path) -> None:
        self.marks = folder / "marks"
        self.marks.mkdir(parents=True)
        self.script = folder / "worker.py"
        self.script.write_text(WORKER)

    @property
    def command(self) -> str:
        return f"{sys.executable} {self.script} {self.marks} {{task}}"

    def runs(self) -> list[str]:
        path = self.marks / "runs"
        lines = path.read_text().splitlines() if path.exists() else []
        return [line.split(" ", 1)[1] for line in lines]

    def pids(self) -> list[int]:
        path = self.marks / "runs"
        return [int(line.split(" ", 1)[0]) for line in path.read_text().splitlines()] if path.exists() else []

    def finish(self, task: str) -> None:
        """Let every run of ``task`` end (exit 0)."""
        (self.marks / ("go-" + "-".join(task.split()))).touch()

    async def ran(self, expected: list[str], timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while self.runs() != expected:
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker ran {self.runs()}, expected {expected}")
            await asyncio.sleep(0.05)


@pytest.fixture
def alice(tmp_path: Path) -> Iterator[Alice]:
    worker = Alice(tmp_path / "alice")
    try:
        yield worker
    finally:  # a worker a killed node left behind (it runs in a session of its own)
        for pid in worker.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def hire(cluster: Cluster, alice: Alice) -> None:
    """``chatbus agents hire alice developer --command ...`` against the nodes' Redis."""
    env = chatbus_env({"CHATBUS_ENGINE__URL": cluster.redis.url, "CHATBUS_ENGINE__PREFIX": cluster.prefix})
    done = run_chatbus("agents", "hire", "alice", "developer", "--command", alice.command, env=env, cwd=cluster.root)
    assert done.returncode == 0, done.stderr
    assert "hired alice" in done.stdout, done.stdout


async def start(cluster: Cluster, *others: str) -> list[Node]:
    """Node ``a`` first, holding ``on-message`` once it says so, then ``others``."""
    cluster.root.mkdir(parents=True, exist_ok=True)
    (a,) = await cluster.start("a")
    await asyncio.to_thread(a.process.stderr.wait_for, f"a {RUNS_PLUGINS}", TIMEOUT)
    return [a, *await cluster.start(*others)]


def replies(person: Person, message: dict[str, Any], sender: str | None = None) -> list[str]:
    """The texts of the answers ``person`` saw to ``message`` (from ``sender``)."""
    return [
        m["text"]
        for m in person.seen
        if m.get("replyTo") == message["id"] and (sender is None or m["sender"] == sender)
    ]


def starting(prefix: str) -> Callable[[list[str]], int]:
    return lambda texts: sum(1 for text in texts if text.startswith(prefix))


def statuses(person: Person, task: str) -> list[str]:
    return [s["status"] for s in person.of_type("agent_status") if s["userId"] == "alice" and s["currentTask"] == task]


async def answered_once(people: list[Person], message: dict[str, Any], prefix: str, what: str) -> None:
    """Every one of ``people`` sees exactly one answer to ``message`` starting ``prefix``."""
    count = starting(prefix)
    for person in people:
        await person.until(lambda p=person: count(replies(p, message)) >= 1, what, TIMEOUT)  # type: ignore[misc]
    await asyncio.sleep(QUIET)
    for person in people:
        said = replies(person, message)
        assert count(said) == 1, f"{person.name} on node {person.node.name} saw {what} {count(said)} times: {said}"


async def two_tasks(dev: Person, alice: Alice, *onlookers: Person) -> tuple[dict[str, Any], dict[str, Any]]:
    """``dev`` gives alice a task she starts and a second she queues behind it; both messages."""
    first = await dev.sent("@alice please build alpha")
    await alice.ran(["build alpha"])
    second = await dev.sent("@alice please build beta")
    await answered_once([dev, *onlookers], second, "I'm busy", "alice queueing the second task")
    return first, second


async def test_a_task_given_on_another_node_runs_once_and_everyone_sees_it(cluster: Cluster, alice: Alice) -> None:
    a, b, c = await start(cluster, "b", "c")
    hire(cluster, alice)
    dev = await Person.join(b, "dev", role="developer")
    on_a, on_c = await Person.join(a, "ann"), await Person.join(c, "cy")
    everyone = [dev, on_a, on_c]

    ask = await dev.sent("@alice please build alpha")
    await answered_once(everyone, ask, "Got it", "alice's acknowledgement")
    await alice.ran(["build alpha"])
    for person in everyone:
        await person.until(lambda p=person: "working" in statuses(p, "build alpha"), "alice working")  # type: ignore[misc]

    alice.finish("build alpha")
    await answered_once(everyone, ask, "✅ Completed", "alice's result")
    assert alice.runs() == ["build alpha"]
    for person in everyone:
        assert statuses(person, "build alpha")[-1:] == ["completed"], person.of_type("agent_status")


async def test_the_node_running_the_agents_dies_and_another_carries_on_doing_nothing_twice(
    cluster: Cluster, alice: Alice
) -> None:
    a, b, c = await start(cluster, "b", "c")
    hire(cluster, alice)
    dev, cy = await Person.join(b, "dev", role="developer"), await Person.join(c, "cy")
    first, second = await two_tasks(dev, alice, cy)

    (worker,) = alice.pids()
    a.kill()
    killed = time.monotonic()
    # Sent while no node runs the plugins: a is dead and its lease has not run out yet.
    commands = [await dev.sent(text) for text in ("/help", "/agents", "/status alice")]
    assert taker(b, c) is None, "a node took the plugins over before the commands were sent"
    survivor, resumed_at = await taken_over(b, c, killed)
    assert resumed_at <= commands[0]["id"], f"node {survivor.name} resumed after the commands"
    await stopped(worker, "the killed node's worker (it would go on with the task nobody watches)")
    assert [node.name for node in (b, c) if taker(node)] == [survivor.name], "two nodes ran the plugins"

    await answered_once([dev, cy], first, "⚠️", "the first task reported as interrupted")
    await alice.ran(["build alpha", "build beta"])  # the queued one carried on, the interrupted one not again
    for person in (dev, cy):
        await person.until(lambda p=person: "working" in statuses(p, "build beta"), "alice working on beta")  # type: ignore[misc]
    for command in commands:
        await answered_once([dev, cy], command, "", f"the answer to {command['text']}")
    alice.finish("build beta")
    await answered_once([dev, cy], second, "✅ Completed", "the result of the queued task")

    retry = await dev.sent("/retry alice")
    await answered_once([dev, cy], retry, "🔁", "alice trying the interrupted task again")
    await alice.ran(["build alpha", "build beta", "build alpha"])
    alice.finish("build alpha")
    await answered_once([dev, cy], retry, "✅ Completed", "the result of the retried task")
    assert alice.runs() == ["build alpha", "build beta", "build alpha"]
    interrupted = next(text for text in replies(dev, first, "alice") if text.startswith("⚠️"))
    assert "/retry alice" in interrupted, interrupted


async def test_a_cancel_sent_while_no_node_runs_the_agents_does_not_stop_the_next_task(
    cluster: Cluster, alice: Alice
) -> None:
    """``/cancel alice`` said when the node running her died meant the task it was running: the
    next node reports that one as interrupted and must not stop the queued one in its place."""
    a, b = await start(cluster, "b")
    hire(cluster, alice)
    dev = await Person.join(b, "dev", role="developer")
    first, second = await two_tasks(dev, alice)

    a.kill()
    cancel = await dev.sent("/cancel alice")
    await answered_once([dev], first, "⚠️", "the first task reported as interrupted")
    await answered_once([dev], cancel, "", "the answer to /cancel")
    assert replies(dev, cancel)[0].startswith("I'm not running a task right now"), replies(dev, cancel)
    await alice.ran(["build alpha", "build beta"])
    alice.finish("build beta")
    await answered_once([dev], second, "✅ Completed", "the result of the queued task")


async def test_the_node_running_the_agents_stopped_for_a_deploy_hands_them_over_at_once(
    cluster: Cluster, alice: Alice
) -> None:
    a, b = await start(cluster, "b")
    hire(cluster, alice)
    dev = await Person.join(b, "dev", role="developer")
    first, second = await two_tasks(dev, alice)
    (worker,) = alice.pids()

    stopping = time.monotonic()
    assert await asyncio.to_thread(a.process.terminate) == 0
    await stopped(worker, "the worker of the node stopped for a deploy")
    survivor, _ = await taken_over(b, b, stopping, within=LEASE_TTL)  # handed over, not left to expire
    assert survivor is b
    await answered_once([dev], first, "⚠️", "the first task reported as interrupted")
    live_status_ended_interrupted(dev, first)
    await alice.ran(["build alpha", "build beta"])
    alice.finish("build beta")
    await answered_once([dev], second, "✅ Completed", "the result of the queued task")
    assert alice.runs() == ["build alpha", "build beta"]


async def test_a_node_paused_past_its_lease_does_nothing_twice_when_it_wakes_up(cluster: Cluster, alice: Alice) -> None:
    """A node frozen (a long pause, a stalled VM) while its worker finishes must not, when it wakes
    up, report what the node that took over already reported, nor take the queue it carries on."""
    a, b = await start(cluster, "b")
    hire(cluster, alice)
    dev = await Person.join(b, "dev", role="developer")
    first, second = await two_tasks(dev, alice)

    a.process.process.send_signal(signal.SIGSTOP)
    try:
        await taken_over(b, b, time.monotonic())
        await answered_once([dev], first, "⚠️", "the first task reported as interrupted")
        await alice.ran(["build alpha", "build beta"])
        alice.finish("build alpha")  # a's worker ends while a cannot see it
        await asyncio.sleep(0.5)
    finally:
        a.process.process.send_signal(signal.SIGCONT)
    await asyncio.to_thread(a.process.stderr.wait_for, "lost the duty 'on-message'", TIMEOUT)
    alice.finish("build beta")
    await answered_once([dev], second, "✅ Completed", "the result of the queued task")
    await asyncio.sleep(QUIET)
    assert alice.runs() == ["build alpha", "build beta"], "a task ran twice"
    assert starting("✅")(replies(dev, first)) == 0, f"a reported a task b had reported: {replies(dev, first)}"
    assert starting("⚠️")(replies(dev, first)) == 1, replies(dev, first)
    live_status_ended_interrupted(dev, first)


def live_status_ended_interrupted(person: Person, asked: dict[str, Any]) -> None:
    """The agent's live status message for the task ``asked`` ends saying it was interrupted (no
    one cancelled it), and no longer as being written."""
    live = next(m for m in person.seen if m.get("replyTo") == asked["id"] and m["text"].startswith("⏳"))
    edits = [e for e in person.of_type("message_edited") if e["id"] == live["id"]]
    ended = edits[-1] if edits else {}
    assert not ended.get("streaming", True) and "⚠️" in ended["text"] and "Cancelled" not in ended["text"], edits


async def stopped(pid: int, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} still runs {timeout:g} s after the kill")
        await asyncio.sleep(0.05)


def taker(*nodes: Node) -> tuple[Node, int] | None:
    """The node whose log says it took the plugins over, and the first message it ran them for."""
    for node in nodes:
        node.process.stderr.drain(0.05)
        for line in node.process.stderr.lines:
            found = re.search(rf"\b{node.name} {RUNS_PLUGINS} (\d+) on", line)
            if found:
                return node, int(found.group(1))
    return None


async def taken_over(b: Node, c: Node, killed: float, within: float = LEASE_TTL + MARGIN) -> tuple[Node, int]:
    """``taker`` once one took over, which must be ``within`` seconds of the kill (the lease ttl and a margin)."""
    while time.monotonic() < killed + within:
        found = taker(b, c)
        if found is not None:
            return found
    raise AssertionError(f"no node ran the plugins within {within:g} s of the kill")
