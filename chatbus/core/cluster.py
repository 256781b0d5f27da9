"""Several nodes, one chat: what a node does beside its own clients when its store is shared.

On one node (the embedded SQLite or memory store) this is idle: messages go
from the pipeline to the transports directly, and every duty is the node's
own. When the store is shared (the Redis engine, ``[engine] url``), each node:

* feeds its transports from one subscription to the log (every message
  appended by any node, its own included, in id order, once each; a node
  that fell behind is repaired from the log by id);
* hands its own events, changes and notices to the other nodes and theirs
  to its transports (presence, typing, agent status, edits, deletions,
  reactions, notices for one person);
* keeps its people's presence in the engine, renewed while they are
  connected, so a node that dies stops renewing and its people go offline
  for everyone within ``[engine] lease_ttl``;
* takes part in the duties that run on one node at a time, each held by a
  lease (:class:`~.engine.duty.Duty`): ``on-message`` (the plugins'
  ``on_message``, and with it the agents' work, resuming on takeover from a
  cursor written under the lease), ``transport:<name>`` for every transport
  that must run once (``once_per_cluster``: the Telegram bot), and the
  cleanup of old messages and files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from .engine.base import Engine, Gap, Lease, Reset
from .engine.duty import Duty
from .engine.events import from_wire, to_wire
from .errors import ChatbusError, StoreError
from .message import AgentStatus, Message, MessageDeleted, MessageEdited, Notice, Presence, Reaction, Typing
from .store.base import SharedStore
from .transport import Transport

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["ON_MESSAGE", "PLUGINS_DONE", "Cluster", "once_per_cluster"]

log = logging.getLogger("chatbus.cluster")

#: The duty of running the plugins' ``on_message``, and the state key of the last message it took.
ON_MESSAGE = "on-message"
PLUGINS_DONE = "cluster.on_message.done"
#: How many people one "here" event names (a node answering another's hello).
_HERE_BATCH = 500
#: Seconds between two trims of the log by age.
_TRIM_EVERY = 60.0

Starter = Callable[[], Awaitable[None]]


def once_per_cluster(transport: Transport) -> bool:
    """Whether ``transport`` must run on one node at a time (a Telegram bot: one reader of its updates)."""
    return bool(getattr(transport, "once_per_cluster", False))


class Cluster:
    """This node's part in a chat of several nodes; see the module docstring."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self.store = hub.store
        #: Whether several nodes share this chat (the store is the Redis engine's).
        self.shared = bool(self.store.shared and self.store.engine is not None)
        #: The store's part that only a shared store has (used only when ``shared``).
        self._shared = cast(SharedStore, self.store)
        settings = hub.settings.engine
        #: This node's name, in presence, leases and logs.
        self.node = settings.node or f"{socket.gethostname()}-{os.getpid()}"
        self.ttl = settings.lease_ttl
        self.max_age = settings.max_age
        self._duties: dict[str, Duty] = {}
        self._leaders: list[tuple[Starter, Starter | None]] = []
        #: Transports run by whichever node holds their duty, by name: those this node runs now.
        self.standby: dict[str, Transport] = {}
        self.running_here: set[str] = set()

    @property
    def engine(self) -> Engine:
        engine = self.store.engine
        if engine is None:  # pragma: no cover - only called when shared
            raise StoreError("this chat runs on one node; it has no engine")
        return engine

    # for transports and plugins ------------------------------------------------
    def lease(self, duty: str) -> Lease | None:
        """The lease this node holds for ``duty`` now, else None."""
        held = self._duties.get(duty)
        return held.lease if held is not None else None

    async def set_state(self, key: str, value: str | None, duty: str) -> bool:
        """Write state only while this node holds ``duty`` (one node: always); False when it lost it."""
        if not self.shared:
            await self.store.set_state(key, value)
            return True
        lease = self.lease(duty)
        if lease is None:
            return False
        return await self._shared.set_state_fenced(key, value, lease)

    async def holds(self, duty: str) -> bool:
        """Whether this node still holds ``duty`` now, asked of the engine (one node: always): a
        node that was paused past its lease learns it here before it writes anything."""
        if not self.shared:
            return True
        lease = self.lease(duty)
        if lease is None:
            return False
        try:
            return await self.engine.renew(lease)
        except ChatbusError:
            return False

    def on_lead(self, start: Starter, stop: Starter | None = None) -> None:
        """Run ``start`` whenever this node takes the ``on-message`` duty (one node: once, at
        start), ``stop`` when it loses it: the plugins' work that must run on one node at a time."""
        self._leaders.append((start, stop))

    def split(self, transports: list[Transport]) -> list[Transport]:
        """The transports this node starts with the hub; the others wait for their duty."""
        if not self.shared:
            return transports
        self.standby = {t.name: t for t in transports if once_per_cluster(t)}
        return [t for t in transports if not once_per_cluster(t)]

    def standby_status(self, name: str) -> dict[str, Any] | None:
        """How a transport that runs on another node is, for status output; None when it runs here."""
        if name not in self.standby or name in self.running_here:
            return None
        return {"healthy": True, "detail": f"runs on the node holding the duty transport:{name}, not this one"}

    # lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        """Start this node's part: on one node, the ``on_lead`` work; on several, everything above."""
        hub = self._hub
        if not self.shared:
            for start, _ in self._leaders:
                hub.spawn(_after_start(hub, start), name="chatbus-lead", background=True)
            return
        hub._deliveries.relay = self._relay
        hub.roster.tell_nodes = self._relay
        hub.links.saved = self._links_saved
        spawn = hub.spawn
        spawn(self._follow(hub.store.last_id), name="chatbus-cluster-follow", background=True)
        spawn(self._listen(), name="chatbus-cluster-events", background=True)
        spawn(self._keep_presence(), name="chatbus-cluster-presence", background=True)
        spawn(self._hold(ON_MESSAGE, self._run_hooks), name="chatbus-duty-on-message", background=True)
        for name, transport in self.standby.items():
            spawn(
                self._hold(f"transport:{name}", _runner(self, transport)), name=f"chatbus-duty-{name}", background=True
            )
        spawn(self._hold("cleanup", self._trim), name="chatbus-duty-cleanup", background=True)

    def duty(self, name: str, work: Callable[[], Awaitable[None]]) -> Awaitable[None]:
        """Run ``work`` on one node at a time (the files sweep); on one node, just run it."""
        if not self.shared:
            return work()

        async def hold(_: Lease) -> None:
            await work()

        return self._hold(name, hold)

    async def _hold(self, name: str, work: Callable[[Lease], Awaitable[None]]) -> None:
        """Hold the duty ``name`` whenever this node can, for as long as it runs."""
        while True:
            duty = Duty(self.engine, name, self.node, self.ttl, work)
            self._duties[name] = duty
            try:
                await duty.run()
            except ChatbusError as exc:
                log.warning("the duty %r stopped on %s: %s; it is taken up again", name, self.node, exc)
            except Exception:
                log.exception("the duty %r failed on %s; it is taken up again", name, self.node)
            await asyncio.sleep(self.ttl / 3)

    async def settle(self, timeout: float) -> None:
        """Wait (at most ``timeout``) until this node's transports were handed every message it
        stored itself: they come back through the log, and a stop should not cut them off."""
        if not self.shared:
            return
        deliveries, store = self._hub._deliveries, self.store
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while deliveries.next_id <= store.last_id:
                    await asyncio.sleep(0.01)

    def describe(self) -> dict[str, Any]:
        """The engine and this node, for status output."""
        if not self.shared:
            return {"kind": "embedded", "node": self.node}
        engine = self.engine
        return {
            "kind": engine.kind,
            "node": self.node,
            "url": getattr(engine, "shown_url", None),
            "epoch": engine.epoch,
        }

    # the log -----------------------------------------------------------------
    async def _follow(self, after: int) -> None:
        """Hand every message any node stores to this node's transports, in id order."""
        deliveries, store = self._hub._deliveries, self.store
        latency = self._hub.metrics.broker_latency
        async for item in self.engine.subscribe(after):
            if isinstance(item, Message):
                latency.observe(max(0.0, time.time() - item.timestamp.timestamp()))
                store.heard(item.id)
                deliveries.stored(item, True)
            elif isinstance(item, Gap):
                log.warning(
                    "this node fell behind the log by more than it keeps: messages %d-%d were not handed to "
                    "its clients here (they are told to reload when they reconnect)",
                    item.after_id + 1, item.resumed_at - 1,
                )  # fmt: skip
                deliveries.resume_after(item.resumed_at - 1)
            elif isinstance(item, Reset):
                log.warning("the log was replaced (epoch %s): ids start again", item.epoch)
                await self._shared.reload_last_id()  # the ids this node knew belong to the old log
                deliveries.resume_after(0)  # the new log's messages follow, from its first

    async def _run_hooks(self, lease: Lease) -> None:
        """The ``on-message`` duty: ``on_message`` for every message once, from where the last holder stopped."""
        store = self.store
        for start, _ in self._leaders:
            await start()
        try:
            cursor = await store.get_state(PLUGINS_DONE)
            after = int(cursor) if cursor else 0  # a new chat (a copied one has the cursor: chatbus copy)
            log.info("%s runs the plugins from message %d on", self.node, after + 1)
            async for item in self.engine.subscribe(after):
                if not isinstance(item, Message):
                    continue
                # Written first: a message whose plugins were started is never started again elsewhere.
                if not await self.set_state(PLUGINS_DONE, str(item.id), ON_MESSAGE):
                    log.warning("%s lost the duty %r; another node runs the plugins now", self.node, ON_MESSAGE)
                    return
                self._hub._run_hooks(item)
        finally:
            for _, stop in self._leaders:
                if stop is not None:
                    with contextlib.suppress(Exception):
                        await stop()

    async def _trim(self, _: Lease) -> None:
        """The ``cleanup`` duty: drop messages older than ``[engine] max_age``, and what belonged to
        messages the log no longer keeps (their changes, their links to files)."""
        while True:
            try:
                dropped = await self._shared.trim(self.max_age)
                if dropped:
                    log.info("dropped %d message(s) older than %g seconds from the log", dropped, self.max_age)
            except ChatbusError as exc:
                log.warning("could not drop old messages now: %s", exc)
            await asyncio.sleep(min(_TRIM_EVERY, self.max_age / 10) if self.max_age else _TRIM_EVERY)

    # events between nodes ------------------------------------------------------
    def _relay(self, item: Any) -> None:
        if isinstance(item, Presence | AgentStatus | Typing | MessageEdited | MessageDeleted | Reaction | Notice):
            self._hub.spawn(self._send(to_wire(item)), name="chatbus-cluster-relay")

    def _links_saved(self) -> None:
        self._hub.spawn(self._send({"t": "links"}), name="chatbus-cluster-relay")

    async def _send(self, event: dict[str, Any]) -> None:
        event["n"] = self.node
        try:
            await self.engine.broadcast(self.node, event)
        except ChatbusError as exc:
            log.warning("could not tell the other nodes about %s: %s", event.get("t"), exc)

    async def _listen(self) -> None:
        async for event in self.engine.events(self.node):
            try:
                await self._heard(event)
            except ChatbusError as exc:
                log.warning("could not take %s from node %s: %s", event.get("t"), event.get("n"), exc)

    async def _heard(self, event: dict[str, Any]) -> None:
        hub, node = self._hub, str(event.get("n", "?"))
        if event.get("t") == "listening":  # (again): ask the others who is with them
            await self._send({"t": "hello"})
            return
        if event.get("t") == "hello":  # a node started or came back: tell it who is here
            await self._announce_again(hub.roster.here())
            return
        if event.get("t") == "here":  # another node's people, all at once (its answer to a hello)
            for each in event.get("people", ()):
                if isinstance(each, dict) and isinstance(presence := from_wire(each), Presence):
                    await self._presence(presence, node)
            return
        if event.get("t") == "links":  # accounts linked or unlinked on another node
            await hub.links.load()
            return
        item = from_wire(event)
        if item is None:
            return
        deliveries = hub._deliveries
        if isinstance(item, Presence):
            await self._presence(item, node)
        elif isinstance(item, AgentStatus):
            if hub.roster.status_elsewhere(item):
                deliveries.notify(item, relay=False)
        elif isinstance(item, Typing):
            deliveries.notify(item, relay=False)
        elif isinstance(item, Notice):
            deliveries.tell(item, relay=False)
        else:
            deliveries.change(item, relay=False)

    async def _presence(self, presence: Presence, node: str) -> None:
        hub = self._hub
        if presence.kind != "human":  # an agent hired or fired on another node
            await hub.reload_agents()
            return
        if hub.roster.seen_elsewhere(presence, node):
            hub._deliveries.notify(presence, relay=False)

    async def _keep_presence(self) -> None:
        """Renew this node's people in the engine; take offline those whose node stopped renewing.
        After an outage of its own, a node first gives the others a lease's time to renew theirs."""
        failing, trust_from = False, 0.0
        while True:
            try:
                await self._renew_presence()
                if failing:
                    log.info("presence is kept in the engine again")
                    trust_from = time.monotonic() + self.ttl
                failing = False
                if time.monotonic() >= trust_from:
                    await self._expire_presence()
            except ChatbusError as exc:
                if not failing:  # said once per outage, not every few seconds
                    log.warning("could not keep presence in the engine now: %s", exc)
                failing = True
            await asyncio.sleep(self.ttl / 3)

    async def _renew_presence(self) -> None:
        engine, here = self.engine, self._hub.roster.here()
        before = await engine.present()
        await engine.set_present_many(self.node, here, self.ttl)
        # Those this node had stalled past the lease: the others took them offline; they are back.
        await self._announce_again([user for user in here if self.node not in before.get(user, ())])

    async def _expire_presence(self) -> None:
        roster = self._hub.roster
        present = await self.engine.present()
        for user, nodes in roster.elsewhere().items():
            for node in nodes - present.get(user, set()):
                gone = roster.gone_elsewhere(user, node)
                if gone is not None:
                    log.info("%s went offline with node %s, which stopped answering", user, node)
                    self._hub._deliveries.notify(gone, relay=False)

    async def _announce_again(self, users: list[str]) -> None:
        """Tell the other nodes that ``users`` are online here, a few hundred to an event."""
        people = []
        for user in users:
            identity = self._hub.roster.identity_of(user)
            if identity is not None:
                people.append(to_wire(Presence(user, identity.role, identity.kind, "online", identity.display_name)))
        for start in range(0, len(people), _HERE_BATCH):
            await self._send({"t": "here", "people": people[start : start + _HERE_BATCH]})

    async def arrived(self, user_id: str) -> None:
        """``user_id``'s first connection to this node opened."""
        if self.shared:
            with contextlib.suppress(ChatbusError):
                await self.engine.set_present(self.node, user_id, self.ttl)

    async def left(self, user_id: str) -> None:
        """``user_id``'s last connection to this node closed."""
        if self.shared:
            with contextlib.suppress(ChatbusError):
                await self.engine.set_absent(self.node, user_id)


def _runner(cluster: Cluster, transport: Transport) -> Callable[[Lease], Awaitable[None]]:
    """The work of a transport's duty: run it while the lease holds, stop it when it goes."""

    async def run(_: Lease) -> None:
        hub = cluster._hub
        feed = hub._deliveries.add_feed(transport)  # collects from now on: nothing falls between
        try:
            await transport.start(hub)
            cluster.running_here.add(transport.name)
            log.info("%s runs the %s transport now", cluster.node, transport.name)
            feed.start()
            await asyncio.Event().wait()
        finally:
            cluster.running_here.discard(transport.name)
            await hub._deliveries.remove_feed(transport)
            with contextlib.suppress(Exception):
                await transport.stop()

    return run


async def _after_start(hub: Hub, start: Starter) -> None:
    await hub.wait_started()
    await start()
