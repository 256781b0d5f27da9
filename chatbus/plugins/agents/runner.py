"""Doing the agents' jobs: one at a time per agent, in order, watched for time.

A job still running ``stuck_after`` seconds after it started makes the agent
``stuck`` with a help request; at ``timeout`` it is stopped. Whatever the
outcome, the next job is taken and the desks saved before the outcome is
announced, so a stop right after never reports it as interrupted.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatbus import ChatbusError, Hub, InvalidMessage

from .attach import attach_files
from .jobs import Desk, Job
from .texts import duration
from .work import Work, WorkResult

if TYPE_CHECKING:
    from .plugin import AgentsPlugin

__all__ = ["NO_WORKER", "Runner"]

log = logging.getLogger("chatbus.agents")

NO_WORKER = (
    "I have no worker command, so I cannot do tasks yet. Give me one with "
    '`chatbus agents hire NAME ROLE --command "PROGRAM ARGS {task}"`'
)


def _workdir_name(name: str) -> str:
    """A directory name for an agent; ``.`` and ``..`` never leave the root."""
    return name if name.strip(".") else name.replace(".", "_")


class Runner:
    """Runs each agent's desk on a background task of the hub."""

    def __init__(self, plugin: AgentsPlugin) -> None:
        self.plugin = plugin
        self.hub: Hub = plugin.hub
        self.settings = plugin.settings

    def start(self, name: str, desk: Desk) -> None:
        if desk.runner is None and self.hub.running:
            desk.runner = self.hub.spawn(self._run(name, desk), name=f"chatbus-agent-{name}", background=True)

    async def _run(self, name: str, desk: Desk) -> None:
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

    async def _advance(self, desk: Desk) -> None:
        """The job in hand is over: take the next one and save, before announcing
        the outcome, so a stop right after never reports it as interrupted."""
        desk.current = desk.pending.popleft() if desk.pending else None
        await asyncio.shield(self.plugin.save())

    def _workdir(self, name: str) -> Path:
        path = Path(self.settings.workdir).expanduser().resolve() / _workdir_name(name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def _work(self, name: str, job: Job, desk: Desk) -> None:
        work = await self._prepare(name, job, desk)
        if work is None:
            return
        tasks = self.hub.metrics.tasks
        tasks.labels("started").inc()
        doing = asyncio.ensure_future(self._do(work))
        try:
            if not await self._watch(doing, work, job):
                tasks.labels("timed_out").inc()
                await self._stopped(doing, work, job, desk)
                return
        except asyncio.CancelledError:
            tasks.labels("cancelled").inc()
            doing.cancel()
            await asyncio.gather(doing, return_exceptions=True)
            raise
        result = doing.result()
        tasks.labels("completed" if result.ok else "failed").inc()
        attached = await attach_files(self.hub, work)
        await self._advance(desk)
        files = {"files": attached.names, "not_attached": attached.notes}
        if result.ok:
            await self.hub.set_agent_status(name, "completed", job.task, 100)
            details = {"task": job.task, "output": result.output, **files}
            await self.plugin.reply(
                work.agent, "completed", details, reply_to=job.message_id, room=job.room, attachments=attached.ids
            )
        else:
            issue = result.error or "my work failed without saying why"
            await self.plugin.request_help(
                name,
                task=job.task,
                issue=issue,
                progress=work.last_progress,
                reply_to=job.message_id,
                room=job.room,
                attachments=attached.ids,
                details=files,
            )

    async def _prepare(self, name: str, job: Job, desk: Desk) -> Work | None:
        """Mark the agent working and give it a ``Work``; None when it cannot start."""
        hub = self.hub
        if hub.agents.get(name) is None:
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
            issue = "I cannot create my working directory; check agents.workdir and its permissions"
            await self._ask_for_help(name, job, issue, None)
            return None
        return Work(
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

    async def _watch(self, doing: asyncio.Future[WorkResult], work: Work, job: Job) -> bool:
        """Wait for the work; ask for help when it is slow. False when it ran out of time."""
        s = self.settings
        done, _ = await asyncio.wait({doing}, timeout=s.stuck_after)
        if done:
            return True
        tail = work.tail() or work.tail(errors=True)
        issue = f"it is still running after {duration(s.stuck_after)}"
        issue += f"; the last output was:\n{tail}" if tail else " and has printed nothing"
        await self._ask_for_help(work.agent.name, job, issue, work.last_progress)
        done, _ = await asyncio.wait({doing}, timeout=s.timeout - s.stuck_after)
        return bool(done)

    async def _stopped(self, doing: asyncio.Future[WorkResult], work: Work, job: Job, desk: Desk) -> None:
        """Stop work that ran out of time and say so."""
        name = work.agent.name
        doing.cancel()
        await asyncio.gather(doing, return_exceptions=True)
        log.warning("agent %s: stopped %r after %.0f s", name, job.task, self.settings.timeout)
        await self._advance(desk)
        await self.hub.set_agent_status(name, "stuck", job.task, work.last_progress)
        details: dict[str, Any] = {"task": job.task, "seconds": self.settings.timeout, "output": work.tail()}
        await self.plugin.reply(work.agent, "timeout", details, reply_to=job.message_id, room=job.room)

    async def _ask_for_help(self, name: str, job: Job, issue: str, progress: int | None) -> None:
        await self.plugin.request_help(
            name, task=job.task, issue=issue, progress=progress, reply_to=job.message_id, room=job.room
        )

    async def _do(self, work: Work) -> WorkResult:
        """Ask ``agent_work`` to do the job; a plugin's failure becomes a help request."""
        try:
            result = await self.hub.hooks.first("agent_work", work=work)
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
