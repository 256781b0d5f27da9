"""What the hub and plugins need from storage, whichever store keeps it."""

from __future__ import annotations

import abc
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from ..message import DEFAULT_ROOM, Agent, Attachment, Message

if TYPE_CHECKING:
    from ..engine.base import Engine, Lease

__all__ = ["AGENT_FIELDS", "EPOCH_KEY", "Page", "SharedStore", "Store"]

#: A page of history: the messages, oldest first, and whether older ones are left.
Page = tuple[list[Message], bool]

#: The state key under which a store keeps its epoch.
EPOCH_KEY = "log.epoch"

#: The roster fields ``update_agent`` may change.
AGENT_FIELDS = frozenset({"role", "command", "status", "current_task", "progress", "model", "stdin", "allow"})


class Store(abc.ABC):
    """What the hub and plugins need from storage."""

    #: Called with ``(operation, seconds)`` after each operation that waits on
    #: storage; the hub sets it to feed its metrics.
    observe: Callable[[str, float], None] | None = None

    #: True for a store several nodes share (the Redis engine's): it numbers new messages
    #: itself (:meth:`add`), and stored messages reach the transports from :attr:`engine`'s
    #: subscription on every node, not from the node that stored them.
    shared: bool = False

    #: The engine of a shared store (fan-out, presence, leases); None for one node's store.
    engine: Engine | None = None

    def __init__(self) -> None:
        self._last_id = 0
        self._epoch = uuid.uuid4().hex

    @property
    def epoch(self) -> str:
        """Names this message log: ids mean the same messages only within one
        epoch (a new or replaced database has another). Read once the store is open."""
        return self._epoch

    async def ping(self) -> None:
        """Return when the store answers; raise ``StoreError`` saying why when it cannot."""

    # lifecycle ---------------------------------------------------------
    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    # messages ----------------------------------------------------------
    @property
    def last_id(self) -> int:
        """The highest id allocated so far (0 for an empty log)."""
        return self._last_id

    def allocate_id(self) -> int:
        """The next message id; strictly increasing, never reused."""
        self._last_id += 1
        return self._last_id

    @abc.abstractmethod
    async def append(self, message: Message) -> None:
        """Store a message durably under its own id; returns once it is committed."""

    async def add(self, message: Message) -> Message:
        """Number and store a new message (its ``id`` is ignored); the message as stored.
        A shared store gives the id itself, unique across every node."""
        message = replace(message, id=self.allocate_id())
        await self.append(message)
        return message

    async def kept_from(self) -> int:
        """The oldest id the log still keeps (0: it keeps everything); a reader behind it missed some."""
        return 0

    def heard(self, message_id: int) -> None:
        """A message with ``message_id`` exists (another node stored it): :attr:`last_id` is at least that."""
        self._last_id = max(self._last_id, message_id)

    @abc.abstractmethod
    async def get(self, message_id: int) -> Message | None: ...

    @abc.abstractmethod
    async def since(self, after_id: int, limit: int, room: str | None = None) -> list[Message]:
        """Messages with an id above ``after_id``, oldest first, at most ``limit``."""

    @abc.abstractmethod
    async def before(
        self, before_id: int | None, limit: int, room: str | None = DEFAULT_ROOM
    ) -> tuple[list[Message], bool]:
        """The ``limit`` newest messages below ``before_id`` (all when ``None``),
        oldest first, and whether older ones exist."""

    # roster ------------------------------------------------------------
    @abc.abstractmethod
    async def rooms(self) -> list[str]:
        """Every room that has messages, the most recently active first."""

    # changes -----------------------------------------------------------
    @abc.abstractmethod
    async def replace(self, message: Message, previous: Message) -> None:
        """Store ``message`` as the new state of ``previous`` (same id): an edit, a
        deletion or an answer grown. A text it replaces is kept (:meth:`versions`),
        except the partial texts of an answer still being written."""

    @abc.abstractmethod
    async def react(
        self, message_id: int, emoji: str, user_id: str, on: bool
    ) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Add (``on``) or remove one person's reaction; every reaction of the message after it."""

    @abc.abstractmethod
    async def versions(self, message_id: int) -> list[str]:
        """The texts a message had before its edits and deletion, oldest first."""

    @abc.abstractmethod
    async def list_agents(self) -> list[Agent]: ...

    @abc.abstractmethod
    async def get_agent(self, name: str) -> Agent | None: ...

    @abc.abstractmethod
    async def save_agent(self, agent: Agent) -> None:
        """Add an agent, or replace the one with the same name."""

    @abc.abstractmethod
    async def remove_agent(self, name: str) -> bool:
        """Remove an agent; False when there was none of that name."""

    async def update_agent(self, name: str, **fields: Any) -> Agent | None:
        """Change some fields of an agent (status, current_task, progress, ...)."""
        unknown = set(fields) - AGENT_FIELDS
        if unknown:
            raise TypeError(f"unknown agent fields: {sorted(unknown)}")
        agent = await self.get_agent(name)
        if agent is None:
            return None
        agent = replace(agent, **fields)
        await self.save_agent(agent)
        return agent

    # transports' id maps -----------------------------------------------
    @abc.abstractmethod
    async def map_external(self, transport: str, hub_id: int, external_id: str) -> None:
        """Remember that ``hub_id`` is ``external_id`` on ``transport``."""

    @abc.abstractmethod
    async def hub_id_for(self, transport: str, external_id: str) -> int | None: ...

    @abc.abstractmethod
    async def external_ids_for(self, transport: str, hub_id: int) -> list[str]: ...

    # files (see :mod:`chatbus.core.files`) --------------------------------
    @abc.abstractmethod
    async def add_file(self, attachment: Attachment, uploaded_at: float) -> None:
        """Keep a file's metadata; ``uploaded_at`` in seconds since the epoch."""

    @abc.abstractmethod
    async def get_file(self, file_id: str) -> Attachment | None: ...

    @abc.abstractmethod
    async def touch_file(self, file_id: str, uploaded_at: float) -> Attachment | None:
        """A file uploaded again: its upload time becomes ``uploaded_at``; its metadata, None when unknown."""

    @abc.abstractmethod
    async def files_total(self) -> int:
        """The bytes of every file kept."""

    @abc.abstractmethod
    async def orphan_files(self, uploaded_before: float, limit: int = 1000) -> list[Attachment]:
        """Files no message carries (deleted ones included), uploaded before ``uploaded_before``."""

    @abc.abstractmethod
    async def remove_file(self, file_id: str, *, unused_since: float | None) -> Attachment | None:
        """Forget a file and return its metadata, only when nothing needs it: with
        ``unused_since``, when no message carries it and it was uploaded before then;
        without, when no message that is not deleted carries it (deleted ones lose it)."""

    @abc.abstractmethod
    async def message_file_ids(self, message_id: int) -> list[str]:
        """The ids of the files a message carried (still known after it was deleted)."""

    # small key-value state (offsets, markers) --------------------------
    @abc.abstractmethod
    async def get_state(self, key: str) -> str | None: ...

    @abc.abstractmethod
    async def set_state(self, key: str, value: str | None) -> None:
        """Set a value; ``None`` deletes it."""


class SharedStore(Protocol):
    """What a store several nodes share (``shared``) offers besides :class:`Store` (the Redis
    engine's :class:`~chatbus.core.engine.redis_store.RedisStore`); :mod:`~chatbus.core.cluster` uses it."""

    async def set_state_fenced(self, key: str, value: str | None, lease: Lease) -> bool:
        """Write ``key`` only while ``lease`` is still the current grant of its duty."""
        ...

    async def trim(self, max_age: float) -> int:
        """Drop messages older than ``max_age`` seconds (0: none by age) and what belonged to those the log dropped."""
        ...

    async def reload_last_id(self) -> int:
        """Read the last id again, even when lower (the log was replaced)."""
        ...
