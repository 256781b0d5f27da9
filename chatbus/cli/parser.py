"""The command line's grammar: one function per command."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from .. import __version__

__all__ = ["build_parser"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"chatbus: error: {message}\n")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="a chatbus.toml file to read")
    parser.add_argument("--db", metavar="PATH", help="SQLite database file, or :memory: (default ./chatbus.db)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="chatbus", description="People and AI agents in one chat, over several transports.")
    parser.add_argument("--version", action="version", version=f"chatbus {__version__}", help="print the version")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_serve(sub)
    plugins = sub.add_parser("plugins", help="list the transports and plugins found, with their hooks")
    _common(plugins)
    plugins.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_agents(sub)
    _add_status(sub)
    _add_send(sub)
    _add_copy(sub)
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
    hire.add_argument("--model", help="the llm model that answers questions and conversation as the agent")
    hire.add_argument(
        "--stdin",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="replies to its running task reach the worker on standard input (--no-stdin: the task is run again)",
    )
    hire.add_argument(
        "--allow",
        nargs="+",
        action="extend",
        metavar="ROLE_OR_ID",
        help="who may give it work: roles and/or user ids (default: the agents.allow_roles setting)",
    )
    hire.add_argument("--create", action="store_true", help="create the database when it does not exist yet")
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
    _add_cafile(status)
    status.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="how long to wait (default 5)")
    status.add_argument("--json", action="store_true", help="print the server's JSON answer")


def _add_send(sub: Any) -> None:
    send = sub.add_parser("send", help="post a message to a running server, as a person")
    send.add_argument("text", nargs="?", default="", help="the message (may be left out when --file is given)")
    send.add_argument(
        "--file",
        dest="files",
        action="append",
        default=[],
        metavar="PATH",
        help="a file to attach (uploaded to the server first); repeat for several",
    )
    send.add_argument("--user", required=True, metavar="ID", help="who is speaking")
    send.add_argument("--role", default="user", help="their role (default user)")
    send.add_argument("--token", help="their token, when the server runs token auth")
    send.add_argument("--room", default="general", help="the room (default general)")
    send.add_argument("--reply-to", type=int, metavar="ID", help="the id of the message this answers")
    send.add_argument("--config", metavar="PATH", help="a chatbus.toml file to read (for the default --url)")
    send.add_argument("--url", metavar="URL", help="the server's address (default: from the websocket settings)")
    _add_cafile(send)
    send.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="how long to wait (default 10)")


def _add_copy(sub: Any) -> None:
    copy = sub.add_parser(
        "copy",
        help="copy a SQLite database into Redis, for several nodes on one chat (ids, agents and all)",
        description="Copy everything a chat keeps from a SQLite database into the Redis engine, under the same "
        "ids: messages with their edits, deletions, reactions and files, the agents, the transports' id maps, "
        "the state and the epoch (clients resume where they were). Stop the server first.",
    )
    copy.add_argument("source", nargs="?", metavar="DATABASE", help="the SQLite file (default: the db setting)")
    copy.add_argument("target", nargs="?", metavar="REDIS_URL", help="redis://HOST:PORT/DB (default: [engine] url)")
    copy.add_argument("--config", metavar="PATH", help="a chatbus.toml file to read")
    copy.add_argument("--prefix", help="the start of every Redis key (default: [engine] prefix, chatbus)")
    copy.add_argument(
        "--force",
        action="store_true",
        help="replace a chat the Redis already holds under the prefix (all of its keys are deleted first)",
    )


def _add_cafile(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cafile",
        metavar="PATH",
        help="PEM file of the certificate authority to trust for an https:// server, instead of the system's "
        "(like curl --cacert); SSL_CERT_FILE works too",
    )
