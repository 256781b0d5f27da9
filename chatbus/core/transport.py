"""The Transport protocol and a small base class for transport authors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from .sections import TransportSettings, validate_section

if TYPE_CHECKING:
    from types import TracebackType

    from .hub import Hub
    from .message import Change, Event, Message, Notice

__all__ = [
    "BaseTransport",
    "BuiltFromOptions",
    "ChangeAware",
    "Draining",
    "Health",
    "Notifiable",
    "Reachable",
    "Reporting",
    "Telling",
    "Transport",
    "TransportSettings",
]


@runtime_checkable
class Transport(Protocol):
    """What the hub needs of a transport.

    ``deliver`` receives every stored message, in id order, including the ones
    that came in through this transport: the transport decides whether its
    own users have already seen it. It should return quickly; the hub calls it
    from a task of its own per transport, so a slow transport only delays
    itself.

    Beyond these, a transport may offer the optional capabilities below; the
    hub and the built-in plugins use each one when a transport has it, and
    :class:`BaseTransport` has all of them with sensible defaults.
    """

    name: str

    async def start(self, hub: Hub) -> None: ...

    async def stop(self) -> None: ...

    async def deliver(self, message: Message) -> None: ...

    def is_connected(self) -> bool: ...


@runtime_checkable
class BuiltFromOptions(Protocol):
    """Optional, on the class: ``from_options(section)`` builds the transport
    from its settings section; without it the class is called with no arguments."""

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Transport: ...


@runtime_checkable
class Notifiable(Protocol):
    """Optional: ``notify(event)`` receives presence, agent status and typing
    events (:data:`chatbus.core.message.Event`), in order, from the same
    per-transport queue as ``deliver``."""

    async def notify(self, event: Event) -> None: ...


@runtime_checkable
class ChangeAware(Protocol):
    """Optional: ``changed(change)`` receives edits, deletions and reactions of
    stored messages (:data:`chatbus.core.message.Change`), in order with the
    messages; a transport without it relays messages as they were first sent."""

    async def changed(self, change: Change) -> None: ...


@runtime_checkable
class Telling(Protocol):
    """Optional: ``tell(notice)`` says something to one person only, on every
    connection they have on this transport (a link code); nothing is stored."""

    async def tell(self, notice: Notice) -> None: ...


@runtime_checkable
class Reachable(Protocol):
    """Optional: ``listens_publicly()`` is True when people beyond this machine
    can connect; the built-in auth plugin then refuses open authentication."""

    def listens_publicly(self) -> bool: ...


@runtime_checkable
class Reporting(Protocol):
    """Optional: ``status()`` gives figures for ``/ws-info`` and ``chatbus status``:
    at least ``healthy`` (bool) and ``detail`` (text for an operator)."""

    def status(self) -> dict[str, Any]: ...


@runtime_checkable
class Draining(Protocol):
    """Optional: ``stop_accepting(restart_in=...)`` is the first step of a stop:
    take no new connections or messages while what was accepted is delivered.
    ``restart_in`` (seconds, or None for a plain stop) is when clients should
    come back; the WebSocket transport then closes them with 1012 and that hint."""

    async def stop_accepting(self, *, restart_in: float | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class Health:
    """A transport's own view of whether it works."""

    healthy: bool
    detail: str = "ok"


class BaseTransport:
    """Shared chores for transports: settings, health and context management.

    Subclasses set ``name`` and ``settings_model`` and implement ``start``,
    ``stop``, ``deliver`` and ``is_connected``. Every optional capability is
    here with a default: ``from_options`` validates the section with
    ``settings_model``, ``notify`` ignores events, ``listens_publicly`` says
    False, ``status`` reports :meth:`health`.
    """

    name: str = "transport"
    settings_model: ClassVar[type[TransportSettings]] = TransportSettings

    def __init__(self, settings: TransportSettings | Mapping[str, Any] | None = None) -> None:
        if settings is None:
            settings = {}
        if isinstance(settings, Mapping):
            settings = validate_section(self.settings_model, settings, self.name)
        self.settings = settings
        self.hub: Hub | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> BaseTransport:
        """Build the transport from its section of the chatbus settings."""
        return cls(options)

    async def start(self, hub: Hub) -> None:
        self.hub = hub

    async def stop(self) -> None:
        self.hub = None

    async def deliver(self, message: Message) -> None:
        raise NotImplementedError

    async def notify(self, event: Event) -> None:
        """Presence, agent status and typing events; ignored by default."""

    def is_connected(self) -> bool:
        return self.hub is not None

    def listens_publicly(self) -> bool:
        """Whether people beyond this machine can connect; override when they can."""
        return False

    def health(self) -> Health:
        return Health(self.is_connected(), "ok" if self.is_connected() else "not running")

    def status(self) -> dict[str, Any]:
        """Figures for ``/ws-info`` and status output."""
        health = self.health()
        return {"healthy": health.healthy, "detail": health.detail}

    def running(self, hub: Hub) -> _Running:
        """``async with transport.running(hub):`` starts and always stops it."""
        return _Running(self, hub)


class _Running:
    def __init__(self, transport: BaseTransport, hub: Hub) -> None:
        self._transport = transport
        self._hub = hub

    async def __aenter__(self) -> BaseTransport:
        await self._transport.start(self._hub)
        return self._transport

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._transport.stop()
