"""The texts of the agents' controls (kinds beside those of :mod:`.texts`), also
through the ``agent_reply`` hook first. The kinds and their ``details``:

``started``            task (a queued task whose work starts now)
``refused``            sender, role, allowed (the roles and ids that may give work)
``cancelled``          task, by (who stopped it), output (the last lines)
``nothing_to_cancel``  sender, queued
``nothing_to_retry``   (none)
``retry``              task, sender (a task given again: ``/retry``, a reply to a help request)
``reset``              was (the status before), task (the task still running, or None)
``steered``            task, sender, how (``stdin``: written to the worker; ``restart``: run again;
                       ``queued``: kept with the task, which has not started yet)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chatbus import Agent

from .texts import shorten

__all__ = ["CONTROL_KINDS", "control_reply"]


def _refused(agent: Agent, d: Mapping[str, Any]) -> str:
    allowed = ", ".join(d.get("allowed") or ()) or "nobody"
    return (
        f"Sorry {d.get('sender', 'there')}, I only take work and orders from these roles and people: {allowed}. "
        f"Your role is {d.get('role')!r}, so ask one of them, or a manager to let you "
        f"(chatbus agents hire {agent.name} {agent.role} --allow ...)."
    )


def _cancelled(agent: Agent, d: Mapping[str, Any]) -> str:
    by = f" as {d['by']} asked" if d.get("by") else ""
    head = (
        f"⏹️ I cancelled this task{by}: {shorten(d['task'])}. My worker is stopped; /retry {agent.name} starts it again."
    )
    return f"{head}\n{d['output']}" if d.get("output") else head


def _nothing_to_cancel(agent: Agent, d: Mapping[str, Any]) -> str:
    queued = int(d.get("queued") or 0)
    return "I'm not running a task right now, so there is nothing to stop." + (
        f" {queued} task{'s' if queued != 1 else ''} wait in my queue." if queued else ""
    )


def _retry(agent: Agent, d: Mapping[str, Any]) -> str:
    return f"🔁 Trying again: {shorten(d['task'])}."


def _reset(agent: Agent, d: Mapping[str, Any]) -> str:
    if d.get("task"):
        return f"Reset: I'm still working on this task: {shorten(d['task'])}."
    return "Reset: I'm idle and ready for a task."


def _steered(agent: Agent, d: Mapping[str, Any]) -> str:
    if d.get("how") == "stdin":
        return f"I've passed your reply on to my work on this task: {shorten(d['task'])}."
    if d.get("how") == "queued":
        return f"📝 Noted: I'll start this queued task with your reply in mind: {shorten(d['task'])}."
    return f"🔁 Starting this task again with your reply: {shorten(d['task'])}."


_BUILDERS: dict[str, Callable[[Agent, Mapping[str, Any]], str]] = {
    "started": lambda agent, d: f"▶️ Starting this task now: {shorten(d['task'])}.",
    "refused": _refused,
    "cancelled": _cancelled,
    "nothing_to_cancel": _nothing_to_cancel,
    "nothing_to_retry": lambda agent, d: "I have no failed task to try again.",
    "retry": _retry,
    "reset": _reset,
    "steered": _steered,
}

#: The reply kinds of the controls.
CONTROL_KINDS: tuple[str, ...] = tuple(_BUILDERS)


def control_reply(agent: Agent, kind: str, details: Mapping[str, Any]) -> str | None:
    """The built-in text for a control ``kind``, or None for another kind."""
    builder = _BUILDERS.get(kind)
    return builder(agent, details) if builder is not None else None
