"""Telegram people online while they post, offline after a quiet time.

The Bot API says nothing about who is looking at a group, so a Telegram
person counts as online from their message on, and goes offline once they
have been quiet for ``telegram.presence_timeout`` seconds (the web chat
shows them come and go like anyone else, through ``hub.connect`` and
``hub.disconnect``). :class:`QuietTimer` is the bookkeeping, on an injected
clock; :class:`Presence` runs it against the hub.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from chatbus.core.message import Identity

from .errors import Stopped
from .session import NAME, Session

if TYPE_CHECKING:
    from chatbus.core.hub import Hub

__all__ = ["Presence", "QuietTimer"]

log = logging.getLogger("chatbus.telegram")


class QuietTimer:
    """When each person last posted; who has been quiet for ``timeout`` seconds."""

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self.clock = clock
        self._last: dict[str, float] = {}

    def seen(self, user_id: str) -> bool:
        """``user_id`` posted now; True when that made them online."""
        new = user_id not in self._last
        self._last.pop(user_id, None)
        self._last[user_id] = self.clock()  # kept in order of the last post
        return new

    def expired(self) -> list[str]:
        """Those quiet for ``timeout`` seconds, now forgotten (offline)."""
        now, gone = self.clock(), []
        for user_id, at in list(self._last.items()):
            if now - at < self.timeout:
                break
            gone.append(user_id)
            del self._last[user_id]
        return gone

    def next_expiry(self) -> float | None:
        """Seconds until the next person goes quiet, or None when nobody is online."""
        first = next(iter(self._last.values()), None)
        return None if first is None else max(0.0, first + self.timeout - self.clock())

    def everyone(self) -> list[str]:
        """Everyone online now, forgotten (the transport stops)."""
        gone = list(self._last)
        self._last.clear()
        return gone


class Presence:
    """Puts Telegram people online when they post and offline when quiet."""

    def __init__(self, session: Session, clock: Callable[[], float] = time.monotonic) -> None:
        self._session = session
        self._timer = QuietTimer(session.settings.presence_timeout, clock)
        self._identities: dict[str, Identity] = {}
        self._wake = asyncio.Event()

    async def posted(self, hub: Hub, identity: Identity) -> None:
        """``identity`` posted (or reacted, or edited): online from now for the quiet time."""
        self._identities[identity.user_id] = identity
        if self._timer.seen(identity.user_id):
            await hub.connect(identity, NAME)
            self._wake.set()

    async def run(self) -> None:
        """Take people offline as they go quiet, until the transport stops."""
        session = self._session
        try:
            while not session.stopping.is_set():
                self._wake.clear()
                await self._until_woken(self._timer.next_expiry())
                await self._take_offline(self._timer.expired())
        except Stopped:
            return

    async def _until_woken(self, timeout: float | None) -> None:
        """Wait ``timeout`` seconds, or until someone comes online or the transport stops."""
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(self._session.stopping.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _take_offline(self, user_ids: list[str]) -> None:
        hub = self._session.hub
        for user_id in user_ids:
            identity = self._identities.pop(user_id, None)
            if identity is not None and hub is not None:
                try:
                    await hub.disconnect(identity, NAME)
                except Exception:
                    log.exception("telegram: could not take %s offline", user_id)

    async def stop(self) -> None:
        """Everyone this transport put online leaves the hub."""
        self._wake.set()
        await self._take_offline(self._timer.everyone())
