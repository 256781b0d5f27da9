"""The agents' work in hand: each agent's desk (the job it is doing, its queue)
and how desks are kept in the store across restarts."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from chatbus import DEFAULT_ROOM

if TYPE_CHECKING:
    from .work import Work, WorkResult

__all__ = ["STATE_KEY", "Desk", "Job", "dump_desks", "load_desks"]

log = logging.getLogger("chatbus.agents")

#: The store state key under which the agents' work in progress is kept.
STATE_KEY = "agents.work"


@dataclass(frozen=True, slots=True)
class Job:
    """A task someone gave an agent, and where to answer about it."""

    task: str
    message_id: int | None = None
    room: str = DEFAULT_ROOM
    sender: str | None = None
    imperative: bool = True
    #: The conversation about the task so far, ``(sender, text)``, oldest first:
    #: replies to its messages, handed to the worker when it runs again.
    context: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        return cls(
            task=str(data["task"]),
            message_id=data.get("message_id"),
            room=str(data.get("room") or DEFAULT_ROOM),
            sender=data.get("sender"),
            imperative=bool(data.get("imperative", True)),
            context=tuple((str(sender), str(text)) for sender, text in data.get("context") or ()),
        )


@dataclass
class Desk:
    """One agent's work: the job in hand, the queue, and the task doing it."""

    current: Job | None = None
    pending: deque[Job] = field(default_factory=deque)
    runner: asyncio.Task[None] | None = None
    #: The job that was in hand when the server stopped, reported once it is back.
    interrupted: Job | None = None
    #: The work in hand, while its worker runs (for input and live output).
    work: Work | None = None
    #: Doing the job in hand; cancelling it stops the worker.
    doing: asyncio.Future[WorkResult] | None = None
    #: Why the job in hand is being stopped ("cancelled", "restarted", ...), once someone asked.
    stopping: str | None = None
    #: Who asked to stop it.
    stopped_by: str | None = None
    #: The last job that failed, timed out or was cancelled, for ``/retry``.
    last_failed: Job | None = None
    #: The messages of the job in hand and of the last failed one (acknowledgement, live
    #: status, help request): a reply to one of them reaches the worker.
    threads: dict[int, Job] = field(default_factory=dict)


def load_desks(raw: str | None) -> dict[str, Desk]:
    """Desks as :func:`dump_desks` saved them; the job that was in hand comes back as ``interrupted``."""
    if not raw:
        return {}
    desks: dict[str, Desk] = {}
    try:
        saved = json.loads(raw)
        for name, entry in saved.get("agents", {}).items():
            desk = Desk()
            if entry.get("current"):
                desk.interrupted = Job.from_dict(entry["current"])
            desk.pending.extend(Job.from_dict(job) for job in entry.get("pending", ()))
            if entry.get("last_failed"):
                desk.last_failed = Job.from_dict(entry["last_failed"])
            desk.threads = _threads(desk, entry.get("threads") or ())
            desks[name] = desk
    except (ValueError, KeyError, TypeError, AttributeError):
        log.error("the saved work of the agents could not be read; starting with empty queues")
        return {}
    return desks


def dump_desks(desks: dict[str, Desk]) -> str | None:
    """The job in hand, the queue and the last failed job (for ``/retry``) of every desk that
    has any, with the agent's messages about them (threads), as JSON; None when there is nothing
    to keep."""
    busy = {
        name: {
            "current": asdict(desk.current) if desk.current else None,
            "pending": [asdict(job) for job in desk.pending],
            "last_failed": asdict(desk.last_failed) if desk.last_failed else None,
            "threads": [[said, where] for said, job in desk.threads.items() if (where := _where(desk, job))],
        }
        for name, desk in desks.items()
        if desk.current or desk.pending or desk.last_failed
    }
    return json.dumps({"version": 1, "agents": busy}) if busy else None


def _where(desk: Desk, job: Job) -> str | None:
    """Which of the desk's jobs ``job`` is, for saving a thread: None for one that is over."""
    if job is desk.current:
        return "current"
    for index, waiting in enumerate(desk.pending):
        if waiting is job:
            return f"pending:{index}"
    return "last_failed" if job is desk.last_failed else None


def _threads(desk: Desk, saved: Any) -> dict[int, Job]:
    """The threads :func:`dump_desks` saved, pointing at the loaded jobs (the job that was in
    hand is ``interrupted`` now), so a reply to an agent's message still reaches its job."""
    threads: dict[int, Job] = {}
    for entry in saved if isinstance(saved, list) else ():
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int)):
            continue  # not as saved: that thread is forgotten, the work is kept
        kind, _, index = str(entry[1]).partition(":")
        job = desk.interrupted if kind == "current" else desk.last_failed if kind == "last_failed" else None
        if kind == "pending" and index.isdigit() and int(index) < len(desk.pending):
            job = desk.pending[int(index)]
        if job is not None:
            threads[entry[0]] = job
    return threads
