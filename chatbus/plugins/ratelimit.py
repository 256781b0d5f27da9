"""The built-in ``rate_limit``: a token bucket per sender plus an hourly cap.

Each person may send ``burst`` messages at once, then one every
``1 / per_second`` seconds, and at most ``per_hour`` in any hour. A refusal
says how many seconds until the next message would pass. Agents and the
system are never limited here. The clock is the hub's, so tests control time
exactly.

On a store several nodes share (``[engine] url``, Redis), each person's
allowance is counted once for the whole chat, in the engine
(:meth:`~chatbus.core.engine.Engine.take`, on Redis' clock), so someone
connected to N nodes still gets one allowance, not N. When Redis cannot
answer, the node counts the person's messages in its own bucket instead (and
says so once in the log, and again when Redis counts again): a send is never
let through unlimited, and never refused only because the count was out of
reach (Redis down refuses the message anyway, with the store's own error).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import Field

from chatbus import Hub, Identity, Incoming, PluginSettings, RateDecision, hookimpl
from chatbus.core.errors import StoreError

__all__ = ["RateLimitSettings", "RateLimiter", "TokenBucket"]

log = logging.getLogger("chatbus.plugins.ratelimit")

HOUR = 3600.0
#: Seconds a shared count may take before the node counts on its own bucket instead.
SHARED_TIMEOUT = 1.0


class RateLimitSettings(PluginSettings):
    """``[ratelimit]``: a token bucket per sender plus an hourly cap.

    The older section name ``rate_limit`` is still read.
    """

    section_aliases: ClassVar[tuple[str, ...]] = ("rate_limit",)

    burst: int = Field(5, ge=1)
    per_second: float = Field(1.0, gt=0)
    per_hour: int = Field(600, ge=1)


@dataclass
class _Sender:
    tokens: float
    updated: float
    recent: deque[float] = field(default_factory=deque)


class TokenBucket:
    """Per-key token buckets with an hourly cap; pure logic, clock injected.

    ``per_hour=None`` has no hourly cap and keeps no record of each call
    (what a cap needs), for buckets that only smooth bursts.
    """

    def __init__(
        self,
        *,
        burst: int,
        per_second: float,
        per_hour: int | None,
        clock: Callable[[], float],
    ) -> None:
        self.burst = burst
        self.per_second = per_second
        self.per_hour = per_hour
        self.clock = clock
        self._senders: dict[str, _Sender] = {}
        self._calls = 0

    def check(self, key: str) -> RateDecision:
        """Take one message from ``key``'s allowance, or say how long to wait."""
        now = self.clock()
        state = self._senders.get(key)
        if state is None:
            state = self._senders[key] = _Sender(float(self.burst), now)
        else:
            elapsed = max(0.0, now - state.updated)
            state.tokens = min(float(self.burst), state.tokens + elapsed * self.per_second)
            state.updated = now
        recent = state.recent
        while recent and recent[0] <= now - HOUR:
            recent.popleft()

        wait = 0.0
        if state.tokens < 1.0:
            wait = (1.0 - state.tokens) / self.per_second
        if self.per_hour is not None and len(recent) >= self.per_hour:
            wait = max(wait, recent[0] + HOUR - now)
        if wait > 0.0:
            return RateDecision.refuse(wait)

        state.tokens -= 1.0
        if self.per_hour is not None:
            recent.append(now)
        self._calls += 1
        if self._calls % 1024 == 0:
            self._forget_idle(now)
        return RateDecision.allow()

    def _forget_idle(self, now: float) -> None:
        """Drop senders whose bucket is full again and who sent nothing this hour."""
        refill = self.burst / self.per_second
        idle = [
            key
            for key, state in self._senders.items()
            if now - state.updated >= refill and (not state.recent or state.recent[-1] <= now - HOUR)
        ]
        for key in idle:
            del self._senders[key]

    def __len__(self) -> int:
        return len(self._senders)


class RateLimiter:
    """Registered as ``ratelimit``; configured by the ``[ratelimit]`` section."""

    name = "ratelimit"
    settings_model = RateLimitSettings

    def __init__(self, hub: Hub, settings: RateLimitSettings) -> None:
        self.settings = settings
        self.buckets = TokenBucket(
            burst=settings.burst,
            per_second=settings.per_second,
            per_hour=settings.per_hour,
            clock=hub.clock,
        )
        self._store = hub.store
        #: Whether the last shared count failed (the log says so once per outage).
        self._unshared = False

    @hookimpl(trylast=True)
    def rate_limit(self, identity: Identity, message: Incoming) -> RateDecision | Awaitable[RateDecision]:
        if identity.kind != "human":
            return RateDecision.allow()
        if not self._store.shared:
            return self.buckets.check(identity.user_id)
        return self._take_shared(identity.user_id)

    async def _take_shared(self, user_id: str) -> RateDecision:
        """One message from ``user_id``'s allowance for the whole chat; this node's bucket while Redis is away."""
        engine = self._store.engine
        limits = self.settings
        try:
            if engine is None:
                raise StoreError("the shared store has no engine open")
            wait = await asyncio.wait_for(
                engine.take(
                    f"send:{user_id}", burst=limits.burst, per_second=limits.per_second, per_hour=limits.per_hour
                ),
                SHARED_TIMEOUT,
            )
        except (StoreError, TimeoutError) as exc:
            if not self._unshared:
                self._unshared = True
                reason = str(exc) or f"no answer within {SHARED_TIMEOUT:g} s"
                log.warning("rate limits are counted on this node alone until Redis answers again: %s", reason)
            return self.buckets.check(user_id)
        if self._unshared:
            self._unshared = False
            log.info("rate limits are counted across all nodes again")
        return RateDecision.refuse(wait) if wait > 0.0 else RateDecision.allow()
