"""The hub's own tasks: plugin work it waits for at shutdown, and background
work (an agent's task, a periodic loop) it cancels at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

__all__ = ["Tasks"]

log = logging.getLogger("chatbus.hub")


class Tasks:
    """Tasks owned by the hub, each failure logged."""

    def __init__(self) -> None:
        self._short: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Awaitable[Any], *, name: str | None = None, background: bool = False) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        (self._background if background else self._short).add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._short.discard(task)
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def settle(self) -> None:
        """Wait until the short work started so far, and any it started, has finished."""
        while self._short:
            await asyncio.gather(*list(self._short), return_exceptions=True)
            await asyncio.sleep(0)

    async def wait(self, timeout: float) -> None:
        """Let short work finish for up to ``timeout`` seconds, then cancel what is left."""
        if not self._short:
            return
        _, pending = await asyncio.wait(list(self._short), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled %d plugin task(s) still running at shutdown", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)

    async def cancel_background(self, timeout: float = 10.0) -> None:
        """Cancel the background work and wait (at most ``timeout``) for it to end; what does not is
        named in the log and left behind, so that a stop always finishes."""
        tasks = [task for task in self._background if not task.done()]
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        if pending:
            names = ", ".join(sorted(task.get_name() for task in pending))
            log.error("background work did not end within %g s of being cancelled: %s", timeout, names)
