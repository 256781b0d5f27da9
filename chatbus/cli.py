"""The ``chatbus`` command: serve, plugins, agents, status, send, version."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shlex
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from . import __version__
from .core.errors import ChatbusError, ConfigError
from .core.hub import Hub
from .core.loader import TRANSPORT_GROUP, PluginInfo, describe_error, distribution_of, iter_entry_points
from .core.logs import configure_logging
from .core.roster import Roster
from .core.settings import Settings
from .core.store import open_store

__all__ = ["main"]

log = logging.getLogger("chatbus.cli")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"chatbus: error: {message}\n")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="a chatbus.toml file to read")
    parser.add_argument("--db", metavar="PATH", help="SQLite database file, or :memory: (default ./chatbus.db)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="chatbus", description="People and AI agents in one chat, over several transports.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_serve(sub)
    plugins = sub.add_parser("plugins", help="list the transports and plugins found, with their hooks")
    _common(plugins)
    plugins.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_agents(sub)
    _add_status(sub)
    _add_send(sub)
    sub.add_parser("version", help="print the version")
    return parser


def _add_serve(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the chat with the configured transports")
    _common(serve)
    serve.add_argument("--host", help="address the WebSocket transport listens on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port of the WebSocket transport (default 8081)")
    serve.add_argument(
        "--transport",
        action="append",
        metavar="NAME",
        help="a transport to run; repeat for several (default: websocket)",
    )
    serve.add_argument(
        "--allow-open-auth",
        action="store_true",
        help="allow open authentication on a non-loopback address",
    )
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")


def _add_agents(sub: Any) -> None:
    agents = sub.add_parser("agents", help="hire, fire and list agents")
    agents_sub = agents.add_subparsers(dest="agents_command", metavar="ACTION", parser_class=_Parser)
    agents_sub.required = True
    hire = agents_sub.add_parser("hire", help="add an agent to the roster")
    hire.add_argument("name")
    hire.add_argument("role")
    hire.add_argument(
        "--command",
        dest="worker",
        metavar="'PROGRAM ARGS {task}'",
        help="worker command, split like a shell splits words and never run through a shell",
    )
    _common(hire)
    fire = agents_sub.add_parser("fire", help="remove an agent from the roster")
    fire.add_argument("name")
    _common(fire)
    listing = agents_sub.add_parser("list", help="show the roster")
    _common(listing)
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _add_status(sub: Any) -> None:
    status = sub.add_parser("status", help="show the health of each transport of a running server")
    status.add_argument("--config", metavar="PATH", help="a chatbus.toml file to read (for the default --url)")
    status.add_argument(
        "--url",
        metavar="URL",
        help="the server's address, e.g. http://127.0.0.1:8081 (default: from the websocket settings)",
    )
    status.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="how long to wait (default 5)")
    status.add_argument("--json", action="store_true", help="print the server's JSON answer")


def _add_send(sub: Any) -> None:
    send = sub.add_parser("send", help="post a message to a running server, as a person")
    send.add_argument("text", help="the message")
    send.add_argument("--user", required=True, metavar="ID", help="who is speaking")
    send.add_argument("--role", default="user", help="their role (default user)")
    send.add_argument("--token", help="their token, when the server runs token auth")
    send.add_argument("--room", default="general", help="the room (default general)")
    send.add_argument("--reply-to", type=int, metavar="ID", help="the id of the message this answers")
    send.add_argument("--config", metavar="PATH", help="a chatbus.toml file to read (for the default --url)")
    send.add_argument("--url", metavar="URL", help="the server's address (default: from the websocket settings)")
    send.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="how long to wait (default 10)")


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides: dict[str, Any] = dict(extra)
    if getattr(args, "db", None):
        overrides["db"] = args.db
    return Settings.load(getattr(args, "config", None), **overrides)


# serve ---------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    websocket: dict[str, Any] = {}
    if args.host:
        websocket["host"] = args.host
    if args.port is not None:
        websocket["port"] = args.port
    if websocket:
        overrides["websocket"] = websocket
    if args.transport:
        overrides["transports"] = args.transport
    if args.allow_open_auth:
        overrides["auth"] = {"allow_open_public": True}
    if args.log_level:
        overrides["log_level"] = args.log_level
    settings = _settings(args, **overrides)
    configure_logging(settings.log_level, settings.log_format)
    return asyncio.run(_serve(settings))


def _raise_open_file_limit() -> None:
    """Every connection is an open file; many systems start a process with a
    soft limit of 1,024, far below what the hard limit allows."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            log.debug("could not raise the open-file limit from %d", soft)


async def _serve(settings: Settings) -> int:
    _raise_open_file_limit()
    hub = Hub(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await hub.start()
    except BaseException:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        raise
    log.info("chatbus %s is running; press Ctrl+C to stop", __version__)
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        await hub.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return 0


# plugins -------------------------------------------------------------------
def _transport_infos() -> list[PluginInfo]:
    infos = []
    for ep in iter_entry_points(TRANSPORT_GROUP):
        dist, version = distribution_of(ep)
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 - listed as broken
            infos.append(PluginInfo(ep.name, "transport", dist, version, error=describe_error(exc)))
            continue
        hooks = sorted(
            name
            for name in ("start", "stop", "deliver", "notify", "is_connected")
            if callable(getattr(cls, name, None))
        )
        infos.append(PluginInfo(ep.name, "transport", dist, version, hooks=hooks))
    return infos


def cmd_plugins(args: argparse.Namespace) -> int:
    settings = _settings(args)
    configure_logging("CRITICAL", settings.log_format)  # broken plugins are listed below instead
    hub = Hub(settings, transports=[])
    infos = _transport_infos() + [info for info in hub.plugin_infos if info.kind == "plugin"]
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": i.name,
                        "kind": i.kind,
                        "distribution": i.distribution,
                        "version": i.version,
                        "hooks": i.hooks,
                        "error": i.error,
                    }
                    for i in infos
                ],
                indent=2,
            )
        )
        return 0
    rows = [("KIND", "NAME", "DISTRIBUTION", "VERSION", "HOOKS / ERROR")]
    for info in infos:
        detail = f"BROKEN: {info.error}" if info.broken else ", ".join(info.hooks)
        rows.append((info.kind, info.name, info.distribution or "-", info.version or "-", detail))
    _print_table(rows)
    return 0


# agents --------------------------------------------------------------------
def cmd_agents(args: argparse.Namespace) -> int:
    settings = _settings(args)
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
        _print_table(rows)
        return 0
    finally:
        await store.close()


# status --------------------------------------------------------------------
def _server_url(args: argparse.Namespace) -> str:
    """The running server's http address: ``--url``, else the websocket settings."""
    if args.url:
        url = str(args.url).strip()
        if url.startswith(("ws://", "wss://")):
            url = "http" + url[2:]
        elif "://" not in url:
            url = f"http://{url}"
    else:
        section = Settings.load(args.config).section("websocket")
        host = str(section.get("host") or "127.0.0.1")
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        host = f"[{host}]" if ":" in host else host
        url = f"http://{host}:{section.get('port') or 8081}"
    return url


def _status_url(args: argparse.Namespace) -> str:
    """The ``/ws-info`` address of the server."""
    url = _server_url(args)
    rest = url.partition("://")[2]
    if "/" not in rest or rest.endswith("/"):
        url = url.rstrip("/") + "/ws-info"
    return url


# send ----------------------------------------------------------------------
def cmd_send(args: argparse.Namespace) -> int:
    """Post one message to a running server over its WebSocket, as a person."""
    import uuid

    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    url = _server_url(args)
    scheme, _, rest = url.partition("://")
    ws_url = ("wss" if scheme == "https" else "ws") + "://" + rest.split("/", 1)[0] + "/"
    client_id = f"cli-{uuid.uuid4().hex[:12]}"
    auth: dict[str, Any] = {"userId": args.user, "role": args.role}
    if args.token:
        auth["token"] = args.token
    message: dict[str, Any] = {"text": args.text, "id": client_id, "room": args.room}
    if args.reply_to is not None:
        message["replyTo"] = args.reply_to
    try:
        with connect(ws_url, open_timeout=args.timeout, close_timeout=2, max_size=None) as ws:
            ws.send(json.dumps({"type": "auth", "data": auth}))
            _await_frame(ws, "auth_response", args.timeout)
            ws.send(json.dumps({"type": "message", "data": message}))
            echo = _await_frame(ws, "message", args.timeout, lambda data: data.get("clientId") == client_id)
    except (OSError, TimeoutError, WebSocketException) as exc:
        reason = (
            type(exc).__name__
            if isinstance(exc, WebSocketException)
            else (getattr(exc, "strerror", None) or "no answer")
        )
        raise ChatbusError(
            f"could not talk to a chatbus server at {ws_url} ({reason}); is chatbus serve running there?"
        ) from None
    print(f"sent message {echo.get('id')} to #{echo.get('room', args.room)}")
    return 0


def _await_frame(ws: Any, kind: str, timeout: float, accept: Any = None) -> dict[str, Any]:
    """The data of the next frame of ``kind`` (an ``error`` frame is raised as the server's words)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        frame = json.loads(ws.recv(timeout=left))
        data = frame.get("data") or {}
        if frame.get("type") == "error":
            raise ChatbusError(f"the server refused: {data.get('message', data.get('code', 'no reason given'))}")
        if frame.get("type") == kind and (accept is None or accept(data)):
            return data


def cmd_status(args: argparse.Namespace) -> int:
    """Print each transport's health; exit 0 when all are healthy, 1 otherwise."""
    import urllib.error
    import urllib.request

    url = _status_url(args)
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as answer:
            info = json.loads(answer.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise ChatbusError(
            f"{url} answered {exc.code}; is that a chatbus server (with the websocket transport)?"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ChatbusError(f"no chatbus server answers at {url} ({reason}); is chatbus serve running there?") from None
    except ValueError:
        raise ChatbusError(f"{url} did not answer with JSON; is that a chatbus server?") from None
    health = info.get("health") if isinstance(info, dict) else None
    if not isinstance(health, dict):
        raise ChatbusError(f"{url} does not report transport health; is that a chatbus server?")
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        state = "running" if info.get("running") else "stopping"
        print(f"chatbus at {url}: {state}, {info.get('connected_users', 0)} people connected")
        rows = [("TRANSPORT", "HEALTH", "DETAIL")]
        for name, status in sorted(health.items()):
            ok = isinstance(status, dict) and status.get("healthy") is True
            detail = str(status.get("detail", "")) if isinstance(status, dict) else ""
            rows.append((name, "healthy" if ok else "UNHEALTHY", detail))
        _print_table(rows)
    healthy = all(isinstance(s, dict) and s.get("healthy") is True for s in health.values())
    return 0 if healthy and info.get("running") else 1


def cmd_version(args: argparse.Namespace) -> int:
    print(f"chatbus {__version__}")
    return 0


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())


COMMANDS = {
    "serve": cmd_serve,
    "plugins": cmd_plugins,
    "agents": cmd_agents,
    "status": cmd_status,
    "send": cmd_send,
    "version": cmd_version,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"chatbus: error: {exc}", file=sys.stderr)
        return 2
    except ChatbusError as exc:
        print(f"chatbus: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
