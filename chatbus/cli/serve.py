"""``chatbus serve`` and ``chatbus plugins``: the commands that build a hub."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from typing import Any

from .. import __version__
from ..core.hub import Hub
from ..core.loader import TRANSPORT_GROUP, PluginInfo, describe_error, distribution_of, iter_entry_points
from ..core.logs import configure_logging
from ..core.settings import Settings
from .common import print_table, settings_for

__all__ = ["cmd_plugins", "cmd_serve"]

log = logging.getLogger("chatbus.cli")

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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
    settings = settings_for(args, **overrides)
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
    """Run until SIGTERM or SIGINT, then stop gracefully (see :meth:`Hub.stop`) and
    return 0: a supervisor that stops or restarts chatbus sees a clean exit."""
    _raise_open_file_limit()
    hub = Hub(settings)
    received: list[str] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: signal.Signals) -> None:
        if stop.is_set():
            log.info("%s received again: still stopping; it takes at most a few seconds", signum.name)
            return
        received.append(signum.name)
        stop.set()

    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await hub.start()
    except BaseException:
        for signum in _STOP_SIGNALS:
            loop.remove_signal_handler(signum)
        raise
    log.info("chatbus %s is running; press Ctrl+C to stop", __version__)
    try:
        await stop.wait()
        log.info(
            "%s received: stopping gracefully; clients are told to reconnect in %g s",
            received[0],
            settings.restart_retry_after,
        )
    finally:
        await hub.stop(restart_in=settings.restart_retry_after)
        for signum in _STOP_SIGNALS:
            loop.remove_signal_handler(signum)
    log.info("chatbus stopped")
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
    settings = settings_for(args)
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
    print_table(rows)
    return 0
