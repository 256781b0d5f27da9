"""A plugin that replaces how some agents do their work: planners write checklists.

It implements the ``agent_work`` hook. For an agent whose role is
``planner`` it does the task itself, in Python, instead of running a worker
command: it splits the task into steps and writes them as a checklist to
``TODO.md`` in the agent's working directory, reporting progress step by
step, and attaches that file to its completion message. For every other agent it returns ``None``, so the next implementation
(chatbus's built-in command runner) does the work. An LLM call or a request
to a remote service would go in the same place.
"""

from __future__ import annotations

import asyncio
import re

from chatbus import hookimpl
from chatbus.plugins.agents import Work, WorkResult

__all__ = ["TodoPlanner", "steps_of"]

_SEPARATORS = re.compile(r"\s*(?:,|;|\band then\b|\bthen\b|\band\b)\s*", re.IGNORECASE)


def steps_of(task: str) -> list[str]:
    """``plan the release: tag it, build and announce`` -> ``["tag it", "build", "announce"]``."""
    _, colon, rest = task.partition(":")
    text = rest if colon and rest.strip() else task
    return [step.strip(" .") for step in _SEPARATORS.split(text) if step.strip(" .")]


class TodoPlanner:
    """Does the work of agents whose role is ``role`` (default ``planner``)."""

    def __init__(self, role: str = "planner") -> None:
        self.role = role

    @hookimpl
    async def agent_work(self, work: Work) -> WorkResult | None:
        if work.agent.role != self.role:
            return None
        steps = steps_of(work.task)
        if not steps:
            return WorkResult(False, error="I could not find any steps in that task; list them with commas")
        checklist: list[str] = []
        for number, step in enumerate(steps, start=1):
            checklist.append(f"- [ ] {step}")
            await work.progress(100 * number // len(steps))
            await asyncio.sleep(0)  # a real planner would think here
        text = "\n".join(checklist)
        (work.workdir / "TODO.md").write_text(f"# {work.task}\n\n{text}\n", encoding="utf-8")
        work.attach("TODO.md")
        return WorkResult(True, output=text)
