"""Doing an agent's task: the ``Work`` handed to ``agent_work``, its result,
and the built-in way of doing it, a worker command run as a subprocess.

The command is an argument list; ``{task}``, ``{agent}`` and ``{workdir}`` in
any argument are replaced (in one pass, so a task that contains ``{agent}``
stays as typed). It runs with ``asyncio.create_subprocess_exec`` in the
agent's working directory, never through a shell, in a session of its own so
that stopping it stops everything it started; a keeper (:mod:`.keeper`) started
beside it stops it too when the server dies without doing so. The task is also in the
environment as ``CHATBUS_TASK`` (with ``CHATBUS_AGENT`` and
``CHATBUS_WORKDIR``).

Output is read as it comes: a line ``PROGRESS <0-100>`` updates the agent's
progress, a line ``ATTACH <path>`` names a file of the working directory to
attach to the completion message (see :mod:`.attach`), every other line is
kept in a bounded tail for the completion message or the help request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from chatbus import Agent

if TYPE_CHECKING:
    from chatbus import Hub

__all__ = ["CONVERSATION_FILE", "Work", "WorkResult", "expand_command", "run_command"]

log = logging.getLogger("chatbus.agents")

_PROGRESS = re.compile(r"^\s*PROGRESS\s+(\d{1,3})(?:\.\d+)?\s*%?\s*$")
_ATTACH = re.compile(r"^ATTACH[ \t]+(.*?)[ \t\r]*$")
#: At most this many files named by one task are remembered.
MAX_NAMED_FILES = 100
_PLACEHOLDER = re.compile(r"\{(task|agent|workdir)\}")
_MAX_LINE = 500
_READ_SIZE = 65536
_PIPE_GRACE = 2.0


@dataclass(frozen=True, slots=True)
class WorkResult:
    """How a task ended. ``ok`` with ``output`` to show, or not ok with an
    ``error`` that becomes the issue of the agent's help request."""

    ok: bool
    output: str = ""
    error: str = ""
    exit_code: int | None = None


class Work:
    """One task for one agent, as ``agent_work`` implementations receive it.

    ``agent``, ``task``, ``workdir`` (created, the agent's own directory),
    ``hub`` and ``message_id`` (the message that asked, or None) describe
    the job. ``await work.progress(40)`` reports progress to every client;
    ``work.output(line)`` keeps a line for the tail shown when the task ends
    or gets stuck; ``work.attach(path)`` names a file of ``workdir`` to attach
    to the completion message.
    """

    def __init__(
        self,
        *,
        hub: Hub,
        agent: Agent,
        task: str,
        workdir: Path,
        message_id: int | None = None,
        room: str = "general",
        output_lines: int = 10,
        output_chars: int = 1500,
        on_progress: Callable[[int], Awaitable[None]] | None = None,
        context: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.hub = hub
        self.agent = agent
        self.task = task
        self.workdir = workdir
        self.message_id = message_id
        self.room = room
        self.output_chars = output_chars
        self.last_progress: int | None = None
        self._lines: deque[str] = deque(maxlen=output_lines)
        self._errors: deque[str] = deque(maxlen=output_lines)
        self._on_progress = on_progress
        #: The files named for the completion message, in order, each once.
        self.attached: list[str] = []
        #: The conversation about the task so far (replies), ``(sender, text)``, oldest first.
        self.context = tuple(context)
        #: Called after each line of output or progress (the live status message listens).
        self.on_change: Callable[[], None] | None = None
        self._recent: deque[str] = deque(maxlen=50)
        self._input: asyncio.StreamWriter | None = None

    def recent(self, count: int) -> list[str]:
        """The last ``count`` lines of output of either stream, in order."""
        return list(self._recent)[-count:] if count > 0 else []

    async def send_input(self, text: str) -> bool:
        """Write ``text`` and a newline to the worker's standard input; False when it takes none."""
        writer = self._input
        if writer is None or writer.is_closing():
            return False
        try:
            writer.write(text.rstrip("\n").encode("utf-8") + b"\n")
            await writer.drain()
        except (ConnectionError, OSError):
            return False
        return True

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    async def progress(self, percent: int) -> None:
        """Report progress (0-100); repeated values are not sent again."""
        percent = max(0, min(100, int(percent)))
        if percent == self.last_progress:
            return
        self.last_progress = percent
        self._changed()
        if self._on_progress is not None:
            await self._on_progress(percent)

    def attach(self, path: str | os.PathLike[str]) -> None:
        """Attach a file of ``workdir`` (relative to it, or absolute inside it)
        to the completion message; it is read when the task is done."""
        given = os.fspath(path)
        if given.strip() and given not in self.attached and len(self.attached) < MAX_NAMED_FILES:
            self.attached.append(given)

    def output(self, line: str, *, error: bool = False) -> None:
        """Keep one line of output (``error=True`` for the error stream)."""
        line = line.rstrip("\r\n")
        if len(line) > _MAX_LINE:
            line = line[: _MAX_LINE - 1] + "…"
        (self._errors if error else self._lines).append(line)
        if line.strip():
            self._recent.append(line)
            self._changed()

    def tail(self, *, errors: bool = False) -> str:
        """The last lines kept, bounded to ``output_chars`` characters (the end is kept)."""
        lines = [line for line in (self._errors if errors else self._lines) if line.strip()]
        text = "\n".join(lines)
        if len(text) > self.output_chars:
            text = "…" + text[-(self.output_chars - 1) :]
        return text


def expand_command(command: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """Replace ``{task}``, ``{agent}`` and ``{workdir}`` in each argument, in one pass."""
    return [_PLACEHOLDER.sub(lambda match: values[match.group(1)], part) for part in command]


def _signal_group(process: asyncio.subprocess.Process, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


async def _stop(process: asyncio.subprocess.Process, grace: float) -> None:
    """Stop the command and everything it started: SIGTERM, then SIGKILL after ``grace``."""
    _signal_group(process, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        pass
    _signal_group(process, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), 5.0)


async def _pump(stream: asyncio.StreamReader, work: Work, *, error: bool) -> None:
    """Read one output stream as it comes, line by line, however long the lines."""

    async def line(raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace")
        match = _PROGRESS.match(text)
        if match is not None and not error:
            await work.progress(int(match.group(1)))
            return
        named = _ATTACH.match(text)
        if named is not None and not error:
            work.attach(named.group(1))
            return
        log.debug("agent %s %s: %s", work.agent.name, "stderr" if error else "stdout", text.rstrip())
        work.output(text, error=error)

    buffer = b""
    while True:
        chunk = await stream.read(_READ_SIZE)
        if not chunk:
            break
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            await line(raw)
        if len(buffer) > _READ_SIZE:  # a very long line: keep its start, drop the rest
            await line(buffer[:_MAX_LINE])
            buffer = b""
    if buffer:
        await line(buffer)


#: Where a worker run again with the conversation about its task finds it, in its working directory.
CONVERSATION_FILE = ".chatbus/conversation.txt"


def _conversation(work: Work) -> dict[str, str]:
    """The environment telling a worker the conversation about its task: the file
    holding it (``sender: text`` blocks, oldest first) and the latest reply."""
    if not work.context:
        return {}
    path = work.workdir / CONVERSATION_FILE
    try:
        path.parent.mkdir(exist_ok=True)
        path.write_text("".join(f"{sender}: {text}\n\n" for sender, text in work.context), encoding="utf-8")
    except OSError as exc:
        log.warning("agent %s: cannot write the conversation for its worker: %s", work.agent.name, exc)
        return {"CHATBUS_REPLY": work.context[-1][1]}
    return {"CHATBUS_CONVERSATION": str(path), "CHATBUS_REPLY": work.context[-1][1]}


async def _start(work: Work, argv: list[str]) -> asyncio.subprocess.Process | WorkResult:
    """Start the worker process, or the failure that says why it could not start."""
    env = dict(os.environ)
    env.update(
        CHATBUS_TASK=work.task,
        CHATBUS_AGENT=work.agent.name,
        CHATBUS_WORKDIR=str(work.workdir),
        PYTHONUNBUFFERED="1",
    )
    env.update(_conversation(work))
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            cwd=work.workdir,
            env=env,
            stdin=asyncio.subprocess.PIPE if work.agent.stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        return WorkResult(
            False, error=f"my worker command {argv[0]!r} was not found; install it or hire me with another --command"
        )
    except PermissionError:
        return WorkResult(False, error=f"my worker command {argv[0]!r} is not allowed to run; check its permissions")
    except OSError as exc:
        log.error("agent %s could not start %r: %s", work.agent.name, argv[0], exc)
        return WorkResult(False, error=f"my worker command {argv[0]!r} could not start; the server log says why")


#: The program started beside each worker that stops it when the server dies (see :mod:`.keeper`).
_KEEPER = Path(__file__).with_name("keeper.py")


async def _keep(process: asyncio.subprocess.Process, grace: float) -> tuple[asyncio.subprocess.Process, int] | None:
    """Start the worker's keeper; it and the write end of its pipe, or None when it cannot start."""
    if not sys.executable:
        return None
    read, write = os.pipe()
    try:
        keeper = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", str(_KEEPER), str(read), str(process.pid), str(grace),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            pass_fds=(read,), start_new_session=True,
        )  # fmt: skip
    except OSError as exc:
        os.close(write)
        log.warning(
            "could not start the keeper of worker %d (a crash of the server would leave it): %s", process.pid, exc
        )
        return None
    except BaseException:
        os.close(write)  # the keeper, if it started, stops the worker: it is being stopped anyway
        raise
    finally:
        os.close(read)
    return keeper, write


async def _release(kept: tuple[asyncio.subprocess.Process, int] | None) -> None:
    """Tell the keeper the worker is done with (the server is alive), and let it go."""
    if kept is None:
        return
    keeper, write = kept
    with contextlib.suppress(OSError):
        os.write(write, b"x")
    os.close(write)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(keeper.wait(), 5.0)


async def run_command(work: Work, command: Sequence[str], *, kill_grace: float = 5.0) -> WorkResult:
    """Run ``command`` for ``work`` and wait for it; cancelling this stops the command."""
    values = {"task": work.task, "agent": work.agent.name, "workdir": str(work.workdir)}
    argv = expand_command(command, values)
    started = await _start(work, argv)
    if isinstance(started, WorkResult):
        return started
    process = started
    log.info("agent %s started %r (pid %d) for: %s", work.agent.name, argv[0], process.pid, work.task)
    assert process.stdout is not None and process.stderr is not None
    work._input = process.stdin
    readers = [
        asyncio.ensure_future(_pump(process.stdout, work, error=False)),
        asyncio.ensure_future(_pump(process.stderr, work, error=True)),
    ]
    kept = None
    try:
        kept = await _keep(process, kill_grace)
        code = await process.wait()
        # Output still in the pipes; a leftover child holding them open is stopped.
        _done, pending = await asyncio.wait(readers, timeout=_PIPE_GRACE)
        if pending:
            _signal_group(process, signal.SIGKILL)
            await asyncio.wait(pending, timeout=_PIPE_GRACE)
    except asyncio.CancelledError:
        log.info("agent %s: stopping %r (pid %d)", work.agent.name, argv[0], process.pid)
        await _stop(process, kill_grace)
        raise
    finally:
        work._input = None
        if process.stdin is not None:
            process.stdin.close()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await _release(kept)
    for reader in readers:
        if not reader.cancelled() and reader.exception() is not None:
            log.error("agent %s: reading output failed", work.agent.name, exc_info=reader.exception())
    log.info("agent %s: %r exited with status %d", work.agent.name, argv[0], code)
    if code == 0:
        return WorkResult(True, output=work.tail(), exit_code=0)
    ending = f"exit status {code}" if code > 0 else f"killed by signal {-code}"
    errors = work.tail(errors=True) or work.tail()
    issue = f"{errors}\n({ending})" if errors else f"my command ended with {ending} without printing an error"
    return WorkResult(False, output=work.tail(), error=issue, exit_code=code)
