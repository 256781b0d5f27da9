"""The Hub: what transports and plugins talk to, and the lifecycle of it all.

The hub owns the parts and wires them; each part has a module of its own:
:mod:`~chatbus.core.pipeline` takes a message from a person or an agent to
the store, :mod:`~chatbus.core.delivery` feeds each transport in id order,
:mod:`~chatbus.core.hooks` calls the plugins, :mod:`~chatbus.core.loader`
finds and registers them and builds the transports,
:mod:`~chatbus.core.roster` knows who is here, :mod:`~chatbus.core.tasks`
keeps the hub's own tasks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, Self

import pluggy

from . import hookspecs
from .changes import Changes
from .cluster import Cluster
from .delivery import Deliveries
from .errors import AuthError, ChatbusError, ConfigError, TransportError
from .files import Files
from .hooks import Hooks
from .identity import MENTION_SUFFIX, refusal, reserved_name
from .lifecycle import start_all, stop_accepting, stop_all
from .links import Links
from .loader import Loader, PluginInfo
from .message import (
    DEFAULT_ROOM,
    SYSTEM_SENDER,
    Credentials,
    Event,
    Identity,
    Kind,
    Message,
    Notice,
    Reaction,
    Typing,
)
from .metrics import Metrics
from .pipeline import Pipeline
from .roster import Member, Roster, RosterAccess
from .sections import SectionSettings
from .settings import Settings
from .store import Page, Store, open_engine_store
from .tasks import Tasks
from .transport import Reporting, Transport

__all__ = ["Hub", "Member"]

log = logging.getLogger("chatbus.hub")

#: Seconds ``/readyz`` waits for the store before saying it does not answer.
_READY_TIMEOUT = 2.0


class Hub(RosterAccess):
    """The centre of chatbus: owns the plugins, the transports and the store.

    ``Hub(settings)`` builds everything from configuration: built-in plugins,
    plugins and transports found by entry point. Tests and embedders pass
    ``load_entrypoints=False`` and give ``plugins`` and ``transports``
    explicitly, and a ``clock`` (seconds, monotonic) that the rate limiter and
    agents use instead of the real time.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: Store | None = None,
        transports: Iterable[Transport] | None = None,
        plugins: Iterable[object] = (),
        load_entrypoints: bool = True,
        builtins: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings if settings is not None else Settings.load()
        self.clock = clock
        self.store: Store = store if store is not None else open_engine_store(self.settings)
        #: This node's part when several nodes share the store (see :mod:`~chatbus.core.cluster`).
        self.cluster = Cluster(self)
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.pm.hook.add_hookspecs.call_historic(kwargs={"pm": self.pm})
        self.hooks = Hooks(self.pm)
        #: Files sent with messages, ``[files]`` settings (see :mod:`~chatbus.core.files`).
        self.files = Files.configured(self.settings, store=self.store, hooks=self.hooks)
        #: Prometheus metrics of this hub (``GET /metrics``).
        self.metrics = Metrics(self)
        if self.metrics.enabled:
            self.store.observe = self.metrics.observe_store
            self.files.count = self.metrics.count_file
        #: People online and the agents' roster.
        self.roster = Roster(self.store)
        #: Accounts of other transports linked to people (see :mod:`~chatbus.core.links`).
        self.links = Links(self.store, self.clock)
        self.loader = Loader(self, self.pm)
        self.transports: dict[str, Transport] = {}
        self._deliveries = Deliveries(self._on_dispatch, self.metrics.messages_sent if self.metrics.enabled else None)
        self._pipeline = Pipeline(
            hooks=self.hooks,
            store=self.store,
            deliveries=self._deliveries,
            roster=self.roster,
            files=self.files,
            max_text_length=self.settings.max_text_length,
            check_running=self._check_running,
            metrics=self.metrics,
            clock=self.clock,
        )
        self._changes = Changes(
            hooks=self.hooks, store=self.store, deliveries=self._deliveries, pipeline=self._pipeline,
            after=self._after_change, received=self.metrics.messages_received,
        )  # fmt: skip
        self._tasks = Tasks()
        self._started_event = asyncio.Event()
        self._running = False
        self._stopping = False
        self.started_at: float | None = None

        self.loader.load_plugins(builtins=builtins, load_entrypoints=load_entrypoints, extra=plugins)
        if transports is not None:
            for transport in transports:
                self.add_transport(transport)
        elif load_entrypoints:
            self.loader.load_transports(self.settings.transports)
        self.loader.check_file_keys()

    # plugins and transports --------------------------------------------------
    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object (module, class instance) under ``name``
        (by default its own ``name``, module or class name), so logs can say which failed."""
        return self.loader.register(plugin, name)

    @property
    def plugin_infos(self) -> list[PluginInfo]:
        """Every plugin and transport loaded, or found broken, for ``chatbus plugins``."""
        return self.loader.infos

    def plugin_settings(self, name: str) -> SectionSettings | None:
        """The validated settings of the plugin registered as ``name``, if it declares a model."""
        return self.loader.plugin_settings.get(name)

    def add_transport(self, transport: Transport, *, dist: tuple[str, str] | None = None) -> None:
        """Add a transport before the hub starts."""
        if not isinstance(transport, Transport):
            raise ConfigError(f"{transport!r} is not a transport: it needs name, start, stop, deliver and is_connected")
        if transport.name in self.transports:
            raise ConfigError(f"transport {transport.name!r} is configured twice")
        if self._running:
            raise TransportError("transports can only be added before the hub starts")
        self.transports[transport.name] = transport
        self.loader.add_transport_info(transport, dist)

    def transport_status(self) -> dict[str, dict[str, Any]]:
        """Health of every transport, for ``/ws-info`` and status output."""
        out: dict[str, dict[str, Any]] = {}
        for name, transport in self.transports.items():
            elsewhere = self.cluster.standby_status(name)
            if elsewhere is not None:
                out[name] = elsewhere
            elif isinstance(transport, Reporting):
                out[name] = transport.status()
            else:
                connected = transport.is_connected()
                out[name] = {"healthy": connected, "detail": "ok" if connected else "not connected"}
        return out

    # lifecycle -------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._running and not self._stopping

    async def start(self) -> None:
        """Open the store, run ``on_startup``, start every transport."""
        if self._running:
            return
        await self.store.open()
        try:
            await self.roster.load()
            await self.links.load()
            await self._pipeline.recall()
            self.roster.notify = self.notify
            self._deliveries.resume_after(self.store.last_id)
            self._running = True
            self._stopping = False
            sweep_in = self.cluster.duty
            await self.files.start(lambda sweeper: self.spawn(sweep_in("files-sweep", sweeper), background=True))
            await self.hooks.startup(self)
            here = self.cluster.split(list(self.transports.values()))  # the others run on the node with their duty
            self._deliveries.start(here)
            await self.cluster.start()
            self.metrics.serve_from(self.settings.metrics)
            await start_all(self, here)
        except BaseException:
            self._running = False
            self.roster.notify = None
            self.metrics.close()
            await self._tasks.cancel_background()
            await self._deliveries.stop()
            await self.store.close()
            raise
        self.started_at = time.time()
        self._started_event.set()
        log.info("hub running with transports: %s", ", ".join(self.transports) or "none")

    async def ready(self) -> tuple[bool, str]:
        """Whether this node can take connections now, and why not: for ``/readyz``."""
        if not self.running:
            return False, "chatbus is starting or stopping"
        try:
            await asyncio.wait_for(self.store.ping(), _READY_TIMEOUT)
        except TimeoutError:
            return False, f"the message store did not answer within {_READY_TIMEOUT:g} seconds"
        except ChatbusError as exc:
            return False, f"the message store does not answer: {exc}"
        return True, "ready"

    async def stop(self, timeout: float = 10.0, *, restart_in: float | None = None) -> None:
        """Take nothing new, deliver what was accepted, stop transports, run ``on_shutdown``, close
        the store; ``restart_in``: seconds until clients should come back (WebSocket: 1012, not 1001)."""
        if not self._running or self._stopping:
            return
        self._stopping = True  # from here ``receive`` and ``send`` refuse new messages
        self._started_event.clear()
        try:
            await stop_accepting(self.transports.values(), restart_in)
            log.info("stopping 1/3: no new connections or messages are taken")
            await self.cluster.settle(timeout / 4)
            await self._tasks.cancel_background()
            await self._tasks.wait(timeout / 2)
            await self._deliveries.drain(timeout / 2)
            log.info("stopping 2/3: messages up to id %d are stored and handed to the transports", self.store.last_id)
            await stop_all([t for t in self.transports.values() if t.name not in self.cluster.standby])
            log.info("stopping 3/3: transports stopped")
            await self._deliveries.stop()
            await self.hooks.shutdown(self)
            await self._tasks.wait(timeout / 2)
        finally:
            self.metrics.close()
            await self.store.close()
            await self.files.stop()
            self._running = False
            self._stopping = False
            self.roster.notify = None
            self.roster.clear_people()
            log.info("hub stopped")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def spawn(self, coro: Awaitable[Any], *, name: str | None = None, background: bool = False) -> asyncio.Task[Any]:
        """Run a coroutine owned by the hub, its failure logged.

        Short work is awaited at shutdown. ``background=True`` marks work that
        may run for minutes (an agent's task, a periodic loop): shutdown
        cancels it at once instead of waiting, so it must clean up on
        ``CancelledError``.
        """
        return self._tasks.spawn(coro, name=name, background=background)

    async def settle(self) -> None:
        """Wait until the plugin work started so far (``on_message`` handlers and
        what they started, background work aside) has finished; for tests."""
        await self._tasks.settle()

    async def wait_started(self) -> None:
        """Wait until ``start`` has finished and every transport runs (for
        plugins that post something once clients can receive it)."""
        await self._started_event.wait()

    # the pipeline (see :mod:`~chatbus.core.pipeline`) -------------------------
    def _check_running(self) -> None:
        if not self.running:
            raise TransportError("chatbus is not running; try again when it is back")

    async def receive(
        self,
        identity: Identity,
        text: str,
        *,
        room: str = DEFAULT_ROOM,
        reply_to: int | None = None,
        transport: str | None = None,
        client_id: str | None = None,
        mentions: Sequence[str] = (),
        attachments: Sequence[str] = (),
    ) -> Message:
        """Accept a message from a person (``attachments``: ids of uploaded files): the whole pipeline.
        Raises ``InvalidMessage``/``MessageTooLarge`` for bad content, ``NotFound`` for an unknown
        file, ``RateLimited`` when the rate limiter refuses (nothing is stored); returns the stored message."""
        return await self._pipeline.receive(
            identity, text, room=room, reply_to=reply_to, transport=transport, client_id=client_id,
            mentions=mentions, attachments=attachments,
        )  # fmt: skip

    async def send(
        self,
        text: str,
        *,
        sender: str = SYSTEM_SENDER,
        reply_to: int | None = None,
        room: str = DEFAULT_ROOM,
        kind: Kind | None = None,
        role: str | None = None,
        streaming: bool = False,
        attachments: Sequence[str] = (),
    ) -> Message:
        """Post a message as an agent or as the system (not rate limited); ``streaming``: an answer
        still being written, completed by :meth:`edit`; ``attachments``: ids of files (``hub.files``)."""
        return await self._pipeline.send(
            text, sender=sender, reply_to=reply_to, room=room, kind=kind, role=role, streaming=streaming,
            attachments=attachments,
        )  # fmt: skip

    # messages that change (see :mod:`~chatbus.core.changes`) -------------------
    async def edit(
        self, identity: Identity, message_id: int, text: str, *, streaming: bool = False, transport: str | None = None
    ) -> Message:
        """Change a message's text (its sender or a manager); ``NotFound``, ``Forbidden``, ``InvalidMessage``.
        ``transport`` (here and below): where the change came from, for the metrics; None: the hub."""
        return await self._changes.edit(identity, message_id, text, streaming=streaming, transport=transport)

    async def delete(self, identity: Identity, message_id: int, *, transport: str | None = None) -> Message:
        """Delete a message (its sender or a manager), leaving a tombstone; ``NotFound``, ``Forbidden``."""
        return await self._changes.delete(identity, message_id, transport=transport)

    async def react(
        self, identity: Identity, message_id: int, emoji: str, on: bool = True, *, transport: str | None = None
    ) -> Reaction:
        """Add (``on``) or remove a reaction of ``identity``; ``NotFound``, ``InvalidMessage``."""
        return await self._changes.react(identity, message_id, emoji, on, transport=transport)

    def _after_change(self, hook: str, kwargs: dict[str, Any]) -> None:
        if hook == "on_delete":
            self.spawn(self.files.message_deleted(kwargs["message"].id), name="chatbus-files-of-deleted")
        pending = self.hooks.each(hook, hub=self, **kwargs)
        if pending:
            self.spawn(_gather(pending), name=f"chatbus-{hook}")

    def _on_dispatch(self, message: Message) -> None:
        if not self.cluster.shared:  # several nodes: one node runs the plugins (the on-message duty)
            self._run_hooks(message)

    def _run_hooks(self, message: Message) -> None:
        pending = self.hooks.message(message, self)
        if pending:
            self.spawn(_gather(pending), name=f"chatbus-on-message-{message.id}")

    def notify(self, event: Event) -> None:
        """Hand a presence, agent-status or typing event to every transport."""
        self._deliveries.notify(event)

    def tell(self, user_id: str, text: str, room: str = DEFAULT_ROOM) -> None:
        """Say ``text`` to one person only, on the transports that can (nothing is stored)."""
        self._deliveries.tell(Notice(user_id, text, room))

    # people ----------------------------------------------------------------
    async def authenticate(self, credentials: Credentials) -> Identity:
        """Run ``on_auth``; raises ``AuthError`` with a message for the user."""
        identity = await self.hooks.auth(credentials)
        if identity is None:
            raise AuthError("No authentication method accepted these credentials.")
        if not isinstance(identity, Identity):
            log.error("on_auth returned %r instead of an Identity", identity)
            raise AuthError("Authentication is misconfigured on the server; tell its operator.")
        if identity.kind == "human" and (person := self.links.person_of(identity.user_id)) is not None:
            identity = Identity(person, identity.role, "human")  # a linked account posts as its person
        if identity.kind == "human":
            suffix = str(getattr(self.plugin_settings("mentions"), "strip_suffix", MENTION_SUFFIX))
            taken = reserved_name(identity.user_id, self.agents, suffix)
            # hired from the command line since the roster was last read
            if taken is None and self.running and await self.store.get_agent(identity.user_id) is not None:
                taken = identity.user_id
            if taken is not None:
                raise AuthError(refusal(identity.user_id, taken))
            shown = identity.display_name
            if shown and shown != identity.user_id and reserved_name(shown, self.agents, suffix) is not None:
                # A name another transport vouches for may look like an agent's; it is shown with the person's id.
                identity = replace(identity, display_name=f"{shown} ({identity.user_id})")
        return identity

    async def connect(self, identity: Identity, transport: str) -> None:
        """A connection for ``identity`` opened; the first one puts them online."""
        if self.roster.arrive(identity, transport):
            await self.cluster.arrived(identity.user_id)
            await self.hooks.connect(identity, transport, self)

    async def disconnect(self, identity: Identity, transport: str) -> None:
        """A connection closed; the last one takes them offline."""
        if self.roster.leave(identity, transport):
            await self.cluster.left(identity.user_id)
            await self.hooks.disconnect(identity, transport, self)

    def typing(self, identity: Identity, room: str = DEFAULT_ROOM, transport: str | None = None) -> None:
        self.notify(Typing(identity.user_id, room, transport, identity.display_name))

    # reading -----------------------------------------------------------------
    async def since(self, after_id: int, limit: int, room: str | None = None) -> list[Message]:
        return await self.store.since(after_id, limit, room)

    async def history(self, room: str | None = DEFAULT_ROOM, before: int | None = None, limit: int = 50) -> Page:
        return await self.store.before(before, limit, room)

    async def rooms(self) -> list[str]:
        """Every room with messages, the most recently active first, and the default room."""
        found = await self.store.rooms()
        return found if DEFAULT_ROOM in found else [DEFAULT_ROOM, *found]

    def stats(self) -> dict[str, Any]:
        """Agents in total and by status, transports running, people connected."""
        return {
            "agents": self.roster.by_status(),
            "transports": self.transport_status(),
            "transports_running": [name for name, t in self.transports.items() if self.running and t.is_connected()],
            "connected_users": self.roster.connected,
            "running": self.running,
            "last_message_id": self.store.last_id,
            "engine": self.cluster.describe(),
        }


async def _gather(pending: list[Awaitable[Any]]) -> None:
    await asyncio.gather(*pending)
