"""``chatbus agents hire | fire | list``: the roster, over the store alone."""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys

from ..core.errors import ConfigError
from ..core.logs import configure_logging
from ..core.roster import Roster
from ..core.settings import Settings
from ..core.store import open_store
from .common import print_table, settings_for

__all__ = ["cmd_agents"]


def cmd_agents(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    configure_logging("WARNING", settings.log_format)
    return asyncio.run(_agents(args, settings))


async def _agents(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings.db)
    await store.open()
    roster = Roster(store)
    try:
        if args.agents_command == "hire":
            command = None
            if args.worker:
                try:
                    command = shlex.split(args.worker)
                except ValueError as exc:
                    raise ConfigError(f"--command cannot be split into words: {exc}") from None
            agent = await roster.hire(args.name, args.role, command)
            print(
                f"hired {agent.name} ({agent.role})"
                + (f" with command {shlex.join(agent.command)}" if agent.command else "")
            )
            if agent.command and not any("{task}" in part for part in agent.command):
                print(
                    "note: the command has no {task}, so the task reaches it only as the "
                    "CHATBUS_TASK environment variable",
                    file=sys.stderr,
                )
            return 0
        if args.agents_command == "fire":
            if await roster.fire(args.name):
                print(f"fired {args.name}")
                return 0
            print(f"chatbus: error: there is no agent called {args.name!r}", file=sys.stderr)
            return 1
        agents = await store.list_agents()
        if getattr(args, "json", False):
            print(
                json.dumps(
                    [
                        {
                            "name": a.name,
                            "role": a.role,
                            "status": a.status,
                            "currentTask": a.current_task,
                            "progress": a.progress,
                            "command": list(a.command) if a.command else None,
                        }
                        for a in agents
                    ],
                    indent=2,
                )
            )
            return 0
        rows = [("NAME", "ROLE", "STATUS", "CURRENT TASK")]
        rows.extend((a.name, a.role, a.status, a.current_task or "-") for a in agents)
        print_table(rows)
        return 0
    finally:
        await store.close()
