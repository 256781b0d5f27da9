"""The ``chatbus`` command: serve, plugins, agents, status, send, copy, version."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..core.errors import ChatbusError, ConfigError
from .agents import cmd_agents
from .migrate import cmd_copy
from .parser import build_parser
from .remote import cmd_send, cmd_status
from .serve import cmd_plugins, cmd_serve

__all__ = ["build_parser", "main"]


def cmd_version(args: argparse.Namespace) -> int:
    print(f"chatbus {__version__}")
    return 0


COMMANDS = {
    "serve": cmd_serve,
    "plugins": cmd_plugins,
    "agents": cmd_agents,
    "status": cmd_status,
    "send": cmd_send,
    "copy": cmd_copy,
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
    except BrokenPipeError:  # "chatbus agents list | head": the reader has read enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 141
