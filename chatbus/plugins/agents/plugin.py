"""The built-in ``agents`` plugin: agents answer mentions and do their tasks.

When a person's message mentions agents in the roster, each of them answers
once, as itself, replying to that message: an acknowledgement for a task, its
status for a status question, a greeting otherwise. Tasks go into the agent's
queue and are done one at a time, in order, by the ``agent_work`` hook (the
built-in implementation runs the agent's worker command).

A task still running ``agents.stuck_after`` seconds after it started makes
the agent ``stuck`` with a help request; at ``agents.timeout`` it is stopped.
The task in progress and the queue are kept in the store (state key
``agents.work``), so a task interrupted by a restart is reported when the
server starts again and queued tasks carry on.

The roster may change under a running server (``chatbus agents hire`` writes
to the same database): it is re-read when a message mentions a name the
server does not know as an agent, and every ``agents.roster_refresh``
seconds; an agent that is no longer in the roster stops its work then.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatbus.core.errors import ChatbusError, InvalidMessage
from chatbus.core.hookspecs import hookimpl
from chatbus.core.message import Agent, Message

from .intent import understand
from .texts import default_reply
from .work import Work, WorkResult, run_command

if TYPE_CHECKING:
    from chatbus.core.hub import Hub

__all__ = ["STATE_KEY", "AgentsPlugin", "Job"]

log = logging.getLogger("chatbus.agents")

#: The store state key under which the agents' work in progress is kept.
STATE_KEY = "agents.work"

NO_WORKER = (
    "I have no worker command, so I cannot do tasks yet. Give me one with "
    '`chatbus agents hire NAME ROLE --command "PROGRAM ARGS {task}"`'
)


@dataclass(frozen=True, slots=True)
class Job:
    """A task someone gave an agent, and where to answer about it."""

    task: str
    message_id: int | None = None
    room: str = "general"
    sender: str | None = None
    imperative: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        return cls(
            task=str(data["task"]),
            message_id=data.get("message_id"),
            room=str(data.get("room") or "general"),
            sender=data.get("sender"),
            imperative=bool(data.get("imperative", True)),
        )


@dataclass
class _Desk:
    """One agent's work: the job in hand, the queue, and the task doing it."""

    current: Job | None = None
    pending: deque[Job] = field(default_factory=deque)
    runner: asyncio.Task[None] | None = None
    interrupted: Job | None = None


def _duration(seconds: float) -> str:
    if seconds < 120:
        whole = max(1, round(seconds))
        return f"{whole} second{'s' if whole != 1 else ''}"
    return f"{round(seconds / 60)} minutes"


def _workdir_name(name: str) -> str:
    """A directory name for an agent; ``.`` and ``..`` never leave the root."""
    return name if name.strip(".") else name.replace(".", "_")


class AgentsPlugin:
    """Registered as ``agents``; configured by the ``agents.*`` settings."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.settings = hub.settings.agents
        self._desks: dict[str, _Desk] = {}

    # replaceable behaviour -----------------------------------------------------
    @hookimpl(trylast=True)
    def agent_reply(self, agent: Agent, kind: str, details: dict[str, Any]) -> str | None:
        return default_reply(agent, kind, details, greeting=self.settings.greeting)

    @hookimpl(trylast=True)
    async def agent_work(self, work: Work) -> WorkResult:
        if not work.agent.command:
            return WorkResult(False, error=NO_WORKER)
        return await run_command(work, work.agent.command, kill_grace=self.settings.kill_grace)

    # lifecycle -----------------------------------------------------------------
    @hookimpl
    async def on_startup(self, hub: Hub) -> None:
        self._desks.clear()
        await self._load(hub)
        hub.spawn(self._resume(hub), name="chatbus-agents-resume", background=True)
        hub.spawn(self._refresh_roster(hub), name="chatbus-agents-roster", background=True)

    async def _load(self, hub: Hub) -> None:
        raw = await hub.store.get_state(STATE_KEY)
        if not raw:
            return
        try:
            saved = json.loads(raw)
            for name, entry in saved.get("agents", {}).items():
                desk = _Desk()
                if entry.get("current"):
                    desk.interrupted = Job.from_dict(entry["current"])
                desk.pending.extend(Job.from_dict(job) for job in entry.get("pending", ()))
                self._desks[name] = desk
        except (ValueError, KeyError, TypeError, AttributeError):
            log.error("the saved work of the agents could not be read; starting with empty queues")
            self._desks.clear()

    async def _save(self) -> None:
        """Keep the job in hand and the queues in the store, for the next start."""
        state = {
            "version": 1,
            "agents": {
                name: {
                    "current": asdict(desk.current) if desk.current else None,
                    "pending": [asdict(job) for job in desk.pending],
                }
                for name, desk in self._desks.items()
                if desk.current or desk.pending
            },
        }
        try:
            await self.hub.store.set_state(STATE_KEY, json.dumps(state) if state["agents"] else None)
        except ChatbusError as exc:
            log.error("could not save the agents' work: %s", exc)

    async def _resume(self, hub: Hub) -> None:
        """Once clients can hear it: report interrupted tasks, carry on with the queues."""
        await hub.wait_started()
        for name, desk in list(self._desks.items()):
            job, desk.interrupted = desk.interrupted, None
            agent = hub.agents.get(name)
            if agent is None:
                continue
            if job is not None:
                log.warning("agent %s: task interrupted by a restart: %s", name, job.task)
                if desk.current is None:
                    await hub.set_agent_status(name, "idle", None, None)
                await self._reply(agent, "interrupted", {"task": job.task}, reply_to=job.message_id, room=job.room)
            if desk.current is None and desk.pending:
                desk.current = desk.pending.popleft()
                self._start(name, desk)
        self._forget_missing(hub)
        await self._save()

    async def _refresh_roster(self, hub: Hub) -> None:
        await hub.wait_started()
        while True:
            await asyncio.sleep(self.settings.roster_refresh)
            try:
                await hub.reload_agents()
            except ChatbusError as exc:
                log.warning("could not re-read the roster: %s", exc)
                continue
            if self._forget_missing(hub):
                await self._save()

    def _forget_missing(self, hub: Hub) -> bool:
        """Stop the work of agents no longer in the roster; True when any was dropped."""
        gone = [name for name in self._desks if name not in hub.agents]
        for name in gone:
            desk = self._desks.pop(name)
            if desk.runner is not None:
                log.info("agent %s left the roster; stopping its work", name)
                desk.runner.cancel()
        return bool(gone)

    # answering -----------------------------------------------------------------
    @hookimpl
    async def on_message(self, message: Message, hub: Hub) -> None:
        if message.kind != "human" or message.command is not None or not message.mentions:
            return
        if any(name not in hub.agents for name in message.mentions):
            try:
                await hub.reload_agents()
            except ChatbusError as exc:
                log.warning("could not re-read the roster: %s", exc)
        for agent in self._mentioned(message.mentions, hub.agents):
            try:
                await self._answer(agent, message)
            except ChatbusError as exc:
                log.warning("agent %s could not answer message %d: %s", agent.name, message.id, exc)

    @staticmethod
    def _mentioned(mentions: Iterable[str], roster: dict[str, Agent]) -> list[Agent]:
        """The agents mentioned, each once, in order; names match exactly, else ignoring case."""
        folded: dict[str, str] = {}
        for known in roster:
            folded.setdefault(known.lower(), known)
        found: dict[str, Agent] = {}
        for mention in mentions:
            name = mention if mention in roster else folded.get(mention.lower())
            if name is not None and name not in found:
                found[name] = roster[name]
        return list(found.values())

    async def _answer(self, agent: Agent, message: Message) -> None:
        intent = understand(message.text)
        if intent.kind == "task" and intent.task:
            job = Job(intent.task, message.id, message.room, message.sender, intent.imperative)
            await self._take(agent, job, message)
            return
        if intent.kind == "status":
            kind, details = "status", self._status_details(agent.name)
        else:
            kind, details = ("greeting" if intent.kind == "greeting" else "unclear"), {"sender": message.sender}
        await self._reply(agent, kind, details, message=message, reply_to=message.id, room=message.room)

    def _status_details(self, name: str) -> dict[str, Any]:
        agent = self.hub.agents.get(name)
        desk = self._desks.get(name)
        details: dict[str, Any] = {
            "status": agent.status if agent else "idle",
            "task": agent.current_task if agent else None,
            "progress": agent.progress if agent else None,
            "queued": len(desk.pending) if desk else 0,
        }
        if desk is not None and desk.current is not None and details["task"] != desk.current.task:
            # The job is claimed but its worker has not reported yet.
            details.update(status="working", task=desk.current.task, progress=None)
        return details

    def queue(self, name: str) -> list[str]:
        """The tasks waiting for ``name``, next first (for commands and tests)."""
        desk = self._desks.get(name)
        return [job.task for job in desk.pending] if desk else []

    async def _take(self, agent: Agent, job: Job, message: Message) -> None:
        desk = self._desks.setdefault(agent.name, _Desk())
        details: dict[str, Any] = {"task": job.task, "imperative": job.imperative, "sender": job.sender}
        if desk.current is None and not desk.pending:
            desk.current = job  # claimed before any await, so a second task queues behind it
            await self._save()
            await self._reply(agent, "acknowledge", details, message=message, reply_to=job.message_id, room=job.room)
            self._start(agent.name, desk)
            return
        desk.pending.append(job)
        details.update(position=len(desk.pending), current=desk.current.task if desk.current else None)
        await self._save()
        await self._reply(agent, "queued", details, message=message, reply_to=job.message_id, room=job.room)
        if desk.current is None and desk.runner is None and desk.interrupted is None:
            desk.current = desk.pending.popleft()
            self._start(agent.name, desk)

    async def _reply(
        self,
        agent: Agent,
        kind: str,
        details: dict[str, Any],
        *,
        message: Message | None = None,
        reply_to: int | None = None,
        room: str = "general",
    ) -> Message | None:
        """Post the agent's text for ``kind`` (from ``agent_reply``); an empty text posts nothing."""
        try:
            text = await self.hub.hooks.agent_reply(agent, kind, details, message)
        except Exception:
            log.exception("agent_reply failed for %s; using the built-in text", kind)
            text = None
        if text is None:
            text = default_reply(agent, kind, details, greeting=self.settings.greeting)
        if not text or not text.strip():
            return None
        return await self.hub.send(text, sender=agent.name, reply_to=reply_to, room=room)

    # working -------------------------------------------------------------------
    def _start(self, name: str, desk: _Desk) -> None:
        if desk.runner is None and self.hub.running:
            desk.runner = self.hub.spawn(self._run(name, desk), name=f"chatbus-agent-{name}", background=True)

    async def _run(self, name: str, desk: _Desk) -> None:
        """Do the agent's jobs one at a time, in order, until its queue is empty."""
        try:
            while desk.current is not None and self.hub.running:
                job = desk.current
                try:
                    await self._work(name, job, desk)
                except InvalidMessage as exc:  # the agent was fired meanwhile
                    log.info("agent %s stopped working: %s", name, exc)
                    return
                except ChatbusError as exc:
                    log.warning("agent %s: %s", name, exc)
                except Exception:
                    log.exception("agent %s: the task failed unexpectedly", name)
                if desk.current is job:
                    await self._advance(desk)
        finally:
            desk.runner = None

    async def _advance(self, desk: _Desk) -> None:
        """The job in hand is over: take the next one and save, before announcing
        the outcome, so a stop right after never reports it as interrupted."""
        desk.current = desk.pending.popleft() if desk.pending else None
        await asyncio.shield(self._save())

    def _workdir(self, name: str) -> Path:
        path = Path(self.settings.workdir).expanduser().resolve() / _workdir_name(name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def _work(self, name: str, job: Job, desk: _Desk) -> None:
        hub = self.hub
        agent = hub.agents.get(name)
        if agent is None:
            raise InvalidMessage(f"There is no agent called {name!r}.")
        agent = await hub.set_agent_status(name, "working", job.task, None)

        async def on_progress(percent: int) -> None:
            current = hub.agents.get(name)
            status = current.status if current is not None and current.status == "stuck" else "working"
            await hub.set_agent_status(name, status, job.task, percent)

        try:
            workdir = self._workdir(name)
        except OSError as exc:
            log.error("agent %s: cannot create its working directory: %s", name, exc)
            await self._advance(desk)
            await hub.request_help(
                name,
                task=job.task,
                issue="I cannot create my working directory; check agents.workdir and its permissions",
                reply_to=job.message_id,
                room=job.room,
            )
            return
        work = Work(
            hub=hub,
            agent=agent,
            task=job.task,
            workdir=workdir,
            message_id=job.message_id,
            room=job.room,
            output_lines=self.settings.output_lines,
            output_chars=self.settings.output_chars,
            on_progress=on_progress,
        )
        doing = asyncio.ensure_future(self._do(work))
        try:
            done, _ = await asyncio.wait({doing}, timeout=self.settings.stuck_after)
            if not done:
                tail = work.tail() or work.tail(errors=True)
                issue = f"it is still running after {_duration(self.settings.stuck_after)}"
                issue += f"; the last output was:\n{tail}" if tail else " and has printed nothing"
                await hub.request_help(
                    name,
                    task=job.task,
                    issue=issue,
                    progress=work.last_progress,
                    reply_to=job.message_id,
                    room=job.room,
                )
                done, _ = await asyncio.wait({doing}, timeout=self.settings.timeout - self.settings.stuck_after)
            if not done:
                doing.cancel()
                await asyncio.gather(doing, return_exceptions=True)
                log.warning("agent %s: stopped %r after %.0f s", name, job.task, self.settings.timeout)
                await self._advance(desk)
                await hub.set_agent_status(name, "stuck", job.task, work.last_progress)
                details = {"task": job.task, "seconds": self.settings.timeout, "output": work.tail()}
                await self._reply(agent, "timeout", details, reply_to=job.message_id, room=job.room)
                return
        except asyncio.CancelledError:
            doing.cancel()
            await asyncio.gather(doing, return_exceptions=True)
            raise
        result = doing.result()
        await self._advance(desk)
        if result.ok:
            await hub.set_agent_status(name, "completed", job.task, 100)
            details = {"task": job.task, "output": result.output}
            await self._reply(agent, "completed", details, reply_to=job.message_id, room=job.room)
        else:
            await hub.request_help(
                name,
                task=job.task,
                issue=result.error or "my work failed without saying why",
                progress=work.last_progress,
                reply_to=job.message_id,
                room=job.room,
            )

    async def _do(self, work: Work) -> WorkResult:
        """Ask ``agent_work`` to do the job; a plugin's failure becomes a help request."""
        try:
            result = await self.hub.hooks.agent_work(work)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("agent_work failed for agent %s", work.agent.name)
            return WorkResult(False, error="my worker failed unexpectedly; the server log has the details")
        if isinstance(result, WorkResult):
            return result
        if result is None:
            return WorkResult(False, error=NO_WORKER)
        log.error("agent_work returned %r instead of a WorkResult", result)
        return WorkResult(False, error="my worker gave an answer I do not understand; the server log has the details")
