"""The default texts agents post, one function per reply kind.

Every text goes through the ``agent_reply`` hook first; these are what the
built-in implementation answers. The kinds and their ``details``:

``greeting``     sender
``unclear``      sender
``acknowledge``  task, imperative, sender
``queued``       task, imperative, position (1 = next), current (the task being worked on)
``status``       status, task, progress, queued (how many tasks wait)
``completed``    task, output (the last lines, may be empty), files (names of the files
                 attached), not_attached (a line for each file named but not attached)
``help``         task, issue, progress (also posted by ``AgentsPlugin.request_help``); for
                 a failed command also files and not_attached, as for ``completed``
``timeout``      task, seconds, output
``interrupted``  task
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chatbus import Agent

__all__ = ["KINDS", "default_reply", "duration", "shorten"]

_TASK_SHOWN = 200


def shorten(text: str, limit: int = _TASK_SHOWN) -> str:
    """One line of at most ``limit`` characters, for quoting a task in a reply."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def duration(seconds: float) -> str:
    """``45 seconds`` or ``10 minutes``: a wait or a run time, as people say it."""
    if seconds < 120:
        whole = max(1, round(seconds))
        return f"{whole} second{'s' if whole != 1 else ''}"
    minutes = round(seconds / 60)
    return f"{minutes} minutes"


def _plan(task: str, imperative: bool) -> str:
    return shorten(task) if imperative else f"work on this: {shorten(task)}"


def _with_output(head: str, output: str) -> str:
    return f"{head}\n{output}" if output else head


def _greeting(agent: Agent, d: Mapping[str, Any], template: str) -> str:
    values = {"sender": d.get("sender", "there"), "agent": agent.name, "role": agent.role}
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return f"Hi {values['sender']}! I'm {agent.name} ({agent.role})."


def _unclear(agent: Agent, d: Mapping[str, Any]) -> str:
    return (
        f"I'm not sure what you need, {d.get('sender', 'there')}. Tell me what to do, like "
        f'"@{agent.name} please fix the login bug", or ask "@{agent.name} status?".'
    )


def _acknowledge(agent: Agent, d: Mapping[str, Any]) -> str:
    return f"Got it! I'll {_plan(d['task'], d.get('imperative', True))}."


def _queued(agent: Agent, d: Mapping[str, Any]) -> str:
    position = int(d["position"])
    place = "next in my queue" if position == 1 else f"number {position} in my queue"
    current = d.get("current")
    busy = f"I'm busy with {shorten(current)} right now" if current else "I'm busy right now"
    return f"{busy}. I've queued {shorten(d['task'])}: it's {place}."


def _status(agent: Agent, d: Mapping[str, Any]) -> str:
    status, task, progress = d.get("status"), d.get("task"), d.get("progress")
    queued = int(d.get("queued") or 0)
    waiting = f" {queued} more task{'s' if queued != 1 else ''} queued." if queued else ""
    if status == "working" and task:
        done = f" ({progress}% done)" if progress is not None else ""
        return f"I'm working on {shorten(task)}{done}.{waiting}"
    if status == "stuck" and task:
        return f"I'm stuck on {shorten(task)} and have asked the team for help.{waiting}"
    if status == "completed" and task:
        return f"I've completed {shorten(task)} and I'm free for the next task.{waiting}"
    return f"I'm idle: no task right now.{waiting}"


def _with_notes(text: str, d: Mapping[str, Any]) -> str:
    """``text`` and a line for each file the work named that is not attached."""
    return "\n".join([text, *(f"⚠️ {note}" for note in d.get("not_attached") or ())])


def _completed(agent: Agent, d: Mapping[str, Any]) -> str:
    return _with_notes(_with_output(f"✅ Completed: {shorten(d['task'])}", d.get("output") or ""), d)


def _help(agent: Agent, d: Mapping[str, Any]) -> str:
    progress = d.get("progress")
    done = f" ({progress}% done)" if progress is not None else ""
    return _with_notes(f"@team I need help with {shorten(d['task'])}{done}: {d['issue']}", d)


def _timeout(agent: Agent, d: Mapping[str, Any]) -> str:
    head = f"⏹️ Stopped {shorten(d['task'])}: it was still running after {duration(float(d['seconds']))}."
    return _with_output(head, d.get("output") or "")


def _interrupted(agent: Agent, d: Mapping[str, Any]) -> str:
    return (
        f"⚠️ I was working on {shorten(d['task'])} when the server stopped, so it was interrupted. "
        f"Mention me with the task again if it still needs doing."
    )


_BUILDERS: dict[str, Callable[[Agent, Mapping[str, Any]], str]] = {
    "unclear": _unclear,
    "acknowledge": _acknowledge,
    "queued": _queued,
    "status": _status,
    "completed": _completed,
    "help": _help,
    "timeout": _timeout,
    "interrupted": _interrupted,
}

#: Every reply kind the built-in agents post.
KINDS: tuple[str, ...] = ("greeting", *_BUILDERS)


def default_reply(agent: Agent, kind: str, details: Mapping[str, Any], *, greeting: str) -> str | None:
    """The built-in text for ``kind``, or None for a kind this module does not know."""
    if kind == "greeting":
        return _greeting(agent, details, greeting)
    builder = _BUILDERS.get(kind)
    return builder(agent, details) if builder is not None else None
