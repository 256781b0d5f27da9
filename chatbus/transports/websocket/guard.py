"""What one client may cost everyone else: who gets a connection, and how
fast a connection's frames are read.

Two parts, both on the hub's clock so tests control time exactly:

- :class:`Guard`, one per transport, decides whether a new connection is
  taken: at most ``max_connections`` in all, ``max_connections_per_address``
  from one client address, and ``max_signing_in`` that have not signed in
  yet (idle sockets cannot take every slot); an address that failed to sign
  in too often is turned away for a while. Refusals close with 1013 (try
  again later) or 1008 (the address is locked out), each with a reason.
- :class:`Throttle`, one per connection, looks at what each frame turned
  out to be (see :data:`Outcome`) and says how long to wait before the
  connection's next frame is read, or that it is closed (1008). Pings,
  typing, edits, deletions, reactions and history requests have a budget
  per kind (history a smaller one); frames answered with
  an error have one too, and a connection that keeps going past it is
  closed; failed sign-ins slow down (1 s, 2 s, 4 s ...) and end in a close.
  Waiting before reading means the client's own TCP window fills: the
  throttled client slows down, nobody else does.

The guard also holds the transport's :class:`~chatbus.core.logs.Repeats`:
however a client misbehaves, a few log lines of each kind per 10 seconds.

The buckets are the rate limiter's :class:`~chatbus.plugins.ratelimit.TokenBucket`.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from websockets.frames import CloseCode

from chatbus.core.logs import Repeats
from chatbus.plugins.ratelimit import TokenBucket

from .connection import ChatConnection
from .settings import WebSocketSettings
from .wire import ERROR_CODES

__all__ = ["CONTROL", "NAME_REFUSED", "Guard", "Outcome", "Refusal", "Throttle", "Verdict", "refused_sign_in"]

log = logging.getLogger("chatbus.transports.websocket")

#: What a frame turned out to be: its type when it was handled (``message``,
#: ``ping``, ...), or the error code it was answered with (``INVALID_JSON``, ...).
Outcome = str

#: The outcome of a sign-in refused without a token tried (a reserved or
#: malformed name, a role not allowed, no token where one is needed): it slows
#: that connection like any failed sign-in, but it guesses nothing, so it does
#: not count toward ``auth_failures_per_address`` (one person's typos on a
#: shared address must not lock everyone there out).
NAME_REFUSED = "AUTH_FAILED:name"


def refused_sign_in(data: Mapping[str, Any]) -> Outcome:
    """The outcome of an ``auth`` frame refused: a guess when it tried a token, else a refused name."""
    token = data.get("token")
    return "AUTH_FAILED" if isinstance(token, str) and token else NAME_REFUSED


#: Frames that are valid but that nobody needs many of a second (history
#: reads the store, so it has a budget of its own). Edits, deletions and
#: reactions are broadcast to every connection, so a flood of them would be everyone's.
CONTROL: Final = frozenset({"ping", "typing", "history", "edit", "delete", "react"})
#: Errors that are the server's fault, not the client's: never held against it.
_NOT_THE_CLIENTS: Final = frozenset({"INTERNAL_ERROR"})
#: The window in which ``auth_failures_per_address`` failures are allowed.
_FAILURE_WINDOW: Final = 600.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do before reading a connection's next frame: wait ``wait``
    seconds, or close it with 1008 and ``close`` as the reason."""

    wait: float = 0.0
    close: str | None = None


_GO_ON: Final = Verdict()


@dataclass(frozen=True, slots=True)
class Refusal:
    """A connection that is not taken: the close code and the reason the client reads."""

    code: int
    reason: str


class Guard:
    """The transport's admission rules and the memory of failed sign-ins per address."""

    def __init__(self, settings: WebSocketSettings) -> None:
        self.settings = settings
        self._by_address: Counter[str] = Counter()
        self._signing_in: set[ChatConnection] = set()
        #: Failed sign-ins per address; made on first use, with the hub's clock.
        self._failures: TokenBucket | None = None
        #: Address -> hub time until which its connections are turned away.
        self._locked: dict[str, float] = {}
        #: The transport's lines about what clients do: a few of each kind per
        #: 10 s, then one line saying how many more there were.
        self.repeats = Repeats(limit=10, interval=10.0)

    @property
    def signing_in(self) -> int:
        """Connections taken that have not signed in yet."""
        return len(self._signing_in)

    def admit(self, connection: ChatConnection, open_count: int, now: float) -> Refusal | None:
        """Take a new connection (None) or say why not; ``open_count`` is how many are open now.

        A connection taken must be given back with :meth:`left` when it closes.
        """
        s = self.settings
        address = connection.client_address
        locked = self._locked.get(address, 0.0) - now
        refusal: Refusal | None = None
        if open_count >= s.max_connections:
            why, refusal = (
                "max_connections",
                Refusal(CloseCode.TRY_AGAIN_LATER, "The chat is full; try again in a minute."),
            )
        elif self._by_address[address] >= s.max_connections_per_address:
            why = "max_connections_per_address"
            refusal = Refusal(
                CloseCode.TRY_AGAIN_LATER, "Too many connections from your address; close some, then try again."
            )
        elif len(self._signing_in) >= s.max_signing_in:
            why = "max_signing_in"
            refusal = Refusal(
                CloseCode.TRY_AGAIN_LATER, "Too many people are signing in right now; try again in a few seconds."
            )
        elif locked > 0:
            why, refusal = "auth_failures_per_address", _locked_out(locked)
        if refusal is None:
            self._by_address[address] += 1
            self._signing_in.add(connection)
            return None
        self.repeats.warning(
            log,
            f"refused connection {why}",
            "session %s: refused a connection from %s (%s): %s",
            connection.session_id,
            address,
            why,
            refusal.reason,
        )
        return refusal

    def signed_in(self, connection: ChatConnection) -> None:
        """The connection signed in: it no longer counts against ``max_signing_in``."""
        self._signing_in.discard(connection)

    def left(self, connection: ChatConnection) -> None:
        """A connection taken by :meth:`admit` closed."""
        self._signing_in.discard(connection)
        address = connection.client_address
        self._by_address[address] -= 1
        if self._by_address[address] <= 0:
            del self._by_address[address]

    def auth_failed(self, address: str, clock: Callable[[], float]) -> float:
        """Count a failed sign-in from ``address``; the seconds its connections
        are now turned away for (0 while it is within its allowance)."""
        s = self.settings
        if self._failures is None:
            per_second = s.auth_failures_per_address / _FAILURE_WINDOW
            self._failures = TokenBucket(
                burst=s.auth_failures_per_address, per_second=per_second, per_hour=None, clock=clock
            )
        decision = self._failures.check(address)
        if decision.allowed:
            return 0.0
        now = clock()
        self._locked = {key: until for key, until in self._locked.items() if until > now}
        self._locked[address] = now + decision.retry_after
        return decision.retry_after

    def locked_for(self, address: str, now: float) -> float:
        """Seconds ``address`` is still turned away for after too many failed sign-ins (0: it is not)."""
        return max(0.0, self._locked.get(address, 0.0) - now)

    def throttle(self, connection: ChatConnection, clock: Callable[[], float]) -> Throttle:
        """The throttle of a new connection."""
        return Throttle(self, connection.client_address, clock)


class Throttle:
    """One connection's budgets: see the module's docstring."""

    def __init__(self, guard: Guard, address: str, clock: Callable[[], float]) -> None:
        self.guard = guard
        self.settings = guard.settings
        self.address = address
        self.clock = clock
        self._control: TokenBucket | None = None
        self._history: TokenBucket | None = None
        self._refused: TokenBucket | None = None
        #: Refused frames past the allowance since the connection last kept within it.
        self.strikes = 0
        self.auth_failures = 0
        self._last_refused = -math.inf

    def after(self, outcome: Outcome) -> Verdict:
        """What to do before reading the next frame, now that one turned out to be ``outcome``."""
        if outcome in CONTROL:
            decision = self._budget(outcome).check(outcome)
            return _GO_ON if decision.allowed else Verdict(decision.retry_after)
        if outcome in ("AUTH_FAILED", NAME_REFUSED):
            return self._auth_failed(guessed=outcome == "AUTH_FAILED")
        if outcome in ERROR_CODES and outcome not in _NOT_THE_CLIENTS:
            return self._refused_frame(outcome)
        return _GO_ON

    def _budget(self, kind: str) -> TokenBucket:
        """The bucket of pings and typing (one key each), or of history requests."""
        s = self.settings
        if kind == "history":
            if self._history is None:
                self._history = TokenBucket(
                    burst=s.history_burst, per_second=s.history_per_second, per_hour=None, clock=self.clock
                )
            return self._history
        if self._control is None:
            self._control = TokenBucket(
                burst=s.control_burst, per_second=s.control_per_second, per_hour=None, clock=self.clock
            )
        return self._control

    def _refused_frame(self, code: str) -> Verdict:
        s = self.settings
        if self._refused is None:
            self._refused = TokenBucket(
                burst=s.refused_burst, per_second=s.refused_per_second, per_hour=None, clock=self.clock
            )
        now = self.clock()
        if now - self._last_refused >= s.refused_burst / s.refused_per_second:
            self.strikes = 0  # quiet long enough for the whole allowance to come back
        self._last_refused = now
        decision = self._refused.check("refused")
        if decision.allowed:
            return _GO_ON
        self.strikes += 1
        if self.strikes >= s.refused_before_close:
            hint = "wait between messages" if code == "RATE_LIMITED" else "fix the client"
            return Verdict(close=f"Too many frames refused ({code}); {hint}, then reconnect.")
        return Verdict(decision.retry_after)

    def _auth_failed(self, *, guessed: bool) -> Verdict:
        """The first mistake costs nothing; then 1 s, 2 s, 4 s ... (``auth_failure_delay``), then a close.
        A token ``guessed`` wrong also counts toward the address's lock-out."""
        s = self.settings
        self.auth_failures += 1
        locked = self.guard.auth_failed(self.address, self.clock) if guessed else 0.0
        if locked > 0:
            return Verdict(close=_locked_out(locked).reason)
        if self.auth_failures >= s.auth_failures_before_close:
            return Verdict(close="Too many failed sign-ins; check your user id and token, then reconnect.")
        if self.auth_failures < 2:
            return _GO_ON
        return Verdict(s.auth_failure_delay * 2 ** (self.auth_failures - 2))


def _locked_out(seconds: float) -> Refusal:
    return Refusal(
        CloseCode.POLICY_VIOLATION,
        f"Too many failed sign-ins from your address; try again in {math.ceil(seconds)} s.",
    )
