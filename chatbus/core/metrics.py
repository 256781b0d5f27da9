"""The hub's Prometheus metrics, through ``prometheus_client``.

Each hub has a registry of its own (two hubs in one process never mix their
figures), served as ``GET /metrics`` on the chat port and, when
``metrics.port`` is set, on a port of its own. Counters and histograms are
updated where things happen, at most once per message per transport on the
delivery path; what can be read off the hub's state (people and agents
online, agents by status, connections) is read when Prometheus scrapes, and
costs nothing in between. Plugins and transports may add their own metrics
to :attr:`Metrics.registry`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .errors import TransportError
from .roster import AGENT_STATUSES

if TYPE_CHECKING:
    from .hub import Hub
    from .settings import MetricsSettings

__all__ = ["CONTENT_TYPE", "Metrics"]

log = logging.getLogger("chatbus.metrics")

#: The Content-Type of :meth:`Metrics.exposition`.
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: From a millisecond to half a minute: a delivery on loopback to a Telegram flood wait.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


class _Off:
    """Stands in for every metric when metrics are turned off: counting costs nothing."""

    def labels(self, *values: str) -> _Off:
        return self

    def inc(self, amount: float = 1) -> None:
        return None

    def observe(self, amount: float) -> None:
        return None


_OFF: Any = _Off()
_METRIC_NAMES = (
    "messages_received",
    "messages_sent",
    "deliveries",
    "delivery_latency",
    "rate_limited",
    "errors",
    "closes",
    "slow_consumers",
    "store_latency",
    "broker_latency",
    "telegram_calls",
    "telegram_retries",
    "tasks",
    "files",
)


class Metrics:
    """Every chatbus metric of one hub; see the README's list for their meaning."""

    messages_received: Counter
    messages_sent: Counter
    deliveries: Counter
    delivery_latency: Histogram
    rate_limited: Counter
    errors: Counter
    closes: Counter
    slow_consumers: Counter
    store_latency: Histogram
    broker_latency: Histogram
    telegram_calls: Counter
    telegram_retries: Counter
    tasks: Counter
    files: Counter

    def __init__(self, hub: Hub) -> None:
        self.registry = CollectorRegistry()
        #: False when ``metrics.enabled`` is off: nothing is counted or served.
        self.enabled = hub.settings.metrics.enabled
        #: Whether the chat's own port serves ``/metrics`` (``metrics.on_chat_port``).
        self.on_chat_port = self.enabled and hub.settings.metrics.on_chat_port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._state = _HubState(hub)
        if not self.enabled:
            for name in _METRIC_NAMES:
                setattr(self, name, _OFF)
            return
        r = self.registry
        self.messages_received = Counter(
            "chatbus_messages_received",
            "Messages accepted and stored, and changes to them, by origin, sender kind and type",
            ["transport", "kind", "type"], registry=r,
        )  # fmt: skip
        self.messages_sent = Counter(
            "chatbus_messages_sent", "Messages and events handed to each transport, by type",
            ["transport", "type"], registry=r,
        )  # fmt: skip
        self.deliveries = Counter(
            "chatbus_deliveries", "Frames written to individual clients (one per message per recipient)",
            ["transport"], registry=r,
        )  # fmt: skip
        self.rate_limited = Counter(
            "chatbus_rate_limited", "Messages refused by the rate limiter", ["transport"], registry=r
        )
        self.errors = Counter("chatbus_errors", "Error frames sent to clients, by error code", ["code"], registry=r)
        self.closes = Counter(
            "chatbus_connections_closed", "Connections closed, by close code", ["transport", "code"], registry=r
        )
        self.slow_consumers = Counter(
            "chatbus_slow_consumers_cut_off", "Connections closed for falling too far behind", ["transport"],
            registry=r,
        )  # fmt: skip
        self._latencies(r)
        self.telegram_calls = Counter(
            "chatbus_telegram_api_calls", "Bot API calls, by method and outcome", ["method", "outcome"], registry=r
        )
        self.telegram_retries = Counter(
            "chatbus_telegram_retries", "Bot API calls retried, by reason", ["reason"], registry=r
        )
        self.tasks = Counter(
            "chatbus_agent_tasks", "Agents' tasks by what became of them (started, completed, failed, timed_out, "
            "cancelled)", ["outcome"], registry=r,
        )  # fmt: skip
        self.files = Counter(
            "chatbus_files", "Files offered, by what became of them (stored, duplicate, removed, or the refusal's code)",
            ["outcome"], registry=r,
        )  # fmt: skip
        r.register(self._state)

    def _latencies(self, r: CollectorRegistry) -> None:
        self.delivery_latency = Histogram(
            "chatbus_delivery_latency_seconds", "From the hub accepting a message to writing it to the clients",
            ["transport"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.store_latency = Histogram(
            "chatbus_store_operation_seconds", "Time of one store operation, by operation",
            ["operation"], buckets=_STORE_BUCKETS, registry=r,
        )  # fmt: skip
        self.broker_latency = Histogram(
            "chatbus_broker_latency_seconds",
            "From a node accepting a message to its arrival through this node's Redis subscription",
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip

    def exposition(self) -> bytes:
        """Everything, in the Prometheus text format."""
        return generate_latest(self.registry)

    def count_file(self, outcome: str) -> None:
        """Count what became of a file offered (``hub.files.count``)."""
        self.files.labels(outcome).inc()

    def observe_store(self, operation: str, seconds: float) -> None:
        """Record one store operation (the store's ``observe``)."""
        self.store_latency.labels(operation).observe(seconds)

    # the port of its own ------------------------------------------------------
    def serve_from(self, chosen: MetricsSettings) -> None:
        """Serve ``/metrics`` on a port of its own when ``metrics.port`` is set;
        a port that cannot be used is a ``TransportError`` saying what to do."""
        if not chosen.enabled or chosen.port is None:
            return
        try:
            port = self.serve(chosen.host, chosen.port)
        except OSError as exc:
            raise TransportError(
                f"cannot serve metrics on {chosen.host}:{chosen.port} ({exc.strerror or exc}); "
                "choose another port with CHATBUS_METRICS__PORT"
            ) from exc
        log.info("metrics at http://%s:%d/metrics", chosen.host, port)

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` on ``host:port`` (0 picks a free port) from a thread; returns the port.

        Figures read off the hub are then read on the event loop's thread, so
        the scrape never sees the hub half-way through a change.
        """
        self._state.loop = asyncio.get_running_loop()
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        return int(self._server.server_port)

    @property
    def port(self) -> int | None:
        """The port of its own while it is served, else None."""
        return int(self._server.server_port) if self._server is not None else None

    def close(self) -> None:
        """Stop serving the port of its own, if it was served."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            if self._thread is not None:
                self._thread.join(5)


class _HubState(Collector):
    """Figures read off the hub when Prometheus scrapes."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        #: The hub's loop, when scrapes may come from another thread.
        self.loop: asyncio.AbstractEventLoop | None = None

    def collect(self) -> Iterator[Metric]:
        loop = self.loop
        if loop is None or not loop.is_running() or _on_loop(loop):
            return iter(list(self._read()))
        try:
            return iter(asyncio.run_coroutine_threadsafe(self._read_on_loop(), loop).result(5))
        except Exception:  # noqa: BLE001 - a scrape during shutdown: counters still answer
            log.warning("the hub did not answer a metrics scrape in time")
            return iter(())

    async def _read_on_loop(self) -> list[Metric]:
        return list(self._read())

    def _read(self) -> Iterator[Metric]:
        hub = self.hub
        members = hub.members()
        online = GaugeMetricFamily("chatbus_members_online", "People and agents in the chat now", labels=["kind"])
        online.add_metric(["human"], sum(1 for member in members if member.kind == "human"))
        online.add_metric(["agent"], len(hub.agents))
        yield online
        agents = GaugeMetricFamily("chatbus_agents", "Agents in the roster, by work status", labels=["status"])
        counts = dict.fromkeys(AGENT_STATUSES, 0)
        for agent in list(hub.agents.values()):
            counts[agent.status] = counts.get(agent.status, 0) + 1
        for status, count in counts.items():
            agents.add_metric([status], count)
        yield agents
        yield self._connections()
        up = GaugeMetricFamily("chatbus_up", "1 while the hub runs and takes messages")
        up.add_metric([], 1 if hub.running else 0)
        yield up

    def _connections(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily("chatbus_connections", "Open client connections, by transport", labels=["transport"])
        for name, status in _statuses(self.hub).items():
            connections = status.get("connections")
            if isinstance(connections, int):
                family.add_metric([name], connections)
        return family


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _statuses(hub: Hub) -> dict[str, dict[str, Any]]:
    try:
        return hub.transport_status()
    except Exception:  # a transport's status must not break the whole scrape
        log.exception("a transport could not report its status for /metrics")
        return {}
