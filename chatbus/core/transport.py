"""The Transport protocol and a small base class for transport authors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError

if TYPE_CHECKING:
    from types import TracebackType

    from .hub import Hub
    from .message import Event, Message

__all__ = ["BaseTransport", "Health", "Transport", "TransportSettings", "describe_validation_error"]


@runtime_checkable
class Transport(Protocol):
    """What the hub needs of a transport.

    ``deliver`` receives every stored message, in id order, including the ones
    that came in through this transport: the transport decides whether its
    own users have already seen it. It should return quickly; the hub calls it
    from a task of its own per transport, so a slow transport only delays
    itself.
    """

    name: str

    async def start(self, hub: Hub) -> None: ...

    async def stop(self) -> None: ...

    async def deliver(self, message: Message) -> None: ...

    def is_connected(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Health:
    """A transport's own view of whether it works."""

    healthy: bool
    detail: str = "ok"


class TransportSettings(BaseModel):
    """Base for a transport's settings model: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def describe_validation_error(error: ValidationError, section: str = "") -> str:
    """One line naming the first bad key and what is allowed there."""
    first = error.errors()[0]
    key = ".".join(str(part) for part in first.get("loc", ()))
    key = f"{section}.{key}" if section and key else (section or key)
    value = first.get("input")
    shown = "" if isinstance(value, Mapping) else f", got {value!r}"
    env = "CHATBUS_" + key.upper().replace(".", "__") if key else ""
    where = f"{key} ({env})" if env else "configuration"
    return f"invalid setting {where}: {first.get('msg', 'invalid value')}{shown}"


class BaseTransport:
    """Shared chores for transports: settings, health and context management.

    Subclasses set ``name`` and ``settings_model`` and implement ``start``,
    ``stop``, ``deliver`` and ``is_connected``. ``notify`` receives presence,
    agent status and typing events; the default ignores them.
    """

    name: str = "transport"
    settings_model: ClassVar[type[TransportSettings]] = TransportSettings

    def __init__(self, settings: TransportSettings | Mapping[str, Any] | None = None) -> None:
        if settings is None:
            settings = {}
        if isinstance(settings, Mapping):
            try:
                settings = self.settings_model.model_validate(dict(settings))
            except ValidationError as exc:
                raise ConfigError(describe_validation_error(exc, self.name)) from None
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
