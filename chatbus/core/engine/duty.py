"""A duty that runs on one node of the cluster at a time, held by a lease (see :class:`~.base.Lease`).

The Telegram poller and each agent's worker are such duties: every node runs
a :class:`Duty`, whichever takes the lease does the work, and renews the
lease a few times per ``ttl``. A node that dies stops renewing, and another
takes over within ``ttl``; a node that loses its lease (it could not renew in
time) stops its work at once, so the work is never done by two nodes for
longer than the renewal interval. The work gets its lease, whose fencing token
it can hand to whatever it writes so that a write made under an older lease
can be refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from ..errors import StoreError
from .base import Engine, Lease

__all__ = ["Duty"]

log = logging.getLogger("chatbus.engine")


class Duty:
    """Run ``work(lease)`` while this node (``holder``) holds the lease ``name``.

    :meth:`run` waits for the lease, runs the work while renewing it every
    ``ttl / 3`` seconds, cancels the work when the lease is lost and waits for
    it again; it returns when the work returns (and lets the lease go).
    Cancelling :meth:`run` (a clean stop) cancels the work and releases the
    lease, so another node takes over at once instead of after ``ttl``.
    """

    def __init__(
        self,
        engine: Engine,
        name: str,
        holder: str,
        ttl: float,
        work: Callable[[Lease], Awaitable[None]],
        *,
        retry: float | None = None,
    ) -> None:
        self.engine = engine
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self.work = work
        #: Seconds between asking for the lease while another node holds it (``ttl / 3`` by default).
        self.retry = retry if retry is not None else ttl / 3
        #: The lease while this node holds it.
        self.lease: Lease | None = None

    async def run(self) -> None:
        while True:
            lease = await self._wait_for_lease()
            self.lease = lease
            try:
                if await self._hold(lease):
                    return
            finally:
                self.lease = None
                with contextlib.suppress(StoreError):
                    await self.engine.release(lease)

    async def _wait_for_lease(self) -> Lease:
        while True:
            try:
                lease = await self.engine.acquire(self.name, self.holder, self.ttl)
            except StoreError as exc:
                log.warning("cannot ask for the duty %r now: %s", self.name, exc)
                lease = None
            if lease is not None:
                log.info("%s took the duty %r (token %d)", self.holder, self.name, lease.token)
                return lease
            await asyncio.sleep(self.retry)

    async def _hold(self, lease: Lease) -> bool:
        """Run the work while renewing ``lease``: True when the work finished, False when the lease was lost."""
        working = asyncio.ensure_future(self.work(lease))
        try:
            while True:
                done, _ = await asyncio.wait({working}, timeout=self.ttl / 3)
                if done:
                    working.result()
                    return True
                try:
                    # An answer later than that may come after the lease ran out and another node took it.
                    kept = await asyncio.wait_for(self.engine.renew(lease), self.ttl / 3)
                except (StoreError, TimeoutError) as exc:
                    log.warning("cannot renew the duty %r: %s", self.name, exc or "no answer in time")
                    kept = False
                if not kept:
                    log.warning("%s lost the duty %r (token %d); its work stops", self.holder, self.name, lease.token)
                    return False
        finally:
            if not working.done():
                working.cancel()
            # Whatever the work raised after the lease was lost is that loss's doing: said, not raised.
            for failed in await asyncio.gather(working, return_exceptions=True):
                if isinstance(failed, Exception):
                    log.warning("the work of the duty %r stopped: %s", self.name, failed)
