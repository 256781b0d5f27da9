"""Run a chat with two agents: ``builder`` runs a worker command, ``planner`` a plugin.

    .venv/bin/python examples/agents/run_agents.py

then open http://127.0.0.1:8081 and write ``@builder please write the
release notes`` or ``@planner please plan the launch: tag, build and
announce``. The agents work in ``./agents/<name>/``. Settings are read as
``chatbus serve`` reads them (``chatbus.toml``, ``CHATBUS_*``), so
``CHATBUS_WEBSOCKET__PORT=9000`` or ``CHATBUS_DB=...`` work here too.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from todo_planner import TodoPlanner

from chatbus import Hub, Settings
from chatbus.core.logs import configure_logging

__all__ = ["WORKER", "build_hub", "hire_team", "main"]

#: The worker script, by absolute path: agents run it in their own directory.
WORKER = Path(__file__).resolve().parent / "agent_worker.py"


def build_hub(settings: Settings | None = None) -> Hub:
    """A hub configured like ``chatbus serve``, plus the planner plugin."""
    return Hub(settings if settings is not None else Settings.load(), plugins=[TodoPlanner()])


async def hire_team(hub: Hub) -> None:
    """Hire the two example agents (again on every start: hiring is idempotent)."""
    await hub.hire("builder", "developer", [sys.executable, str(WORKER), "{task}"])
    await hub.hire("planner", "planner")


async def main() -> int:
    hub = build_hub()
    configure_logging(hub.settings.log_level, hub.settings.log_format)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await hub.start()
    try:
        await hire_team(hub)
        print("chatbus is running with @builder and @planner; press Ctrl+C to stop", flush=True)
        await stop.wait()
    finally:
        await hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
