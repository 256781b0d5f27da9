"""What the parts of the Telegram transport share while it runs.

Reading updates (``updates.py``) and relaying hub messages (``outbound.py``)
work on the same hub, bot, stop signal, relay state and health. One
:class:`Session` holds them, so each part gets exactly these and nothing of
the others' insides. Waits go through :meth:`Session.sleep` and
:meth:`Session.interruptible`, so ``stop`` never waits for a flood limit or
a long poll to run out.

On a store several nodes share, the transport runs on one node at a time,
the one holding the duty ``transport:telegram``. What only that node may
write (the update offset, the last relayed id, the kept updates) goes
through :attr:`Session.fenced`: a node that lost the duty finds its write
refused, and stops reading and relaying at once instead of overwriting what
the node that took over wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from telegram.ext import ExtBot

from chatbus.core.store import Store

from .errors import Failure, Stopped
from .health import Condition
from .settings import TelegramSettings
from .state import RelayState

if TYPE_CHECKING:
    from chatbus.core.hub import Hub

__all__ = ["DUTY", "NAME", "Fenced", "Session"]

log = logging.getLogger("chatbus.telegram")

T = TypeVar("T")

#: The transport's name: in the hub, in external ids and in store keys.
NAME = "telegram"
#: The duty held by the one node of a cluster that runs this transport.
DUTY = f"transport:{NAME}"


class Fenced:
    """``set_state`` for what only the node running the transport may write: through the
    hub's cluster, which refuses it once this node lost the duty (then ``Stopped``)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def set_state(self, key: str, value: str | None) -> None:
        hub = self._session.hub
        if hub is None:
            raise Stopped
        if not await hub.cluster.set_state(key, value, duty=DUTY):  # one node: the store's, always True
            self._session.lose_duty()
            raise Stopped


class Session:
    """The hub, the bot and the stop signal of the current run, plus the relay
    state and condition, which outlive a restart of the same transport."""

    def __init__(self, settings: TelegramSettings) -> None:
        self.settings = settings
        self.state = RelayState(settings)
        self.condition = Condition(settings)
        self.hub: Hub | None = None
        self.bot: ExtBot[Any] | None = None
        #: Who the bot is, once ``getMe`` answered.
        self.me_id: int | None = None
        self.username: str | None = None
        #: The bot's privacy mode is on (``getMe``: it cannot read all group messages).
        self.privacy = False
        #: Reactions people made in Telegram, (hub id, user id, emoji): the bot does not repeat them.
        self.reacted_in_telegram: set[tuple[int, str, str]] = set()
        self.stopping = asyncio.Event()
        #: Writes only the node holding the duty may make (see the module's docstring).
        self.fenced = Fenced(self)
        #: Another node took the duty over during this run: nothing more is read or relayed here.
        self.lost = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._waiting: asyncio.Future[Any] | None = None

    def begin(self, hub: Hub, bot: ExtBot[Any]) -> None:
        """A new run on ``hub`` through ``bot``: nothing is stopping and nothing known to be wrong."""
        self.hub, self.bot = hub, bot
        self.stopping = asyncio.Event()
        self.lost = False
        self.condition.reset()

    @property
    def shared(self) -> bool:
        """Several nodes share the hub's store: this transport runs on one of them at a time."""
        return self.hub is not None and self.hub.cluster.shared

    @property
    def drop_pending(self) -> bool:
        """Whether to drop the updates waiting at Telegram when reading starts: ``drop_pending_updates``
        on one node; never on a cluster, where a start takes over from a node that stopped or died."""
        return self.settings.drop_pending_updates and not self.shared

    def lose_duty(self) -> None:
        """A fenced write was refused: another node runs the transport now, so this one stops
        reading updates and relaying messages at once (the hub stops the transport soon after)."""
        if not self.lost:
            self.lost = True
            log.warning(
                "telegram: another node took over the duty %r; this node stops reading updates and relaying", DUTY
            )
        self.stopping.set()
        if self._waiting is not None:
            self._waiting.cancel()

    def end(self) -> None:
        """The run is over: work still in progress gives up with ``Stopped``."""
        self.hub = None

    def store(self) -> Store:
        """The hub's store; ``Stopped`` when the transport is not running."""
        if self.hub is None:
            raise Stopped
        return self.hub.store

    def retried(self, method: str, failure: Failure) -> None:
        """Count a Bot API call tried again after ``failure`` (``chatbus_telegram_retries_total``)."""
        if self.hub is not None:
            self.hub.metrics.telegram_retries.labels(failure.outcome.name.lower()).inc()
        log.debug("telegram: trying %s again after %s", method, failure.outcome.name.lower())

    def live_bot(self) -> ExtBot[Any]:
        """The bot; ``Stopped`` once it is shut down."""
        if self.bot is None:
            raise Stopped
        return self.bot

    async def sleep(self, seconds: float) -> None:
        """Wait, but stop waiting (with ``Stopped``) as soon as the transport stops."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), seconds)
        if self.stopping.is_set():
            raise Stopped

    async def wait_for(self, event: asyncio.Event) -> None:
        """Wait until ``event`` is set; ``Stopped`` when the transport stops first."""
        if not event.is_set():
            await self.until_stopped(event.wait())

    async def until_stopped(self, wait: Awaitable[T]) -> T:
        """Await ``wait``, or give it up with ``Stopped`` as soon as the transport stops."""
        work: asyncio.Future[T] = asyncio.ensure_future(wait)
        stop: asyncio.Future[Any] = asyncio.ensure_future(self.stopping.wait())
        waiting: list[asyncio.Future[Any]] = [work, stop]
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not work.done():
                work.cancel()
        if not work.done() or work.cancelled():
            raise Stopped
        return work.result()

    async def interruptible(self, wait: Awaitable[T]) -> T:
        """Await ``wait`` (a long poll, the next webhook update) so that ``stop``
        can cut it short; raises ``Stopped`` when it does."""
        waiting: asyncio.Future[T] = asyncio.ensure_future(wait)
        self._waiting = waiting
        try:
            return await waiting
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self.stopping.is_set() and (task is None or not task.cancelling()):
                raise Stopped from None
            raise
        finally:
            self._waiting = None

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coro`` in the background until it ends or the transport stops."""
        task = asyncio.get_running_loop().create_task(coro, name=f"chatbus-telegram-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("telegram: %s failed", task.get_name(), exc_info=task.exception())

    async def halt(self, grace: float) -> None:
        """Signal the stop, then give background work ``grace`` seconds to finish.

        An update being handled is finished (so its offset is saved and it is
        not read again after a restart); only the wait for the next one is cut.
        """
        self.stopping.set()
        if self._waiting is not None:
            self._waiting.cancel()
        tasks = list(self._tasks)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
