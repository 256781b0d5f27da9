"""Logging set-up (plain text lines or one JSON object per line), and a
limit on lines that repeat.

A client that sends a bad frame thousands of times a second must not write
a log line for each: :class:`Repeats` writes a few lines of one kind per
interval and then one summary line saying how many more there were.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["Repeats", "configure_logging"]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the traceback, for operators)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Send chatbus's logs to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # The websockets library logs every failed handshake at ERROR/INFO; chatbus
    # reports what matters itself.
    logging.getLogger("websockets").setLevel(max(logging.WARNING, logging.getLevelName(level)))


@dataclass
class _Kind:
    """One kind's current interval: when it began, lines written, lines left
    out, and the last one left out (the example for the summary)."""

    started: float
    shown: int = 0
    left_out: int = 0
    example: tuple[logging.Logger, int, str, tuple[Any, ...]] | None = None


class Repeats:
    """At most ``limit`` log lines of one kind per ``interval`` seconds; the
    rest are counted, and once the interval is over one summary line says how
    many (``... and 1,234 more like it in the last 10 s``).

    The kind is what the caller says repeats (``refused INVALID_JSON``), so
    one noisy client cannot hide other kinds of line; each owner (a
    transport) has its own. A line left out is never formatted. The summary
    is written when the interval ends (from the running event loop), or by
    the next line of any kind, whichever comes first.
    """

    def __init__(self, *, limit: int = 10, interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.interval = interval
        self.clock = clock
        self._kinds: dict[str, _Kind] = {}
        self._lock = threading.Lock()

    def warning(self, logger: logging.Logger, kind: str, msg: str, *args: Any) -> None:
        """``logger.warning(msg, *args)``, unless ``kind`` has had its lines for this interval."""
        self._log(logger, logging.WARNING, kind, msg, args)

    def log(self, logger: logging.Logger, level: int, kind: str, msg: str, *args: Any) -> None:
        """``logger.log(level, msg, *args)``, unless ``kind`` has had its lines for this interval."""
        self._log(logger, level, kind, msg, args)

    def _log(self, logger: logging.Logger, level: int, kind: str, msg: str, args: tuple[Any, ...]) -> None:
        now = self.clock()
        self.flush(now)
        with self._lock:
            state = self._kinds.get(kind)
            if state is None:
                state = self._kinds[kind] = _Kind(now)
            shown = state.shown < self.limit
            if shown:
                state.shown += 1
            else:
                state.left_out += 1
                state.example = (logger, level, msg, args)
        if shown:
            logger.log(level, msg, *args, stacklevel=3)  # the line that called warning() or log()
        elif state.left_out == 1:
            self._flush_later(state.started + self.interval - now)

    def flush(self, now: float | None = None) -> None:
        """Write the summary of every kind whose interval is over (of all of them with ``now=math.inf``)."""
        now = self.clock() if now is None else now
        done: list[_Kind] = []
        with self._lock:
            for kind, state in list(self._kinds.items()):
                if now - state.started >= self.interval:
                    del self._kinds[kind]
                    done.append(state)
        for state in done:
            if state.example is None:
                continue
            logger, level, msg, args = state.example
            text = msg % args if args else msg
            more = state.left_out - 1
            if more:
                seconds = min(now - state.started, self.interval)
                logger.log(level, "%s ... and %s more like it in the last %.0f s", text, f"{more:,}", seconds)
            else:
                logger.log(level, "%s", text)

    def _flush_later(self, delay: float) -> None:
        """Write the summary when the interval ends, even if nothing else is logged."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop on this thread: the next line writes it
        loop.call_later(max(0.0, delay) + 0.001, self.flush)
