"""The built-in ``agents`` plugin: agents answer mentions and do their tasks.

When a person's message mentions agents in the roster, each of them answers
once, as itself, replying to that message: an acknowledgement for a task, its
status for a status question, a greeting otherwise. Tasks go into the agent's
queue and are done one at a time, in order, by the ``agent_work`` hook (the
built-in implementation runs the agent's worker command; see
:mod:`~chatbus.plugins.agents.runner`).

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
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import pluggy

from chatbus import DEFAULT_ROOM, Agent, ChatbusError, Hub, InvalidMessage, Message, hookimpl
from chatbus.core.cluster import ON_MESSAGE

from . import hookspecs
from .brain import converse, finish_interrupted
from .control import COMMANDS, Control, is_stop
from .control_texts import control_reply
from .intent import understand
from .jobs import STATE_KEY, Desk, Job, dump_desks, load_desks
from .runner import NO_WORKER, Runner
from .settings import AgentSettings
from .texts import default_reply
from .work import Work, WorkResult, run_command

__all__ = ["AgentsPlugin"]

log = logging.getLogger("chatbus.agents")


class AgentsPlugin:
    """Registered as ``agents``; configured by the ``[agents]`` section."""

    name = "agents"
    settings_model = AgentSettings

    def __init__(self, hub: Hub, settings: AgentSettings) -> None:
        self.hub = hub
        self.settings = settings
        self._desks: dict[str, Desk] = {}
        #: On taking over from another node: the queues carry on at this message (see :meth:`_lead`).
        self._hold_until: int | None = None
        self._runner = Runner(self)
        self.control = Control(self)

    # the hooks this plugin adds, and their built-in answers ----------------------
    @hookimpl
    def add_hookspecs(self, pm: pluggy.PluginManager) -> None:
        pm.add_hookspecs(hookspecs)

    @hookimpl(trylast=True)
    def agent_reply(self, agent: Agent, kind: str, details: dict[str, Any]) -> str | None:
        return self._builtin_text(agent, kind, details)

    def _builtin_text(self, agent: Agent, kind: str, details: dict[str, Any]) -> str | None:
        found = default_reply(agent, kind, details, greeting=self.settings.greeting)
        return found if found is not None else control_reply(agent, kind, details)

    @hookimpl(trylast=True)
    async def agent_converse(self, agent: Agent, message: Message) -> bool | None:
        return await converse(self.hub, agent, message, self.settings) or None

    @hookimpl(trylast=True)
    async def agent_work(self, work: Work) -> WorkResult:
        if not work.agent.command:
            return WorkResult(False, error=NO_WORKER)
        return await run_command(work, work.agent.command, kill_grace=self.settings.kill_grace)

    # lifecycle -----------------------------------------------------------------
    @hookimpl
    async def on_startup(self, hub: Hub) -> None:
        hub.spawn(self._refresh_roster(hub), name="chatbus-agents-roster", background=True)
        if hub.cluster.shared:  # several nodes: the agents work on the node that runs the plugins
            hub.cluster.on_lead(self._lead, self._step_down)
            return
        self._desks = load_desks(await hub.store.get_state(STATE_KEY))
        hub.spawn(self._resume(hub), name="chatbus-agents-resume", background=True)

    async def _lead(self) -> None:
        """This node runs the agents now (it took the duty): carry on where the last one stopped,
        with the roster as it is now (an agent hired on another node since this one read it keeps
        its queue and hears about its interrupted task).

        What people said while no node ran the agents is answered first, about the work as they
        saw it (``/cancel alice`` meant the task the last node ran, which is reported as
        interrupted, not the next one): the queues carry on once ``on_message`` reaches the
        report, that is after every message said before it."""
        await self.fresh_roster()
        self._desks = load_desks(await self.hub.store.get_state(STATE_KEY))
        self._hold_until = await self._resume(self.hub, hold=True)
        if self._hold_until is None:
            await self._carry_on()

    async def _step_down(self) -> None:
        """Another node runs the agents now: stop the work here (it is not done twice)."""
        self._hold_until = None
        running = [desk.runner for desk in self._desks.values() if desk.runner is not None]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self._desks = {}

    async def save(self) -> bool:
        """Keep the job in hand and the queues in the store, for the next start (or the next node).

        On several nodes it is written only while this node runs the plugins (the duty
        ``on-message``): a node that lost the duty never overwrites the work of the one that has
        it, and learns here (False) that the work is no longer its own to do or report."""
        try:
            kept = await self.hub.cluster.set_state(STATE_KEY, dump_desks(self._desks), ON_MESSAGE)
        except ChatbusError as exc:
            log.error("could not save the agents' work: %s", exc)
            return True
        if not kept:
            log.warning("the agents' work was not saved here: another node runs the agents now")
        return kept

    async def _resume(self, hub: Hub, *, hold: bool = False) -> int | None:
        """Once clients can hear it: report interrupted tasks, carry on with the queues (``hold``:
        later, :meth:`_carry_on`). Returns the id of the last report posted, if any."""
        await hub.wait_started()
        try:  # answers and live status messages a stop left being written
            await finish_interrupted(hub)
        except ChatbusError as exc:
            log.warning("could not end the messages a stop left being written: %s", exc)
        for shown in hub.agents.values():  # ``completed`` when the last node (or run) stopped
            if shown.status == "completed" and shown.current_task:
                self._runner.idle_later(shown.name, shown.current_task)
        reported = None
        for name, desk in list(self._desks.items()):
            job = desk.interrupted
            agent = hub.agents.get(name)
            if agent is None or job is None:
                continue
            log.warning("agent %s: task interrupted by a restart: %s", name, job.task)
            desk.last_failed = job  # never run again by itself; /retry runs it
            if desk.current is None:
                await hub.set_agent_status(name, "idle", None, None)
            said = await self.reply(agent, "interrupted", {"task": job.task}, reply_to=job.message_id, room=job.room)
            self.control.remember(desk, said, job)  # saved below
            reported = said.id if said is not None else reported
        self._forget_missing(hub)
        if hold:
            await self.save()
        else:
            await self._carry_on()
        return reported

    async def _carry_on(self) -> None:
        """Each agent takes the next task of its queue when it has none in hand (reported as
        interrupted, if it had one), and the desks are saved."""
        for name, desk in list(self._desks.items()):
            desk.interrupted = None
            if desk.current is None and desk.pending and name in self.hub.agents:
                desk.current = desk.pending.popleft()
                self._runner.start(name, desk, announce=True)
        await self.save()

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
                await self.save()

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
        if self._hold_until is not None and message.id >= self._hold_until:
            self._hold_until = None  # what was said before the report of interrupted work is taken
            await self._carry_on()
        if message.kind != "human":
            return
        if message.command in COMMANDS:
            await self._command(message)
            return
        if message.command is not None:
            return
        thread = self.control.thread_of(message)
        if not message.mentions and thread is None:
            return
        if any(name not in hub.agents for name in message.mentions):
            await self.fresh_roster()
        agents = self._mentioned(message.mentions, hub.agents)
        if thread is not None and thread[0] in hub.agents and {a.name for a in agents} <= {thread[0]}:
            agents = [hub.agents[thread[0]]]
        else:
            thread = None
        for agent in agents:
            try:
                await self._answer(agent, message, thread[1] if thread else None)
            except ChatbusError as exc:
                log.warning("agent %s could not answer message %d: %s", agent.name, message.id, exc)

    async def _command(self, message: Message) -> None:
        try:
            text = await self.control.command(message)
        except ChatbusError as exc:
            text = str(exc)
        if text is not None:
            try:
                await self.hub.send(text, reply_to=message.id, room=message.room)
            except ChatbusError as exc:
                log.warning("could not answer /%s (message %d): %s", message.command, message.id, exc)

    async def fresh_roster(self) -> None:
        """Re-read the roster (agents hired or fired with the CLI meanwhile)."""
        try:
            await self.hub.reload_agents()
        except ChatbusError as exc:
            log.warning("could not re-read the roster: %s", exc)

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

    async def _answer(self, agent: Agent, message: Message, thread: Job | None = None) -> None:
        intent = understand(message.text)
        steering = thread is not None or is_stop(message.text) or intent.kind == "task"
        if steering:
            refused = self.control.refusal(agent, message)
            if refused is not None:
                await self.reply(agent, "refused", refused, message=message, reply_to=message.id, room=message.room)
                return
        if is_stop(message.text):
            await self.control.cancel(agent, message)
            return
        if thread is not None:
            await self.control.steer(agent, thread, message)
            return
        if intent.kind == "task" and intent.task:
            job = Job(intent.task, message.id, message.room, message.sender, intent.imperative)
            await self.take(agent, job, message)
            return
        if intent.kind == "status":
            kind, details = "status", self._status_details(agent.name)
        else:
            if await self.hub.hooks.first("agent_converse", agent=agent, message=message, hub=self.hub):
                return
            kind = intent.kind if intent.kind in ("greeting", "question") else "unclear"
            details = {"sender": message.sender}
        await self.reply(agent, kind, details, message=message, reply_to=message.id, room=message.room)

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

    def desk(self, name: str) -> Desk:
        """The agent's desk (made when it has none yet)."""
        return self._desks.setdefault(name, Desk())

    def desks(self) -> dict[str, Desk]:
        return self._desks

    async def take(self, agent: Agent, job: Job, message: Message, *, kind: str = "acknowledge") -> None:
        """Give ``agent`` the ``job``: start it now (answering ``kind``) or queue it."""
        desk = self.desk(agent.name)
        details: dict[str, Any] = {"task": job.task, "imperative": job.imperative, "sender": job.sender}
        if desk.current is None and not desk.pending:
            desk.current = job  # claimed before any await, so a second task queues behind it
            if not await self.save():
                return  # the node that runs the agents now has the message
            said = await self.reply(agent, kind, details, message=message, reply_to=job.message_id, room=job.room)
            await self.keep_thread(desk, said, job)
            self._runner.start(agent.name, desk)
            return
        desk.pending.append(job)
        details.update(position=len(desk.pending), current=desk.current.task if desk.current else None)
        if not await self.save():
            return
        said = await self.reply(agent, "queued", details, message=message, reply_to=job.message_id, room=job.room)
        await self.keep_thread(desk, said, job)
        if desk.current is None and desk.runner is None and desk.interrupted is None:
            desk.current = desk.pending.popleft()
            self._runner.start(agent.name, desk, announce=True)

    async def keep_thread(self, desk: Desk, said: Message | None, job: Job) -> None:
        """A reply to ``said`` (the agent's message about ``job``) reaches ``job``, after a restart
        or on the next node too: it is saved with the desks."""
        if said is not None:
            self.control.remember(desk, said, job)
            await self.save()

    async def reply(
        self,
        agent: Agent,
        kind: str,
        details: dict[str, Any],
        *,
        message: Message | None = None,
        reply_to: int | None = None,
        room: str = DEFAULT_ROOM,
        attachments: Sequence[str] = (),
    ) -> Message | None:
        """Post the agent's text for ``kind`` (from ``agent_reply``), with the
        stored files ``attachments`` (ids); an empty text posts nothing."""
        text = await self.text_for(agent, kind, details, message)
        if not text or not text.strip():
            return None
        return await self.hub.send(text, sender=agent.name, reply_to=reply_to, room=room, attachments=attachments)

    async def text_for(
        self, agent: Agent, kind: str, details: dict[str, Any], message: Message | None = None
    ) -> str | None:
        """The agent's text for ``kind``: from ``agent_reply``, else the built-in one."""
        try:
            text = await self.hub.hooks.first("agent_reply", agent=agent, kind=kind, details=details, message=message)
        except Exception:
            log.exception("agent_reply failed for %s; using the built-in text", kind)
            text = None
        if text is not None and not isinstance(text, str):
            log.error("agent_reply returned %r instead of a string; using the built-in text", text)
            text = None
        return text if text is not None else self._builtin_text(agent, kind, details)

    async def request_help(
        self,
        name: str,
        *,
        issue: str,
        task: str | None = None,
        progress: int | None = None,
        reply_to: int | None = None,
        room: str = DEFAULT_ROOM,
        attachments: Sequence[str] = (),
        details: dict[str, Any] | None = None,
    ) -> Message | None:
        """Mark an agent ``stuck`` and post, as the agent, a message asking the
        team for help with ``task`` (default: its current task) and ``issue``,
        with the stored files ``attachments`` (ids; a log the work wrote) and
        more ``details`` for the text. The text can be replaced through the
        ``agent_reply`` hook (kind ``help``)."""
        agent = self.hub.agents.get(name)
        if agent is None:
            raise InvalidMessage(f"There is no agent called {name!r}.")
        task = task or agent.current_task or "my current task"
        progress = progress if progress is not None else agent.progress
        agent = await self.hub.set_agent_status(name, "stuck", task, progress)
        said: dict[str, Any] = {**(details or {}), "task": task, "issue": issue, "progress": agent.progress}
        return await self.reply(agent, "help", said, reply_to=reply_to, room=room, attachments=attachments)
