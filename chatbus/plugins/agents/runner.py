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

from chatbus import ChatbusError, Hub, InvalidMessage, Message

from .attach import attach_files
from .jobs import Desk, Job
from .live import LiveStatus
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


class NotHere(Exception):
    """This node lost the duty of running the agents (another node runs them now)."""


class Runner:
    """Runs each agent's desk on a background task of the hub."""

    def __init__(self, plugin: AgentsPlugin) -> None:
        self.plugin = plugin
        self.hub: Hub = plugin.hub
        self.settings = plugin.settings

    def start(self, name: str, desk: Desk, *, announce: bool = False) -> None:
        """Work through the desk; ``announce``: say so when the job in hand starts (it was queued)."""
        if desk.runner is None and self.hub.running:
            run = self._run(name, desk, announce)
            desk.runner = self.hub.spawn(run, name=f"chatbus-agent-{name}", background=True)

    async def _run(self, name: str, desk: Desk, announce: bool) -> None:
        """Do the agent's jobs one at a time, in order, until its queue is empty."""
        try:
            while desk.current is not None and self.hub.running:
                job = desk.current
                if not await self._one(name, job, desk, announce):
                    return
                if desk.current is job:
                    await self._advance(desk)
                # A job run again with a reply is no news; one from the queue is.
                announce = desk.current is not None and desk.current.message_id != job.message_id
        except NotHere:
            log.info("agent %s: another node runs the agents now; its work stops here", name)
        finally:
            desk.runner = None

    async def _one(self, name: str, job: Job, desk: Desk, announce: bool) -> bool:
        """Do one job, whatever becomes of it; False when the agent was fired meanwhile."""
        try:
            await self._work(name, job, desk, announce)
        except NotHere:
            raise
        except InvalidMessage as exc:  # the agent was fired meanwhile
            log.info("agent %s stopped working: %s", name, exc)
            return False
        except ChatbusError as exc:
            log.warning("agent %s: %s", name, exc)
        except Exception:
            log.exception("agent %s: the task failed unexpectedly", name)
        return True

    async def _advance(self, desk: Desk) -> None:
        """The job in hand is over: take the next one and save, before announcing
        the outcome, so a stop right after never reports it as interrupted. On several
        nodes, :class:`NotHere` when this node no longer runs the agents: the node that
        does reports the job and carries on with the queue, so nothing is said or done twice."""
        desk.current = desk.pending.popleft() if desk.pending else None
        if not await asyncio.shield(self.plugin.save()):
            raise NotHere

    async def _still_ours(self) -> None:
        """On several nodes, :class:`NotHere` when another node runs the agents now: checked before
        anything is said about how a job ended (the live status too), which is that node's to say."""
        if self.hub.cluster.shared and not await asyncio.shield(self.plugin.save()):
            raise NotHere

    def _workdir(self, name: str) -> Path:
        path = Path(self.settings.workdir).expanduser().resolve() / _workdir_name(name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def _work(self, name: str, job: Job, desk: Desk, announce: bool) -> None:
        work = await self._prepare(name, job, desk)
        if work is None:
            return
        self.hub.metrics.tasks.labels("started").inc()
        live = LiveStatus(
            self.hub, work, job, desk, interval=self.settings.live_interval, lines=self.settings.live_lines
        )
        first = await self.plugin.text_for(work.agent, "started", {"task": job.task}) if announce else None
        live.start(announce=first or None)
        desk.stopping = desk.stopped_by = None
        desk.work, desk.doing = work, asyncio.ensure_future(self._do(work))
        doing = desk.doing
        try:
            finished = await self._watch(doing, work, job, desk)
        except BaseException:
            self.hub.metrics.tasks.labels("cancelled").inc()
            await self._halt(doing)
            # fired (or stopped on request), else the server stopping or another node taking over
            await live.finish("cancelled" if desk.stopping else "interrupted")
            raise
        finally:
            await self._halt(doing)  # the worker is gone before anything else starts
            desk.work = desk.doing = None
        await self._still_ours()
        if not finished:
            self.hub.metrics.tasks.labels("timed_out").inc()
            await live.finish("timeout")
            await self._stopped(work, job, desk)
        elif doing.cancelled():
            await self._cancelled(work, job, desk, live)
        else:
            await self._outcome(doing.result(), work, job, desk, live)

    @staticmethod
    async def _halt(doing: asyncio.Future[WorkResult]) -> None:
        if not doing.done():
            doing.cancel()
        await asyncio.gather(doing, return_exceptions=True)

    async def _cancelled(self, work: Work, job: Job, desk: Desk, live: LiveStatus) -> None:
        """The work was stopped on request: cancelled (say so) or restarted with a reply."""
        reason = desk.stopping or "cancelled"
        await live.finish(reason)
        if reason == "restarted":
            return
        self.hub.metrics.tasks.labels("cancelled").inc()
        desk.last_failed = job
        await self._advance(desk)
        name = work.agent.name
        await self.hub.set_agent_status(name, "idle", None, None)
        details = {"task": job.task, "by": desk.stopped_by, "output": work.tail()}
        said = await self.plugin.reply(work.agent, "cancelled", details, reply_to=job.message_id, room=job.room)
        await self.plugin.keep_thread(desk, said, job)

    async def _outcome(self, result: WorkResult, work: Work, job: Job, desk: Desk, live: LiveStatus) -> None:
        name = work.agent.name
        self.hub.metrics.tasks.labels("completed" if result.ok else "failed").inc()
        await live.finish("completed" if result.ok else "failed")
        attached = await attach_files(self.hub, work)
        if not result.ok:
            desk.last_failed = job  # kept with the desks for /retry
        await self._advance(desk)
        files = {"files": attached.names, "not_attached": attached.notes}
        if result.ok:
            await self.hub.set_agent_status(name, "completed", job.task, 100)
            self.idle_later(name, job.task)
            details = {"task": job.task, "output": result.output, **files}
            await self.plugin.reply(
                work.agent, "completed", details, reply_to=job.message_id, room=job.room, attachments=attached.ids
            )
            return
        issue = result.error or "my work failed without saying why"
        said = await self.plugin.request_help(
            name,
            task=job.task,
            issue=issue,
            progress=work.last_progress,
            reply_to=job.message_id,
            room=job.room,
            attachments=attached.ids,
            details=files,
        )
        await self.plugin.keep_thread(desk, said, job)

    def idle_later(self, name: str, task: str) -> None:
        """``completed`` goes back to ``idle`` after ``agents.idle_after`` seconds, unless it changed meanwhile."""

        async def later() -> None:
            await asyncio.sleep(self.settings.idle_after)
            agent = self.hub.agents.get(name)
            if agent is not None and agent.status == "completed" and agent.current_task == task:
                try:
                    await self.hub.set_agent_status(name, "idle", None, None)
                except ChatbusError as exc:
                    log.warning("agent %s: could not go back to idle: %s", name, exc)

        self.hub.spawn(later(), name=f"chatbus-agent-{name}-idle", background=True)

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
            context=job.context,
        )

    async def _watch(self, doing: asyncio.Future[WorkResult], work: Work, job: Job, desk: Desk) -> bool:
        """Wait for the work; ask for help when it is slow. False when it ran out of time.

        A help request that cannot be posted (the agent fired meanwhile, a store
        error) changes nothing: the work is still watched and stopped in time."""
        s = self.settings
        done, _ = await asyncio.wait({doing}, timeout=s.stuck_after)
        if done:
            return True
        tail = work.tail() or work.tail(errors=True)
        issue = f"it is still running after {duration(s.stuck_after)}"
        issue += f"; the last output was:\n{tail}" if tail else " and has printed nothing"
        try:
            said = await self._ask_for_help(work.agent.name, job, issue, work.last_progress)
            await self.plugin.keep_thread(desk, said, job)
        except ChatbusError as exc:
            log.warning("agent %s: could not ask for help (%s); still watching its work", work.agent.name, exc)
        done, _ = await asyncio.wait({doing}, timeout=s.timeout - s.stuck_after)
        return bool(done)

    async def _stopped(self, work: Work, job: Job, desk: Desk) -> None:
        """Say that work which ran out of time was stopped."""
        name = work.agent.name
        log.warning("agent %s: stopped %r after %.0f s", name, job.task, self.settings.timeout)
        desk.last_failed = job
        await self._advance(desk)
        await self.hub.set_agent_status(name, "stuck", job.task, work.last_progress)
        details: dict[str, Any] = {"task": job.task, "seconds": self.settings.timeout, "output": work.tail()}
        said = await self.plugin.reply(work.agent, "timeout", details, reply_to=job.message_id, room=job.room)
        await self.plugin.keep_thread(desk, said, job)

    async def _ask_for_help(self, name: str, job: Job, issue: str, progress: int | None) -> Message | None:
        return await self.plugin.request_help(
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
