"""A task's live status message: one message per task, posted by the agent when
its worker first shows something (or when a queued task starts), edited in
place with the latest output lines and progress at most once every
``agents.live_interval`` seconds, and edited a last time with how it ended.

The message is an answer being written (``streaming``) until that last edit,
so the web page shows it growing and Telegram paces its edits in the chat's
lane (``telegram.edit_interval``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from chatbus import ChatbusError
from chatbus.core.cluster import ON_MESSAGE

from .jobs import Desk, Job
from .texts import shorten

if TYPE_CHECKING:
    from chatbus import Hub, Message

    from .work import Work

__all__ = ["LiveStatus"]

log = logging.getLogger("chatbus.agents")

#: How the last edit begins for each way a task ends.
ENDINGS = {
    "completed": "✅ Done",
    "failed": "❌ Failed",
    "timeout": "⏹️ Stopped (out of time)",
    "cancelled": "⏹️ Cancelled",
    "interrupted": "⚠️ Interrupted (the server stopped)",
    "restarted": "🔁 Restarted with the new reply",
}


class LiveStatus:
    """The live status message of one task (see the module docstring)."""

    def __init__(self, hub: Hub, work: Work, job: Job, desk: Desk, *, interval: float, lines: int) -> None:
        self.hub = hub
        self.work = work
        self.job = job
        self.desk = desk
        self.interval = interval
        self.lines = lines
        self.message: Message | None = None
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    def start(self, *, announce: str | None = None) -> None:
        """Follow the work; ``announce``: post the message at once with this first line."""
        self.work.on_change = self._changed.set
        if announce is not None:
            self._first = announce
            self._changed.set()
        self._loop = asyncio.ensure_future(self._follow())

    _first: str | None = None

    def text(self, head: str | None = None, *, complete: bool = False) -> str:
        """The message as it is now: a head line (with progress, 100% once ``complete``) and the last output lines."""
        progress = self.work.last_progress
        if complete and progress is not None:
            progress = 100  # a worker that stopped printing PROGRESS short of 100 is done all the same
        done = f" ({progress}%)" if progress is not None else ""
        if head is None:
            head = self._first or f"⏳ Working on this task{done}: {shorten(self.job.task)}"
        else:
            head = f"{head}{done}: {shorten(self.job.task)}"
        recent = "\n".join(self.work.recent(self.lines))
        limit = self.work.output_chars
        if len(recent) > limit:  # long lines: the end is what is new
            recent = "…" + recent[-(limit - 1) :]
        return f"{head}\n{recent}" if recent else head

    async def _follow(self) -> None:
        while True:
            await self._changed.wait()
            if self._stopping.is_set():
                return
            self._changed.clear()
            await self._show(self.text(), streaming=True)
            self._first = None  # the announcement was seen; from now on the work itself
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)

    async def _show(self, text: str, *, streaming: bool) -> None:
        agent = self.work.agent
        try:
            if not await self.hub.cluster.holds(ON_MESSAGE):  # another node runs the agents now
                return
            if self.message is None:
                self.message = await self.hub.send(
                    text, sender=agent.name, reply_to=self.job.message_id, room=self.job.room, streaming=streaming
                )
                self.desk.threads[self.message.id] = self.job
            else:
                self.message = await self.hub.edit(agent.identity, self.message.id, text, streaming=streaming)
        except ChatbusError as exc:
            log.warning("agent %s: could not show its live status: %s", agent.name, exc)

    async def finish(self, ending: str) -> None:
        """Stop following and, when the message was posted, edit it a last time with how the task ended."""
        self.work.on_change = None
        self._stopping.set()
        self._changed.set()
        if self._loop is not None:
            try:
                await self._loop
            except Exception:
                log.exception("agent %s: its live status failed", self.work.agent.name)
        if self.message is not None:
            await self._show(self.text(ENDINGS.get(ending, ending), complete=ending == "completed"), streaming=False)
