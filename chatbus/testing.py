"""A test kit for plugin authors, loaded as a pytest plugin (``pytest11``).

Fixtures (none autouse):

``chatbus_hub``
    a running :class:`~chatbus.Hub` with an in-memory store, no entry points,
    the built-in plugins, the plugins of ``chatbus_plugins`` and one
    :class:`MemoryTransport`;
``chatbus_transport``
    that transport: ``await chatbus_transport.say("alice", "hi @bob")``
    sends as a person and ``chatbus_transport.delivered`` records what the hub
    handed out;
``chatbus_plugins``
    override it to return the plugins under test (modules, objects, classes);
``chatbus_settings``
    override it to change settings (``Settings.isolated(...)``);
``chatbus_clock``
    a :class:`FakeClock` the hub uses; ``chatbus_clock.advance(1.5)``.

The async fixtures need pytest-asyncio.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, TypeVar

import pytest

from .core.errors import ChatbusError
from .core.hub import Hub
from .core.message import DEFAULT_ROOM, Change, Credentials, Event, Identity, Message, Notice
from .core.settings import Settings
from .core.store import MemoryStore
from .core.transport import BaseTransport

__all__ = ["FakeClock", "MemoryTransport", "make_hub"]

T = TypeVar("T")


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MemoryTransport(BaseTransport):
    """A transport that records every delivery and injects messages from people."""

    def __init__(self, name: str = "memory") -> None:
        super().__init__()
        self.name = name
        self.delivered: list[Message] = []
        self.events: list[Event] = []
        self.changes: list[Change] = []
        self.notices: list[Notice] = []
        self._changed = asyncio.Condition()
        self._identities: dict[str, Identity] = {}

    async def deliver(self, message: Message) -> None:
        self.delivered.append(message)
        async with self._changed:
            self._changed.notify_all()

    async def notify(self, event: Event) -> None:
        self.events.append(event)
        async with self._changed:
            self._changed.notify_all()

    async def tell(self, notice: Notice) -> None:
        """What the system told one person, recorded in :attr:`notices`."""
        self.notices.append(notice)
        async with self._changed:
            self._changed.notify_all()

    async def changed(self, change: Change) -> None:
        """Edits, deletions and reactions, recorded in :attr:`changes`."""
        self.changes.append(change)
        async with self._changed:
            self._changed.notify_all()

    @property
    def texts(self) -> list[str]:
        """The text of every message delivered so far, in order."""
        return [message.text for message in self.delivered]

    def _hub(self) -> Hub:
        if self.hub is None:
            raise ChatbusError("the memory transport is not running")
        return self.hub

    async def join(self, user_id: str, role: str = "user", **credentials: Any) -> Identity:
        """Authenticate ``user_id`` through ``on_auth`` and put them online."""
        hub = self._hub()
        identity = await hub.authenticate(
            Credentials(
                user_id=user_id, role=role, token=credentials.pop("token", None), transport=self.name, extra=credentials
            )
        )
        if identity.user_id not in self._identities:
            await hub.connect(identity, self.name)
        self._identities[identity.user_id] = identity
        return identity

    async def leave(self, user_id: str) -> None:
        identity = self._identities.pop(user_id, None)
        if identity is not None:
            await self._hub().disconnect(identity, self.name)

    async def say(
        self,
        user: str | Identity,
        text: str,
        *,
        room: str = DEFAULT_ROOM,
        reply_to: int | None = None,
        attachments: Sequence[str] = (),
    ) -> Message:
        """Send ``text`` as a person (joining first when needed), through the whole pipeline;
        ``attachments``: ids of files saved with ``hub.files``."""
        identity = user if isinstance(user, Identity) else self._identities.get(user) or await self.join(user)
        return await self._hub().receive(
            identity, text, room=room, reply_to=reply_to, transport=self.name, attachments=attachments
        )

    async def wait_for(self, predicate: Callable[[Message], bool], timeout: float = 5.0) -> Message:
        """The first delivered message matching ``predicate``, waiting up to ``timeout`` seconds."""
        return await self._first(self.delivered, predicate, timeout)

    async def wait_for_event(self, predicate: Callable[[Event], bool], timeout: float = 5.0) -> Event:
        """The first event (presence, agent status, typing) matching ``predicate``."""
        return await self._first(self.events, predicate, timeout)

    async def wait_for_change(self, predicate: Callable[[Change], bool], timeout: float = 5.0) -> Change:
        """The first change (edit, deletion, reaction) matching ``predicate``."""
        return await self._first(self.changes, predicate, timeout)

    async def _first(self, items: list[T], predicate: Callable[[T], bool], timeout: float) -> T:
        def found() -> T | None:
            return next((item for item in items if predicate(item)), None)

        async def wait() -> T:
            async with self._changed:
                await self._changed.wait_for(lambda: found() is not None)
            result = found()
            assert result is not None
            return result

        return await asyncio.wait_for(wait(), timeout)


def make_hub(
    plugins: Iterable[object] = (),
    *,
    settings: Settings | None = None,
    clock: Callable[[], float] | None = None,
    transports: Iterable[Any] | None = None,
    builtins: bool = True,
) -> Hub:
    """A hub for tests: in-memory store, no entry points, a MemoryTransport
    unless ``transports`` says otherwise. Start it with ``async with hub:``."""
    return Hub(
        settings if settings is not None else Settings.isolated(db=":memory:"),
        store=MemoryStore(),
        transports=list(transports) if transports is not None else [MemoryTransport()],
        plugins=plugins,
        load_entrypoints=False,
        builtins=builtins,
        clock=clock if clock is not None else FakeClock(),
    )


@pytest.fixture
def chatbus_plugins() -> list[object]:
    """The plugins under test; override this fixture in your conftest or module."""
    return []


@pytest.fixture
def chatbus_settings() -> Settings:
    """Settings for ``chatbus_hub``; override to change them."""
    return Settings.isolated(db=":memory:")


@pytest.fixture
def chatbus_clock() -> FakeClock:
    return FakeClock()


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the kit then explains what is missing

    @pytest.fixture
    def chatbus_hub() -> None:
        pytest.fail("the chatbus_hub fixture needs pytest-asyncio: pip install pytest-asyncio")

else:

    @pytest_asyncio.fixture
    async def chatbus_hub(  # type: ignore[misc]
        chatbus_plugins: list[object], chatbus_settings: Settings, chatbus_clock: FakeClock
    ) -> AsyncIterator[Hub]:
        hub = make_hub(chatbus_plugins, settings=chatbus_settings, clock=chatbus_clock)
        async with hub:
            yield hub


@pytest.fixture
def chatbus_transport(chatbus_hub: Hub) -> MemoryTransport:
    transport = next(t for t in chatbus_hub.transports.values() if isinstance(t, MemoryTransport))
    return transport
