"""Stopping, steering and trusting agents.

- who may give an agent work (:func:`may_give_work`): the roles and user ids of
  its roster entry's ``allow``, else people whose role is in ``agents.allow_roles``;
- ``/cancel NAME`` and "@alice stop" stop the running task (its worker's process
  group: SIGTERM, ``agents.kill_grace``, SIGKILL) and say so;
- ``/retry NAME`` gives the agent its last failed (or stopped) task again;
- ``/reset NAME`` clears ``stuck``;
- a reply to a running task's messages or to a help request reaches the worker
  (:meth:`Control.steer`): on its standard input when its roster entry says
  ``stdin``, otherwise the task runs again with the conversation.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chatbus import Agent, Message

from .jobs import Desk, Job

if TYPE_CHECKING:
    from .plugin import AgentsPlugin

__all__ = ["COMMANDS", "Control", "is_stop", "may_give_work"]

#: The chat commands this module answers.
COMMANDS = frozenset({"cancel", "retry", "reset"})

_MENTION = re.compile(r"@[\w.-]+")
_STOP_VERBS = frozenset({"stop", "cancel", "abort", "halt"})
#: Words said around a stop that leave it a stop ("can you stop what you're doing?"), not a task.
_FILLER = frozenset({"please", "pls", "now", "right", "just", "ok", "okay", "hey", "can", "could", "would", "will"})
#: What may follow the verb and still mean the agent's own work ("stop working on that"), not a task
#: ("stop the server", "cancel the subscription").
_OWN_WORK = frozenset(
    [
        "it",
        "that",
        "this",
        "the",
        "your",
        "you",
        "re",
        "are",
        "were",
        "what",
        "doing",
        "working",
        "work",
        "on",
        "task",
        "job",
        "current",
        "running",
        "everything",
        "all",
        "of",
        "immediately",
    ]
)


def is_stop(text: str) -> bool:
    """True for "@alice stop", "@alice please cancel that!", "@alice can you stop what you're doing?" and
    the like; False for a task that starts with a stop verb ("@alice stop the staging server")."""
    words = re.sub(r"[^\w\s]", " ", _MENTION.sub(" ", text).lower()).split()
    while words and (words[0] in _FILLER or words[0] == "you"):
        words = words[1:]
    if not words or words[0] not in _STOP_VERBS:
        return False
    return all(word in _OWN_WORK or word in _FILLER for word in words[1:])


def may_give_work(agent: Agent, message: Message, allow_roles: list[str]) -> bool:
    """Whether the sender of ``message`` may give ``agent`` work (and stop or steer it)."""
    allowed = agent.allow if agent.allow is not None else allow_roles
    return message.sender in allowed or message.sender_role in allowed


class Control:
    """The agents plugin's controls (see the module docstring)."""

    def __init__(self, plugin: AgentsPlugin) -> None:
        self.plugin = plugin

    def refusal(self, agent: Agent, message: Message) -> dict[str, Any] | None:
        """The details of a refusal when the sender may not give ``agent`` work, else None."""
        settings = self.plugin.settings
        if may_give_work(agent, message, settings.allow_roles):
            return None
        allowed = list(agent.allow) if agent.allow is not None else list(settings.allow_roles)
        return {"sender": message.display_name or message.sender, "role": message.sender_role, "allowed": allowed}

    async def command(self, message: Message) -> str | None:
        """Answer ``/cancel``, ``/retry`` or ``/reset NAME``: the system's words, or None when the agent answered."""
        hub = self.plugin.hub
        usage = f"Usage: /{message.command} NAME (for example /{message.command} alice)."
        if len(message.command_args) != 1:
            return usage
        name = message.command_args[0].removeprefix("@")
        agent = hub.agents.get(name)
        if agent is None:
            await self.plugin.fresh_roster()
            agent = hub.agents.get(name)
        if agent is None:
            return f"There is no agent called {name!r}. /agents lists them."
        refused = self.refusal(agent, message)
        if refused is not None:
            await self.plugin.reply(agent, "refused", refused, reply_to=message.id, room=message.room)
            return None
        if message.command == "cancel":
            await self.cancel(agent, message)
        elif message.command == "retry":
            await self.retry(agent, message)
        else:
            await self.reset(agent, message)
        return None

    async def cancel(self, agent: Agent, message: Message) -> None:
        """Stop the agent's running task; the runner reports it once the worker is gone."""
        desk = self.plugin.desk(agent.name)
        if desk.current is None or desk.doing is None or desk.doing.done():
            details = {"sender": message.sender, "queued": len(desk.pending)}
            await self.plugin.reply(agent, "nothing_to_cancel", details, reply_to=message.id, room=message.room)
            return
        desk.stopping = "cancelled"
        desk.stopped_by = message.sender
        desk.doing.cancel()

    async def retry(self, agent: Agent, message: Message) -> None:
        desk = self.plugin.desk(agent.name)
        failed = desk.last_failed
        if failed is None:
            await self.plugin.reply(agent, "nothing_to_retry", {}, reply_to=message.id, room=message.room)
            return
        desk.last_failed = None
        job = replace(failed, message_id=message.id, room=message.room, sender=message.sender)
        await self.plugin.take(agent, job, message, kind="retry")

    async def reset(self, agent: Agent, message: Message) -> None:
        """``stuck`` (or any leftover status) back to ``idle``, or to ``working`` when a task still runs."""
        hub = self.plugin.hub
        desk = self.plugin.desk(agent.name)
        running = desk.current is not None and desk.runner is not None
        if running and desk.current is not None:
            progress = desk.work.last_progress if desk.work is not None else None
            await hub.set_agent_status(agent.name, "working", desk.current.task, progress)
        else:
            await hub.set_agent_status(agent.name, "idle", None, None)
        details = {"was": agent.status, "task": desk.current.task if running and desk.current else None}
        await self.plugin.reply(agent, "reset", details, reply_to=message.id, room=message.room)

    def thread_of(self, message: Message) -> tuple[str, Job] | None:
        """The agent and job whose message ``message`` replies to, if any."""
        if message.reply_to is None:
            return None
        for name, desk in self.plugin.desks().items():
            job = desk.threads.get(message.reply_to)
            # Work in hand, queued, or the last that failed: a "thanks" to a finished task is no new work.
            if job is not None and (job is desk.current or job is desk.last_failed or _queued(desk, job)):
                return name, job
        return None

    async def steer(self, agent: Agent, job: Job, message: Message) -> None:
        """Give the worker a reply about ``job`` (see the module docstring)."""
        desk = self.plugin.desk(agent.name)
        running = desk.current is job and desk.doing is not None and not desk.doing.done()
        details: dict[str, Any] = {"task": job.task, "sender": message.sender}
        if _queued(desk, job):  # not started yet: it starts with the reply in its conversation
            noted = replace(job, context=(*job.context, (message.sender, message.text)))
            desk.pending = deque(noted if waiting is job else waiting for waiting in desk.pending)
            desk.threads.update({said: noted for said, known in desk.threads.items() if known is job})
            await self.plugin.save()
            details["how"] = "queued"
            reply = await self.plugin.reply(agent, "steered", details, reply_to=message.id, room=message.room)
            await self.plugin.keep_thread(desk, reply, noted)
            return
        if running and agent.stdin and desk.work is not None and await desk.work.send_input(message.text):
            details["how"] = "stdin"
            reply = await self.plugin.reply(agent, "steered", details, reply_to=message.id, room=message.room)
            await self.plugin.keep_thread(desk, reply, job)
            return
        again = replace(job, context=(*job.context, (message.sender, message.text)))
        if running and desk.doing is not None:
            desk.current = again  # the runner starts it once the worker is gone
            desk.stopping = "restarted"
            desk.doing.cancel()
            await self.plugin.save()
            details["how"] = "restart"
            reply = await self.plugin.reply(agent, "steered", details, reply_to=message.id, room=message.room)
            await self.plugin.keep_thread(desk, reply, again)
            return
        again = replace(again, message_id=message.id, room=message.room)
        await self.plugin.take(agent, again, message, kind="retry")

    @staticmethod
    def remember(desk: Desk, reply: Message | None, job: Job) -> None:
        """A reply to ``reply`` is about ``job``; only the newest messages are kept."""
        if reply is None:
            return
        desk.threads[reply.id] = job
        while len(desk.threads) > 50:
            desk.threads.pop(next(iter(desk.threads)))

    async def halt(self, name: str) -> tuple[str | None, int]:
        """Stop the agent's work and wait until its worker is gone (before ``/fire``): the task it stopped
        (None when none ran) and how many queued tasks were dropped."""
        desk = self.plugin.desks().get(name)
        if desk is None:
            return None, 0
        dropped = len(desk.pending)
        desk.pending.clear()
        runner = desk.runner
        stopped = desk.current.task if desk.current is not None and runner is not None and not runner.done() else None
        if runner is not None:
            desk.stopping = "fired"
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        desk.current = None
        await self.plugin.save()
        return stopped, dropped


def _queued(desk: Desk, job: Job) -> bool:
    """Whether ``job`` itself (not an equal one) waits in the desk's queue."""
    return any(waiting is job for waiting in desk.pending)
