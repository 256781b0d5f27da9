"""The Hub: plugin manager, transports' lifecycle and the message pipeline.

A message from a person goes: validate, ``rate_limit``, ``parse_message``,
number it, store it, hand it to every running transport, then ``on_message``
on every plugin. Messages from agents and the system (``Hub.send``) skip the
rate limiter. Each transport is fed from a queue by a task of its own, so one
slow or failing transport never delays another, and every transport sees the
messages in id order.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import version as _dist_version
from typing import Any, Self

import pluggy

from . import hookspecs
from .errors import (
    AuthError,
    ChatbusError,
    ConfigError,
    InvalidMessage,
    MessageTooLarge,
    PluginError,
    RateLimited,
    TransportError,
)
from .loader import (
    BUILTIN_PLUGINS,
    PLUGIN_GROUP,
    TRANSPORT_GROUP,
    PluginInfo,
    describe_error,
    distribution_of,
    import_object,
    instantiate_plugin,
    iter_entry_points,
)
from .message import (
    DEFAULT_ROOM,
    SYSTEM_SENDER,
    Agent,
    AgentStatus,
    AgentStatusName,
    Credentials,
    Event,
    Identity,
    Incoming,
    Kind,
    Message,
    Parsed,
    Presence,
    RateDecision,
    Typing,
    utcnow,
    valid_name,
)
from .settings import Settings
from .store import Store, open_store
from .transport import BaseTransport, Transport

__all__ = ["Hub", "Member"]

log = logging.getLogger("chatbus.hub")

_EMPTY_PARSE = Parsed()
_AGENT_STATUSES = ("idle", "working", "stuck", "completed")


@dataclass(frozen=True, slots=True)
class Member:
    """Someone in the chat right now: a connected person or a hired agent."""

    user_id: str
    role: str
    kind: Kind
    status: str  # "online" for people; the work status for agents
    current_task: str | None = None
    progress: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The ``users`` entry of ``auth_response``; agents also say what they are doing."""
        entry: dict[str, Any] = {"id": self.user_id, "role": self.role, "kind": self.kind, "status": self.status}
        if self.kind == "agent":
            entry["currentTask"] = self.current_task
            entry["progress"] = self.progress
        return entry


class Hooks:
    """The typed facade over the plugin manager: the only place that calls hooks.

    Implementations are walked in pluggy's order (``tryfirst`` first,
    ``trylast`` last, later registrations before earlier ones) and awaited
    when they return an awaitable, so ``async def`` works for every hook.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm

    def _impls(self, name: str) -> list[Any]:
        caller = getattr(self._pm.hook, name)
        return [impl for impl in reversed(caller.get_hookimpls()) if not (impl.wrapper or impl.hookwrapper)]

    async def _first(self, name: str, **kwargs: Any) -> Any:
        for impl in self._impls(name):
            result = impl.function(*[kwargs[arg] for arg in impl.argnames])
            if inspect.isawaitable(result):
                result = await result
            if result is not None:
                return result
        return None

    def _call_all(self, name: str, **kwargs: Any) -> list[Awaitable[Any]]:
        """Call every implementation; failures are logged with the plugin's
        name and do not stop the others. Returns the awaitables to wait for."""
        pending: list[Awaitable[Any]] = []
        for impl in self._impls(name):
            try:
                result = impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception:
                log.exception("plugin %r failed in %s", impl.plugin_name, name)
                continue
            if inspect.isawaitable(result):
                pending.append(_guard(result, impl.plugin_name, name))
        return pending

    async def _all(self, name: str, **kwargs: Any) -> None:
        pending = self._call_all(name, **kwargs)
        if pending:
            await asyncio.gather(*pending)

    async def auth(self, credentials: Credentials) -> Identity | None:
        result: Identity | None = await self._first("on_auth", credentials=credentials)
        return result

    async def rate_limit(self, identity: Identity, message: Incoming) -> RateDecision | None:
        result: RateDecision | None = await self._first("rate_limit", identity=identity, message=message)
        return result

    async def parse(self, text: str) -> Parsed | None:
        result: Parsed | None = await self._first("parse_message", text=text)
        return result

    def message(self, message: Message, hub: Hub) -> list[Awaitable[Any]]:
        return self._call_all("on_message", message=message, hub=hub)

    async def connect(self, identity: Identity, transport: str, hub: Hub) -> None:
        await self._all("on_connect", identity=identity, transport=transport, hub=hub)

    async def disconnect(self, identity: Identity, transport: str, hub: Hub) -> None:
        await self._all("on_disconnect", identity=identity, transport=transport, hub=hub)

    async def startup(self, hub: Hub) -> None:
        # An exception here aborts start-up, so it is not swallowed.
        for impl in self._impls("on_startup"):
            result = impl.function(*[{"hub": hub}[arg] for arg in impl.argnames])
            if inspect.isawaitable(result):
                await result

    async def shutdown(self, hub: Hub) -> None:
        await self._all("on_shutdown", hub=hub)

    async def agent_reply(
        self, agent: Agent, kind: str, details: dict[str, Any], message: Message | None
    ) -> str | None:
        try:
            text = await self._first("agent_reply", agent=agent, kind=kind, details=details, message=message)
        except Exception:
            log.exception("agent_reply failed for %r; using the default text", kind)
            return None
        if text is not None and not isinstance(text, str):
            log.error("agent_reply returned %r instead of a string; using the default text", text)
            return None
        return text

    async def agent_work(self, work: Any) -> Any:
        return await self._first("agent_work", work=work)


async def _guard(awaitable: Awaitable[Any], plugin: str, hook: str) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("plugin %r failed in %s", plugin, hook)


class _Feed:
    """Feeds one transport from its own queue, in order, isolating failures."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.queue: asyncio.Queue[Message | Event] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self._notify = getattr(transport, "notify", None)
        self._warned_at = 1000

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(
            self._run(), name=f"chatbus-feed-{self.transport.name}"
        )

    def put(self, item: Message | Event) -> None:
        self.queue.put_nowait(item)
        size = self.queue.qsize()
        if size >= self._warned_at:
            log.warning("transport %r is falling behind: %d items waiting", self.transport.name, size)
            self._warned_at *= 10

    async def _run(self) -> None:
        queue = self.queue
        while True:
            item = await queue.get()
            try:
                if isinstance(item, Message):
                    await self.transport.deliver(item)
                elif self._notify is not None:
                    await self._notify(item)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("transport %r failed to deliver %r", self.transport.name, _describe(item))
            finally:
                queue.task_done()
            if queue.empty() and self._warned_at > 1000:
                self._warned_at = 1000

    async def drain(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.queue.join(), timeout)
        except TimeoutError:
            log.warning(
                "transport %r still had %d items to deliver at shutdown", self.transport.name, self.queue.qsize()
            )

    async def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None


def _describe(item: Message | Event) -> str:
    return f"message {item.id}" if isinstance(item, Message) else type(item).__name__


class Hub:
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
        self.store: Store = store if store is not None else open_store(self.settings.db)
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.hooks = Hooks(self.pm)
        self.plugin_infos: list[PluginInfo] = []
        self.transports: dict[str, Transport] = {}
        self.agents: dict[str, Agent] = {}
        self._online: dict[str, tuple[Identity, int]] = {}
        # Everyone here, kept ready: a sign-in lists them all, and with
        # thousands online rebuilding the list each time would dominate.
        self._people: dict[str, Member] = {}
        self._agent_members: dict[str, tuple[Agent, Member]] = {}
        self._member_list: tuple[Member, ...] | None = None
        #: Changes whenever ``members()`` would answer differently.
        self.members_version = 0
        self._feeds: list[_Feed] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._started_event = asyncio.Event()
        self._ready: dict[int, Message | None] = {}
        self._next_dispatch = 1
        self._running = False
        self._stopping = False
        self.started_at: float | None = None

        self._load_plugins(builtins=builtins, load_entrypoints=load_entrypoints, extra=plugins)
        if transports is not None:
            for transport in transports:
                self.add_transport(transport)
        elif load_entrypoints:
            self._load_transports(self.settings.transports)

    # plugins ---------------------------------------------------------------
    def _allowed(self, name: str) -> bool:
        chosen = self.settings.plugins
        if name in chosen.disable:
            return False
        return chosen.only is None or name in chosen.only

    def _broken(self, name: str, kind: str, dist: str, version: str, exc: BaseException) -> None:
        error = describe_error(exc)
        self.plugin_infos.append(PluginInfo(name, kind, dist, version, error=error))
        log.error("%s %r from %s could not be loaded: %s", kind, name, dist, error)
        if self.settings.plugins.strict:
            raise PluginError(f"{kind} {name!r} from {dist} could not be loaded: {error}") from exc

    def _load_plugins(self, *, builtins: bool, load_entrypoints: bool, extra: Iterable[object]) -> None:
        for name in self.settings.plugins.disable:
            self.pm.set_blocked(name)
        if builtins:
            for name, spec in BUILTIN_PLUGINS:
                if self._allowed(name):
                    try:
                        self.register(instantiate_plugin(import_object(spec), self), name=name)
                    except ChatbusError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - reported with its name; the others still load
                        self._broken(name, "plugin", "chatbus", _own_version(), exc)
        if load_entrypoints:
            for ep in iter_entry_points(PLUGIN_GROUP):
                dist, version = distribution_of(ep)
                if not self._allowed(ep.name) or self.pm.has_plugin(ep.name):
                    continue
                try:
                    self.register(instantiate_plugin(ep.load(), self), name=ep.name, dist=(dist, version))
                except (PluginError, ConfigError):
                    raise
                except Exception as exc:  # noqa: BLE001 - reported with its name; the others still load
                    self._broken(ep.name, "plugin", dist, version, exc)
        for plugin in extra:
            self.register(instantiate_plugin(plugin, self))
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(
                f"plugin {exc.plugin!r} implements a hook chatbus does not have: {exc}"
            ) from None

    def register(
        self, plugin: object, name: str | None = None, *, dist: tuple[str, str] | None = None
    ) -> str:
        """Register a plugin object (module, class instance) under ``name``
        (by default its module or class name), so logs can say which failed."""
        if name is None:
            name = _default_name(plugin)
            base, number = name, 2
            while self.pm.has_plugin(name) or self.pm.is_blocked(name):
                name, number = f"{base}#{number}", number + 1
        try:
            registered = self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name or plugin!r} is not valid: {exc}") from None
        except ValueError as exc:
            raise PluginError(f"plugin {name or plugin!r} cannot be registered: {exc}") from None
        if registered is None:  # blocked
            return name or ""
        registered_name = self.pm.get_name(plugin) or registered
        if dist is None:
            dist = ("chatbus", _own_version()) if registered_name in dict(BUILTIN_PLUGINS) else ("", "")
        hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or ())
        self.plugin_infos.append(PluginInfo(registered_name, "plugin", dist[0], dist[1], hooks=hooks))
        return registered_name

    # transports ------------------------------------------------------------
    def _load_transports(self, names: Sequence[str]) -> None:
        available = {ep.name: ep for ep in iter_entry_points(TRANSPORT_GROUP)}
        for name in names:
            ep = available.get(name)
            if ep is None:
                known = ", ".join(sorted(available)) or "none"
                raise ConfigError(f"unknown transport {name!r}: the installed transports are {known}")
            dist, version = distribution_of(ep)
            try:
                cls = ep.load()
            except Exception as exc:
                raise ConfigError(
                    f"transport {name!r} from {dist} could not be loaded: {describe_error(exc)}"
                ) from exc
            options = self.settings.section(name)
            factory = getattr(cls, "from_options", None)
            transport = factory(options) if factory is not None else cls()
            self.add_transport(transport, dist=(dist, version))

    def add_transport(self, transport: Transport, *, dist: tuple[str, str] | None = None) -> None:
        """Add a transport before the hub starts."""
        if not isinstance(transport, Transport):
            raise ConfigError(
                f"{transport!r} is not a transport: it needs name, start, stop, deliver and is_connected"
            )
        if transport.name in self.transports:
            raise ConfigError(f"transport {transport.name!r} is configured twice")
        if self._running:
            raise TransportError("transports can only be added before the hub starts")
        self.transports[transport.name] = transport
        dist = dist or ("", "")
        self.plugin_infos.append(PluginInfo(transport.name, "transport", dist[0], dist[1]))

    def transport_status(self) -> dict[str, dict[str, Any]]:
        """Health of every transport, for ``/ws-info`` and status output."""
        out: dict[str, dict[str, Any]] = {}
        for name, transport in self.transports.items():
            if isinstance(transport, BaseTransport):
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
            self.agents = {agent.name: agent for agent in await self.store.list_agents()}
            self._members_changed()
            self._next_dispatch = self.store.last_id + 1
            self._running = True
            self._stopping = False
            await self.hooks.startup(self)
            for transport in self.transports.values():
                feed = _Feed(transport)
                feed.start()
                self._feeds.append(feed)
            started: list[Transport] = []
            for transport in self.transports.values():
                try:
                    await transport.start(self)
                except ChatbusError:
                    await _stop_all(started)
                    raise
                except OSError as exc:
                    await _stop_all(started)
                    raise TransportError(f"transport {transport.name!r} could not start: {exc.strerror or exc}") from exc
                except Exception as exc:
                    await _stop_all(started)
                    raise TransportError(
                        f"transport {transport.name!r} could not start: {describe_error(exc)}"
                    ) from exc
                started.append(transport)
        except BaseException:
            self._running = False
            await self._cancel_background()
            for feed in self._feeds:
                await feed.cancel()
            self._feeds.clear()
            await self.store.close()
            raise
        self.started_at = time.time()
        self._started_event.set()
        log.info("hub running with transports: %s", ", ".join(self.transports) or "none")

    async def stop(self, timeout: float = 10.0) -> None:
        """Deliver what is queued, stop transports, run ``on_shutdown``, close the store."""
        if not self._running or self._stopping:
            return
        self._stopping = True
        self._started_event.clear()
        try:
            await self._cancel_background()
            await self._wait_tasks(timeout / 2)
            await asyncio.gather(*(feed.drain(timeout / 2) for feed in self._feeds))
            await _stop_all(list(self.transports.values()))
            for feed in self._feeds:
                await feed.cancel()
            self._feeds.clear()
            await self.hooks.shutdown(self)
            await self._wait_tasks(timeout / 2)
        finally:
            await self.store.close()
            self._running = False
            self._stopping = False
            self._online.clear()
            self._people.clear()
            self._members_changed()
            log.info("hub stopped")

    async def _wait_tasks(self, timeout: float) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(list(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled %d plugin task(s) still running at shutdown", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)

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
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        (self._background if background else self._tasks).add(task)
        task.add_done_callback(self._task_done)
        return task

    async def wait_started(self) -> None:
        """Wait until ``start`` has finished and every transport runs (for
        plugins that post something once clients can receive it)."""
        await self._started_event.wait()

    async def _cancel_background(self) -> None:
        tasks = [task for task in self._background if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    # the pipeline ----------------------------------------------------------
    def _check_running(self) -> None:
        if not self.running:
            raise TransportError("chatbus is not running; try again when it is back")

    def _check_text(self, text: object) -> str:
        if not isinstance(text, str):
            raise InvalidMessage("Message text must be a string.")
        if not text.strip():
            raise InvalidMessage("Message text is empty; type something before sending.")
        limit = self.settings.max_text_length
        if len(text) > limit:
            raise MessageTooLarge(
                f"Message is {len(text)} characters long; the limit is {limit}. Split it into shorter messages."
            )
        return text

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
    ) -> Message:
        """Accept a message from a person: the whole pipeline.

        Raises ``InvalidMessage``/``MessageTooLarge`` for bad content,
        ``RateLimited`` when the rate limiter refuses (nothing is stored),
        and returns the stored ``Message`` otherwise.
        """
        self._check_running()
        text = self._check_text(text)
        if not valid_name(room):
            raise InvalidMessage("Room names are 1-64 letters, digits, '_', '-' or '.'.")
        if reply_to is not None and (isinstance(reply_to, bool) or not isinstance(reply_to, int) or reply_to < 1):
            raise InvalidMessage("replyTo must be the id of a message (a positive whole number).")
        extra = tuple(mentions)
        if identity.kind == "human":
            incoming = Incoming(identity, text, room, reply_to, transport, client_id, extra)
            decision = await self.hooks.rate_limit(identity, incoming)
            if decision is not None and not decision.allowed:
                raise RateLimited(decision.retry_after)
        return await self._publish(identity, text, room, reply_to, transport, client_id, extra)

    async def send(
        self,
        text: str,
        *,
        sender: str = SYSTEM_SENDER,
        reply_to: int | None = None,
        room: str = DEFAULT_ROOM,
        kind: Kind | None = None,
        role: str | None = None,
    ) -> Message:
        """Post a message as an agent or as the system (not rate limited)."""
        self._check_running()
        if not isinstance(text, str) or not text.strip():
            raise InvalidMessage("Message text is empty.")
        agent = self.agents.get(sender)
        if kind is None:
            kind = "system" if sender == SYSTEM_SENDER else "agent"
        if role is None:
            role = agent.role if agent is not None else ("system" if kind == "system" else "agent")
        identity = Identity(sender, role, kind)
        return await self._publish(identity, text, room, reply_to, None, None, ())

    async def _publish(
        self,
        identity: Identity,
        text: str,
        room: str,
        reply_to: int | None,
        transport: str | None,
        client_id: str | None,
        extra_mentions: tuple[str, ...],
    ) -> Message:
        parsed = await self.hooks.parse(text) or _EMPTY_PARSE
        mentions = parsed.mentions
        if extra_mentions:
            mentions = tuple(dict.fromkeys(mentions + extra_mentions))
        message = Message(
            id=self.store.allocate_id(),
            text=text,
            sender=identity.user_id,
            timestamp=utcnow(),
            room=room,
            kind=identity.kind,
            sender_role=identity.role,
            mentions=mentions,
            command=parsed.command,
            command_args=parsed.args,
            reply_to=reply_to,
            transport=transport,
            client_id=client_id,
        )
        stored = asyncio.ensure_future(self.store.append(message))
        stored.add_done_callback(lambda future: self._stored(message, future))
        await asyncio.shield(stored)
        return message

    def _stored(self, message: Message, future: asyncio.Future[None]) -> None:
        """Hand messages on strictly in id order, whatever order commits finish in."""
        ok = not future.cancelled() and future.exception() is None
        self._ready[message.id] = message if ok else None
        while self._next_dispatch in self._ready:
            ready = self._ready.pop(self._next_dispatch)
            self._next_dispatch += 1
            if ready is not None:
                self._dispatch(ready)

    def _dispatch(self, message: Message) -> None:
        for feed in self._feeds:
            feed.put(message)
        pending = self.hooks.message(message, self)
        if pending:
            self.spawn(_gather(pending), name=f"chatbus-on-message-{message.id}")

    def publish(self, event: Event) -> None:
        """Hand a presence, agent-status or typing event to every transport."""
        for feed in self._feeds:
            feed.put(event)

    # people ----------------------------------------------------------------
    async def authenticate(self, credentials: Credentials) -> Identity:
        """Run ``on_auth``; raises ``AuthError`` with a message for the user."""
        identity = await self.hooks.auth(credentials)
        if identity is None:
            raise AuthError("No authentication method accepted these credentials.")
        if not isinstance(identity, Identity):
            log.error("on_auth returned %r instead of an Identity", identity)
            raise AuthError("Authentication is misconfigured on the server; tell its operator.")
        if identity.kind == "human" and (
            identity.user_id in self.agents
            or identity.user_id == SYSTEM_SENDER
            # hired from the command line since the roster was last read
            or (self.running and await self.store.get_agent(identity.user_id) is not None)
        ):
            raise AuthError(f"The name {identity.user_id!r} belongs to an agent; choose another user id.")
        return identity

    async def connect(self, identity: Identity, transport: str) -> None:
        """A connection for ``identity`` opened; the first one puts them online."""
        entry = self._online.get(identity.user_id)
        if entry is not None:
            self._online[identity.user_id] = (entry[0], entry[1] + 1)
            return
        self._online[identity.user_id] = (identity, 1)
        self._people[identity.user_id] = Member(identity.user_id, identity.role, identity.kind, "online")
        self._members_changed()
        self.publish(Presence(identity.user_id, identity.role, identity.kind, "online"))
        await self.hooks.connect(identity, transport, self)

    async def disconnect(self, identity: Identity, transport: str) -> None:
        """A connection closed; the last one takes them offline."""
        entry = self._online.get(identity.user_id)
        if entry is None:
            return
        if entry[1] > 1:
            self._online[identity.user_id] = (entry[0], entry[1] - 1)
            return
        del self._online[identity.user_id]
        self._people.pop(identity.user_id, None)
        self._members_changed()
        self.publish(Presence(identity.user_id, identity.role, identity.kind, "offline"))
        await self.hooks.disconnect(identity, transport, self)

    def typing(self, identity: Identity, room: str = DEFAULT_ROOM, transport: str | None = None) -> None:
        self.publish(Typing(identity.user_id, room, transport))

    def members(self) -> tuple[Member, ...]:
        """Everyone here now: connected people, then hired agents.

        The answer is cached until someone arrives, leaves or an agent
        changes (``members_version`` then moves on), and a member who did not
        change is the same object as before, so callers can cache per member.
        """
        if self._member_list is None:
            people = self._people
            agents = tuple(self._agent_member(agent) for agent in self.agents.values() if agent.name not in people)
            self._member_list = (*people.values(), *agents)
        return self._member_list

    def _agent_member(self, agent: Agent) -> Member:
        cached = self._agent_members.get(agent.name)
        if cached is not None and cached[0] is agent:
            return cached[1]
        member = Member(agent.name, agent.role, "agent", agent.status, agent.current_task, agent.progress)
        self._agent_members[agent.name] = (agent, member)
        return member

    def _members_changed(self) -> None:
        self._member_list = None
        self.members_version += 1

    @property
    def people_online(self) -> int:
        """How many people (not agents) are connected now."""
        return len(self._people)

    def is_online(self, user_id: str) -> bool:
        return user_id in self._online or user_id in self.agents

    # agents ----------------------------------------------------------------
    async def hire(self, name: str, role: str, command: Sequence[str] | None = None) -> Agent:
        """Add an agent to the roster (or update its role and command)."""
        if not valid_name(name) or name == SYSTEM_SENDER:
            raise InvalidMessage("Agent names are 1-64 letters, digits, '_', '-' or '.', and not 'system'.")
        if name in self._online and self._online[name][0].kind == "human":
            raise InvalidMessage(f"{name!r} is a person who is online now; choose another agent name.")
        previous = self.agents.get(name) or await self.store.get_agent(name)
        agent = Agent(name, role, tuple(command) if command else None)
        if previous is not None:
            agent = Agent(name, role, agent.command, previous.status, previous.current_task, previous.progress)
        await self.store.save_agent(agent)
        self.agents[name] = agent
        self._members_changed()
        if previous is None and self._running:
            self.publish(Presence(name, role, "agent", "online"))
        return agent

    async def fire(self, name: str) -> bool:
        """Remove an agent from the roster."""
        removed = await self.store.remove_agent(name)
        agent = self.agents.pop(name, None)
        self._agent_members.pop(name, None)
        self._members_changed()
        if agent is not None and self._running:
            self.publish(Presence(name, agent.role, "agent", "offline"))
        return removed or agent is not None

    async def set_agent_status(
        self,
        name: str,
        status: AgentStatusName,
        current_task: str | None = None,
        progress: int | None = None,
    ) -> Agent:
        """Record an agent's status and tell every transport (``agent_status``)."""
        if status not in _AGENT_STATUSES:
            raise InvalidMessage(f"Agent status must be one of {', '.join(_AGENT_STATUSES)}.")
        if progress is not None:
            progress = max(0, min(100, int(progress)))
        agent = await self.store.update_agent(name, status=status, current_task=current_task, progress=progress)
        if agent is None:
            raise InvalidMessage(f"There is no agent called {name!r}.")
        self.agents[name] = agent
        self._members_changed()
        self.publish(AgentStatus(name, status, current_task, progress))
        return agent

    async def reload_agents(self) -> tuple[list[str], list[str]]:
        """Re-read the roster from the store, so agents hired or fired by another
        process (``chatbus agents hire`` while the server runs) take part.
        Returns the names added and removed; presence is published for both."""
        fresh = {agent.name: agent for agent in await self.store.list_agents()}
        added = [name for name in fresh if name not in self.agents]
        removed = [name for name in self.agents if name not in fresh]
        gone = {name: self.agents[name] for name in removed}
        self.agents.clear()
        self.agents.update(fresh)
        self._members_changed()
        if self.running:
            for name in added:
                self.publish(Presence(name, fresh[name].role, "agent", "online"))
            for name, agent in gone.items():
                self.publish(Presence(name, agent.role, "agent", "offline"))
        return added, removed

    def agent_status(self, name: str) -> Agent | None:
        """An agent's roster entry (status, current task, progress), or None."""
        return self.agents.get(name)

    async def request_help(
        self,
        name: str,
        *,
        issue: str,
        task: str | None = None,
        progress: int | None = None,
        reply_to: int | None = None,
        room: str = DEFAULT_ROOM,
    ) -> Message:
        """Mark an agent ``stuck`` and post, as the agent, a message asking the
        team for help with ``task`` (default: its current task) and ``issue``.
        The text can be replaced through the ``agent_reply`` hook (kind ``help``)."""
        agent = self.agents.get(name)
        if agent is None:
            raise InvalidMessage(f"There is no agent called {name!r}.")
        task = task or agent.current_task or "my current task"
        agent = await self.set_agent_status(name, "stuck", task, progress if progress is not None else agent.progress)
        details: dict[str, Any] = {"task": task, "issue": issue, "progress": agent.progress}
        text = await self.hooks.agent_reply(agent, "help", details, None)
        if not text:
            done = f" ({agent.progress}% done)" if agent.progress is not None else ""
            text = f"@team I need help with {task}{done}: {issue}"
        return await self.send(text, sender=name, reply_to=reply_to, room=room)

    # reading -----------------------------------------------------------------
    async def since(self, after_id: int, limit: int, room: str | None = None) -> list[Message]:
        return await self.store.since(after_id, limit, room)

    async def history(
        self, room: str | None = DEFAULT_ROOM, before: int | None = None, limit: int = 50
    ) -> tuple[list[Message], bool]:
        return await self.store.before(before, limit, room)

    def stats(self) -> dict[str, Any]:
        """Agents in total and by status, transports running, people connected."""
        by_status = {status: 0 for status in _AGENT_STATUSES}
        for agent in self.agents.values():
            by_status[agent.status] = by_status.get(agent.status, 0) + 1
        return {
            "agents": {"total": len(self.agents), "by_status": by_status},
            "transports": {name: status for name, status in self.transport_status().items()},
            "transports_running": [name for name, t in self.transports.items() if self.running and t.is_connected()],
            "connected_users": len(self._online),
            "running": self.running,
            "last_message_id": self.store.last_id,
        }


def _default_name(plugin: object) -> str:
    own = getattr(plugin, "__name__", None)
    if isinstance(own, str):
        return own
    cls = type(plugin)
    return f"{cls.__module__}.{cls.__qualname__}"


async def _gather(pending: list[Awaitable[Any]]) -> None:
    await asyncio.gather(*pending)


async def _stop_all(transports: Iterable[Transport]) -> None:
    for transport in transports:
        try:
            await transport.stop()
        except Exception:
            log.exception("transport %r failed to stop cleanly", transport.name)


def _own_version() -> str:
    try:
        return _dist_version("chatbus")
    except Exception:  # noqa: BLE001 - running from a source tree
        return "0+unknown"
