"""``chatbus agents hire | fire | list``: the roster, over the store alone."""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys

from ..core.errors import ConfigError
from ..core.logs import configure_logging
from ..core.message import Agent
from ..core.roster import Roster
from ..core.settings import Settings
from ..core.store import Store, open_engine_store, open_store
from .common import print_table, settings_for

__all__ = ["cmd_agents"]


def cmd_agents(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    configure_logging("WARNING", settings.log_format)
    return asyncio.run(_agents(args, settings))


async def _agents(args: argparse.Namespace, settings: Settings) -> int:
    # Only ``hire --create`` may start a new database: a mistyped --db would
    # otherwise list an empty roster, or hire into a file no server reads.
    create = bool(getattr(args, "create", False))
    store = open_engine_store(settings) if settings.engine.url else open_store(settings.db, create=create)
    await store.open()
    try:
        if args.agents_command == "hire":
            return await _hire(args, settings, store)
        if args.agents_command == "fire":
            if await Roster(store).fire(args.name):
                print(f"fired {args.name}")
                return 0
            print(f"chatbus: error: there is no agent called {args.name!r}", file=sys.stderr)
            return 1
        _list(args, await store.list_agents())
        return 0
    finally:
        await store.close()


async def _hire(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    command = None
    if args.worker:
        try:
            command = shlex.split(args.worker)
        except ValueError as exc:
            raise ConfigError(f"--command cannot be split into words: {exc}") from None
    existed = await store.get_agent(args.name) is not None
    allow = getattr(args, "allow", None)
    agent = await Roster(store).hire(
        args.name,
        args.role,
        command,
        model=getattr(args, "model", None),
        stdin=getattr(args, "stdin", None),
        allow=allow,
    )
    print(
        f"{'updated' if existed else 'hired'} {agent.name} ({agent.role})"
        + (f" with command {shlex.join(agent.command)}" if agent.command else "")
        + (f", model {agent.model}" if agent.model else "")
        + (", replies on standard input" if agent.stdin else "")
        + (f", work from {', '.join(agent.allow) or 'nobody'}" if agent.allow is not None else "")
    )
    if agent.command and not any("{task}" in part for part in agent.command):
        print(
            "note: the command has no {task}, so the task reaches it only as the CHATBUS_TASK environment variable",
            file=sys.stderr,
        )
    elsewhere = await asyncio.to_thread(_server_epoch, settings)
    if elsewhere is not None and elsewhere[1] != store.epoch:
        print(
            f"warning: the chatbus server at {elsewhere[0]} uses another database than {settings.db}, "
            "so it will not see this agent; hire it with the --db (or --config) that server runs with",
            file=sys.stderr,
        )
    return 0


def _server_epoch(settings: Settings) -> tuple[str, str] | None:
    """The address and log epoch of a chatbus server running at the configured
    websocket address, or None when none answers (quickly: it is only a check)."""
    import urllib.request

    section = settings.section("websocket")
    host = str(section.get("host") or "127.0.0.1")
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{f'[{host}]' if ':' in host else host}:{section.get('port') or 8081}/ws-info"
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            info = json.loads(answer.read().decode("utf-8"))
    except (OSError, ValueError):
        return None
    epoch = info.get("epoch") if isinstance(info, dict) else None
    return (url.rsplit("/", 1)[0], epoch) if isinstance(epoch, str) else None


def _list(args: argparse.Namespace, agents: list[Agent]) -> None:
    if getattr(args, "json", False):
        entries = [
            {
                "name": a.name,
                "role": a.role,
                "status": a.status,
                "currentTask": a.current_task,
                "progress": a.progress,
                "command": list(a.command) if a.command else None,
                "model": a.model,
                "stdin": a.stdin,
                "allow": list(a.allow) if a.allow is not None else None,
            }
            for a in agents
        ]
        print(json.dumps(entries, indent=2))
        return
    rows = [("NAME", "ROLE", "STATUS", "CURRENT TASK")]
    rows.extend((a.name, a.role, a.status, a.current_task or "-") for a in agents)
    print_table(rows)
