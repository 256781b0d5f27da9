"""What an engine promises: the log, fan-out between nodes, presence and leases.

An engine is what several ``chatbus serve`` nodes share to be one chat. The
embedded engine (:mod:`~chatbus.core.engine.embedded`) is one node over the
SQLite or memory store: fan-out stays in the process and its leases are
always its own. The Redis engine (:mod:`~chatbus.core.engine.redis`) is many
nodes over one Redis.

The promises, whichever engine keeps them:

- **ids**: :meth:`Engine.append` gives a message its id, strictly increasing
  across every node and transport, never reused, with no gaps among the
  messages that were stored;
- **the log** is read after an id (:meth:`Engine.since`, oldest first) or
  before one (:meth:`Engine.before`, a page of the newest); a log that keeps
  only the newest messages says so (:attr:`Missed.reset`) when asked for more
  than it still has, instead of answering with a silent gap;
- **the epoch** names the log: ids mean the same messages only within one
  epoch (PROTOCOL.md, "Resume across restarts and nodes");
- **fan-out**: :meth:`Engine.subscribe` yields every message appended by any
  node, in id order, once each; a subscriber that fell behind is repaired from
  the log by id, and where the log no longer has what it missed it gets a
  :class:`Gap` instead (a :class:`Reset` where the whole log was replaced);
- **rate limits** counted across nodes (one allowance per person, wherever they connect);
- **events** that pass (typing, arrivals): broadcast to the other nodes, kept nowhere;
- **presence** with expiry: a node says who is connected to it for so long,
  and renews it while they are; a node that dies stops renewing, so its people
  go offline by themselves;
- **leases** for duties that must run once in the cluster (the Telegram
  poller, each agent's worker): held by one holder until released or expired,
  each grant numbered with a fencing token that grows with every grant, so
  work done under an older lease can be told apart and refused.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..message import DEFAULT_ROOM, Message

__all__ = ["LISTENING", "Engine", "Gap", "Lease", "Missed", "Reset"]

#: What :meth:`Engine.events` yields each time it starts listening.
LISTENING: dict[str, Any] = {"t": "listening"}


@dataclass(frozen=True, slots=True)
class Missed:
    """What a reader missed after an id: ``messages`` oldest first; ``reset`` when
    the log no longer keeps all of them (the reader must reload, not trust a gap)."""

    messages: list[Message]
    reset: bool = False


@dataclass(frozen=True, slots=True)
class Gap:
    """In a subscription: messages after ``after_id`` up to ``resumed_at - 1`` were
    appended but the log no longer keeps them; delivery goes on at ``resumed_at``."""

    after_id: int
    resumed_at: int


@dataclass(frozen=True, slots=True)
class Reset:
    """In a subscription: the log was replaced by one named ``epoch`` (a Redis that lost its
    data); ids start again, and what follows belongs to the new log."""

    epoch: str


@dataclass(frozen=True, slots=True)
class Lease:
    """A duty held by ``holder`` for ``ttl`` seconds from its last renewal.
    ``token`` (the fencing token) is higher for every new grant of the same name."""

    name: str
    holder: str
    token: int
    ttl: float


class Engine(abc.ABC):
    """The log, fan-out, presence and leases of a chat, on one node or many."""

    #: Shown in ``chatbus status`` and logs: ``embedded`` or ``redis``.
    kind: str = "engine"

    # lifecycle -----------------------------------------------------------
    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and read the epoch; raise ``StoreError`` saying what to check."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Let go of connections; subscriptions end."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Return when the engine could store a message now; raise ``StoreError`` saying why not."""

    @property
    @abc.abstractmethod
    def epoch(self) -> str:
        """The name of the log the ids belong to (read once the engine is open)."""

    # the log ---------------------------------------------------------------
    @abc.abstractmethod
    async def append(self, message: Message) -> Message:
        """Store ``message`` (its ``id`` is ignored) and publish it to every node;
        return it with its id, once it is durable as far as the engine goes."""

    @abc.abstractmethod
    async def last_id(self) -> int:
        """The highest id given so far, on any node (0 for an empty log)."""

    @abc.abstractmethod
    async def since(self, after_id: int, limit: int, room: str | None = None) -> Missed:
        """Messages above ``after_id`` (in ``room``, or all rooms), oldest first, at most ``limit``."""

    @abc.abstractmethod
    async def before(
        self, before_id: int | None, limit: int, room: str | None = DEFAULT_ROOM
    ) -> tuple[list[Message], bool]:
        """The ``limit`` newest messages below ``before_id`` (the newest when None),
        oldest first, and whether older ones are still kept."""

    # fan-out ---------------------------------------------------------------
    @abc.abstractmethod
    def subscribe(self, after_id: int) -> AsyncIterator[Message | Gap | Reset]:
        """Every message above ``after_id`` appended by any node, in id order,
        once each, as long as the engine is open; a :class:`Gap` where the log
        no longer has what this subscriber missed, a :class:`Reset` where the
        log was replaced (after it, ids start again)."""

    @abc.abstractmethod
    async def broadcast(self, node: str, event: dict[str, Any]) -> None:
        """Hand a passing event (typing, someone arriving or leaving) from ``node`` to every
        other node; nothing is kept: a node that is not listening then never gets it."""

    @abc.abstractmethod
    def events(self, node: str) -> AsyncIterator[dict[str, Any]]:
        """The events other nodes broadcast (not ``node``'s own), as long as the engine is open;
        :data:`LISTENING` first, and again after each reconnection: from then on, what the other
        nodes broadcast reaches this listener (what they said meanwhile did not)."""

    @abc.abstractmethod
    async def take(self, key: str, *, burst: int, per_second: float, per_hour: int | None) -> float:
        """Take one message from ``key``'s allowance, shared by every node: a bucket of
        ``burst`` refilled at ``per_second``, and at most ``per_hour`` in any hour. 0.0 when
        taken, else the seconds to wait (nothing is taken then)."""

    # presence --------------------------------------------------------------
    @abc.abstractmethod
    async def set_present(self, node: str, user_id: str, ttl: float) -> None:
        """``user_id`` is connected to ``node`` for ``ttl`` seconds unless renewed (called again)."""

    async def set_present_many(self, node: str, user_ids: Sequence[str], ttl: float) -> None:
        """:meth:`set_present` for everyone in ``user_ids`` (a node renewing all its people at once)."""
        for user_id in user_ids:
            await self.set_present(node, user_id, ttl)

    @abc.abstractmethod
    async def set_absent(self, node: str, user_id: str) -> None:
        """``user_id`` has no connection to ``node`` any more."""

    @abc.abstractmethod
    async def present(self) -> dict[str, set[str]]:
        """Everyone connected to some node now: user id to the nodes they are on."""

    # leases ----------------------------------------------------------------
    @abc.abstractmethod
    async def acquire(self, name: str, holder: str, ttl: float) -> Lease | None:
        """Take the duty ``name`` for ``ttl`` seconds; None while another holder has it."""

    @abc.abstractmethod
    async def renew(self, lease: Lease) -> bool:
        """Extend ``lease`` by its ttl; False when it was lost (expired and maybe taken)."""

    @abc.abstractmethod
    async def release(self, lease: Lease) -> None:
        """Give the duty up, if ``lease`` still holds it."""
