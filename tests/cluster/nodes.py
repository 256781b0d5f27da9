"""Several real ``chatbus serve`` nodes on one real redis-server: one chat (issue 14).

Each node is a subprocess of its own, as an operator runs it: its own
loopback port and folder, ``CHATBUS_ENGINE__URL`` naming the shared Redis,
``CHATBUS_ENGINE__NODE`` its name, and a short ``CHATBUS_ENGINE__LEASE_TTL``
so a dead node's people and duties move on within seconds.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.core.engine.redis_server import RedisServer
from tests.support import ChatbusProcess, chatbus_env
from tests.transports.websocket.helpers import http_get

__all__ = ["FAST", "LEASE_TTL", "Cluster", "Node"]

#: Seconds a dead node keeps its people online and its duties (``[engine] lease_ttl``).
LEASE_TTL = 2.0
#: People here type faster than the default rate limit allows.
FAST = {
    "CHATBUS_RATELIMIT__BURST": "100000",
    "CHATBUS_RATELIMIT__PER_SECOND": "100000",
    "CHATBUS_RATELIMIT__PER_HOUR": "1000000",
}
LISTENING = re.compile(r"listening on ws://127\.0\.0\.1:(\d+)/")
START_TIMEOUT = 30.0


@dataclass
class Node:
    """One ``chatbus serve`` of the cluster."""

    name: str
    process: ChatbusProcess
    folder: Path
    port: int = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def kill(self) -> None:
        """SIGKILL, as a crash or a pulled plug: nothing is handed over, no lease released."""
        self.process.process.send_signal(signal.SIGKILL)
        self.process.process.wait(10)

    async def readyz(self) -> tuple[int, str]:
        """``GET /readyz``: the status and the reason given."""
        status, _, body = await http_get(self.port, "/readyz")
        return status, body.decode(errors="replace")

    def log(self, lines: int = 40) -> str:
        self.process.stderr.drain(0.05)
        return "\n".join(self.process.stderr.lines[-lines:])


@dataclass
class Cluster:
    """Nodes started on ``redis``; each is killed at the end of the test."""

    redis: RedisServer
    root: Path
    prefix: str = "chatbus"
    nodes: dict[str, Node] = field(default_factory=dict)

    async def start(self, *names: str, env: Mapping[str, str] | None = None) -> list[Node]:
        """Start the named nodes at once and wait until each listens."""
        started = [self._spawn(name, {**FAST, **(env or {})}) for name in names]
        for node in started:
            self.nodes[node.name] = node
        await asyncio.gather(*(self._listening(node) for node in started))
        return started

    #: The transports every node runs.
    transports: tuple[str, ...] = ("websocket",)

    def settings(self, name: str) -> dict[str, str]:
        """The environment of node ``name`` (a subclass adds its transports' settings)."""
        return {
            "CHATBUS_ENGINE__URL": self.redis.url,
            "CHATBUS_ENGINE__PREFIX": self.prefix,
            "CHATBUS_ENGINE__NODE": name,
            "CHATBUS_ENGINE__LEASE_TTL": str(LEASE_TTL),
        }

    def _spawn(self, name: str, env: Mapping[str, str]) -> Node:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        variables = {**self.settings(name), **env}
        args = ("serve", "--host", "127.0.0.1", "--port", "0", "--db", str(folder / "chat.db"), "--log-level", "INFO")
        transports = [word for transport in self.transports for word in ("--transport", transport)]
        process = ChatbusProcess(*args, *transports, env=chatbus_env(variables), cwd=folder)
        return Node(name, process, folder)

    async def _listening(self, node: Node) -> None:
        try:
            line = await asyncio.to_thread(node.process.stderr.wait_for, "listening on", START_TIMEOUT)
        except AssertionError:
            raise AssertionError(f"node {node.name} did not start within {START_TIMEOUT:g} s:\n{node.log()}") from None
        found = LISTENING.search(line)
        assert found is not None, line
        node.port = int(found.group(1))

    def stop(self) -> None:
        """Kill every node still running (a test that passed has checked what it needed)."""
        for node in self.nodes.values():
            node.process.__exit__(None, None, None)

    def logs(self) -> str:
        return "\n".join(f"--- node {name} ---\n{node.log()}" for name, node in self.nodes.items())
