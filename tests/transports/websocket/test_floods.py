"""One client flooding the server, idle sockets and token guessing, while others chat.

A flooder runs on a thread of its own with websockets' synchronous client,
sending one kind of frame as fast as it can and reading whatever comes back,
while two honest clients chat through the server on the test's event loop.
What a user would notice is asserted: every message arrives, in order,
without being held up for seconds; ``/healthz`` answers; the flooder is
slowed down (it gets few answers) and, when its frames are refused, closed
with 1008 and a reason; the log does not fill up. bench/flood.py measures
the honest clients' latency against a quiet run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from chatbus import Settings
from chatbus.core.logs import Repeats
from chatbus.testing import FakeClock

from .helpers import Client, Server, http_get, running, wait_until, warnings_about

#: Each flood: what the flooder sends, whether it signs in first, the error
#: code its frames get (None: valid frames, slowed down but never refused),
#: and the frame it gets back for each (None: nothing comes back).
FLOODS: dict[str, tuple[str, bool, str | None, str | None]] = {
    "invalid JSON": ('{"type": "message", "data": {"te', False, "INVALID_JSON", "INVALID_JSON"),
    "empty text": ('{"type": "message", "data": {"text": "   "}}', True, "INVALID_MESSAGE", "INVALID_MESSAGE"),
    "pings": ('{"type": "ping"}', True, None, "pong"),
    "rate-limited messages": ('{"type": "message", "data": {"text": "spam"}}', True, "RATE_LIMITED", "RATE_LIMITED"),
    "typing": ('{"type": "typing"}', True, None, None),
    "history": ('{"type": "history", "data": {"limit": 200}}', True, None, "history"),
}
#: The honest clients' messages, and the most any of them may take to arrive
#: (quiet, about a millisecond; the flood in issue 16 held them for seconds).
ROUNDS = 20
SLOW = 1.0
#: Everyone may send this many messages at once (the clock does not move, so
#: the flooder's message flood is refused from its 26th message on).
BURST = 25


@dataclass
class Flooder:
    """A client on a thread of its own sending one frame as fast as it can."""

    url: str
    payload: str
    sign_in: bool
    seconds: float = 15.0
    answers: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    started: float = 0.0
    close: tuple[int | None, str | None] = (None, None)
    ws: ClientConnection | None = None
    signed_in: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Flood until told to stop, closed, or ``seconds`` have passed (never longer)."""
        with connect(self.url, open_timeout=5, close_timeout=1) as ws:
            self.ws = ws
            if self.sign_in:
                ws.send('{"type": "auth", "data": {"userId": "mallory"}}')
            reader = threading.Thread(target=self._read, args=(ws,), daemon=True)
            reader.start()
            if self.sign_in and not self.signed_in.wait(5):
                return
            self.started = time.monotonic()
            deadline = self.started + self.seconds
            try:
                while not self.stop.is_set() and time.monotonic() < deadline:
                    ws.send(self.payload)
                    self.sent += 1
            except (ConnectionClosed, OSError):
                pass  # closed by the server, or cut short by the test
            reader.join(5)

    def halt(self) -> None:
        """Stop flooding, even while a send waits for a server that reads no more."""
        self.stop.set()
        if self.ws is not None:
            with contextlib.suppress(OSError):
                self.ws.socket.shutdown(socket.SHUT_RDWR)

    def _read(self, ws: ClientConnection) -> None:
        try:
            for raw in ws:
                frame = json.loads(raw)
                kind = frame["type"] if frame["type"] != "error" else frame["data"]["code"]
                self.answers[kind] += 1
                if kind == "auth_response":
                    self.signed_in.set()
        except (ConnectionClosed, OSError):
            pass
        if ws.protocol.close_rcvd is not None:
            self.close = (ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason)


@contextmanager
def flooding(server: Server, kind: str) -> Iterator[Flooder]:
    payload, sign_in, _, _ = FLOODS[kind]
    flooder = Flooder(server.url, payload, sign_in)
    thread = threading.Thread(target=flooder.run, daemon=True)
    thread.start()
    try:
        yield flooder
    finally:
        flooder.halt()
        thread.join(10)
        assert not thread.is_alive(), "the flooder did not stop"


async def chat_timed(alice: Client, bob: Client) -> list[float]:
    """Alice says ROUNDS things; how long each took to reach Bob (who must get them all, in order)."""
    delays = []
    for i in range(ROUNDS):
        sent = time.monotonic()
        await alice.say(f"honest {i}")
        while True:
            [frame] = await bob.chat(1, timeout=10)
            if frame["data"]["sender"] == "alice":
                break
        assert frame["data"]["text"] == f"honest {i}"
        delays.append(time.monotonic() - sent)
        await asyncio.sleep(0.02)
    return delays


@pytest.mark.parametrize("kind", list(FLOODS))
async def test_a_flood_leaves_others_chatting_and_is_throttled(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    _, _, code, answer = FLOODS[kind]
    settings = Settings.isolated(db=":memory:", rate_limit={"burst": BURST})
    # Refused frames past the allowance come 10 a second, so the flood lasts
    # through the chat before the flooder is closed.
    async with running(settings=settings, refused_per_second=10.0) as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        with flooding(server, kind) as flooder:
            # Its allowance is spent (20 at once) and it is being held back.
            await wait_until(lambda: flooder.sent >= 200, timeout=10)
            delays = await chat_timed(alice, bob)
            asked = time.monotonic()
            status, _, body = await http_get(server.port, "/healthz")
            assert (status, body) == (200, b"ok\n")
            assert time.monotonic() - asked < SLOW
            if code is not None:  # refused frames: it is closed once past its allowance
                await wait_until(lambda: flooder.close != (None, None), timeout=10)
            elapsed = time.monotonic() - flooder.started
            answered = flooder.answers[answer] if answer is not None else 0
            sent = flooder.sent
        assert max(delays) < SLOW, f"an honest message took {max(delays):.2f} s under a flood of {kind}"
        # Held back: 20 at once, then at most 10 a second (refused frames) or
        # 5 (the rest), however many frames it pushed at the server.
        assert answered <= 20 + 10 * elapsed + 2, (answered, sent, elapsed)
        assert sent > 10 * (answered + 20)
        if code is not None:
            assert flooder.close == (1008, f"Too many frames refused ({code}); {_hint(code)}, then reconnect.")
            # A few lines of the refusal, not one per frame.
            assert 1 <= len(warnings_about(caplog, f"{code}: ")) <= 10
        else:
            assert flooder.close == (None, None)  # valid frames: slowed down, never closed
        assert len(warnings_about(caplog)) <= 25
        await alice.still_works()
        await alice.close()
        await bob.close()


def _hint(code: str) -> str:
    return "wait between messages" if code == "RATE_LIMITED" else "fix the client"


def test_repeated_log_lines_end_in_one_summary(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    clock = FakeClock()
    repeats = Repeats(limit=10, interval=10.0, clock=clock)
    log = logging.getLogger("chatbus.transports.websocket")
    for n in range(1234 + 10):
        repeats.warning(log, "refused INVALID_JSON", "session %s: INVALID_JSON: bad frame %d", "s1", n)
        repeats.warning(log, "refused NOT_AUTHENTICATED", "session s2: NOT_AUTHENTICATED")
    assert len(caplog.records) == 20  # ten of each kind
    clock.advance(10.0)
    repeats.flush()
    summaries = [r.getMessage() for r in caplog.records[20:]]
    assert "session s1: INVALID_JSON: bad frame 1243 ... and 1,233 more like it in the last 10 s" in summaries
    assert "session s2: NOT_AUTHENTICATED ... and 1,233 more like it in the last 10 s" in summaries
    assert len(summaries) == 2
    repeats.warning(log, "refused INVALID_JSON", "a new interval")
    assert caplog.records[-1].getMessage() == "a new interval"


async def idle(server: Server, count: int) -> list[Client]:
    """``count`` connections that never sign in."""
    return [await Client.open(server.url) for _ in range(count)]


async def test_idle_sockets_from_one_address_cannot_take_every_slot() -> None:
    async with running(max_connections_per_address=5, auth_timeout=1.0) as server:
        sockets = await idle(server, 5)
        extra = await Client.open(server.url)
        assert await extra.closed() == (
            1013,
            "Too many connections from your address; close some, then try again.",
        )
        # The idle ones are closed once their time to sign in is up; then an
        # honest client from the same address gets in.
        for socket in sockets:
            assert await socket.closed() == (1008, "Send auth within 1 seconds of connecting.")
        await wait_until(lambda: server.transport.status()["connections"] == 0)
        alice = await server.client("alice")
        await alice.say("made it")
        [frame] = await alice.chat(1)
        assert frame["data"]["text"] == "made it"
        await alice.close()


async def test_sign_ins_in_progress_are_capped_but_signed_in_people_are_not() -> None:
    async with running(max_signing_in=3) as server:
        alice = await server.client("alice")
        sockets = await idle(server, 3)
        refused = await Client.open(server.url)
        assert await refused.closed() == (
            1013,
            "Too many people are signing in right now; try again in a few seconds.",
        )
        await sockets[0].sign_in("bob")  # signed in: no longer counts as signing in
        carol = await server.client("carol")
        await carol.say("hello")
        assert [f["data"]["text"] for f in await alice.chat(1)] == ["hello"]
        for client in (alice, carol, *sockets):
            await client.close()


def token_settings() -> Settings:
    return Settings.isolated(db=":memory:", auth={"mode": "token", "tokens": {"s3cret": {"userId": "alice"}}})


async def test_a_correct_token_works_right_after_one_mistake() -> None:
    # A delay after the first mistake would outlast the wait for the answer below.
    async with running(settings=token_settings(), auth_failure_delay=30.0) as server:
        client = await Client.open(server.url)
        await client.send("auth", {"userId": "alice", "token": "s3cert"})
        assert (await client.error())["code"] == "AUTH_FAILED"
        await client.send("auth", {"userId": "alice", "token": "s3cret"})
        answer = await client.expect("auth_response", timeout=2.0)
        assert answer["userId"] == "alice"
        await client.close()


async def test_guessing_tokens_slows_down_then_closes() -> None:
    delay = 0.2
    async with running(settings=token_settings(), auth_failure_delay=delay) as server:
        client = await Client.open(server.url)
        answered = []
        for guess in range(5):
            sent = time.monotonic()
            await client.send("auth", {"userId": "alice", "token": f"guess{guess}"})
            assert (await client.error())["code"] == "AUTH_FAILED"
            answered.append(time.monotonic() - sent)
        # After the second mistake the next guess is read only after 0.2 s,
        # then 0.4 s, then 0.8 s (less the time the answer took to arrive).
        assert answered[2] >= 0.8 * delay and answered[3] >= 1.8 * delay and answered[4] >= 3.8 * delay
        assert await client.closed() == (
            1008,
            "Too many failed sign-ins; check your user id and token, then reconnect.",
        )


async def test_an_address_that_keeps_guessing_is_turned_away_until_time_has_passed() -> None:
    clock = FakeClock()
    async with running(
        settings=token_settings(), clock=clock, auth_failures_per_address=3, auth_failure_delay=0.0
    ) as server:
        reason = "Too many failed sign-ins from your address; try again in 200 s."
        # Two connections, two failures each: the fourth is one too many.
        first = await Client.open(server.url)
        for _ in range(2):
            await first.send("auth", {"userId": "alice", "token": "wrong"})
            assert (await first.error())["code"] == "AUTH_FAILED"
        await first.close()
        second = await Client.open(server.url)
        for _ in range(2):
            await second.send("auth", {"userId": "alice", "token": "wrong"})
            assert (await second.error())["code"] == "AUTH_FAILED"
        assert await second.closed() == (1008, reason)
        # From that address nobody gets in until the allowance has come back ...
        clock.advance(100.0)
        turned_away = await Client.open(server.url)
        assert await turned_away.closed() == (1008, "Too many failed sign-ins from your address; try again in 100 s.")
        # ... and then the right token works.
        clock.advance(100.0)
        alice = await server.client("alice", token="s3cret")
        assert alice.auth["userId"] == "alice"
        await alice.close()


async def test_refused_names_slow_their_connection_but_never_lock_the_address_out() -> None:
    """On a shared address (everyone on loopback, an office behind one NAT) one person's
    typos must not turn everyone away: only tokens tried wrong count toward the lock-out."""
    async with running(auth_failures_per_address=3, auth_failure_delay=0.0) as server:
        for _ in range(3):
            typist = await Client.open(server.url)
            for name in ("..", "System", "ALICE-bot" * 10):
                await typist.send("auth", {"userId": name})
                assert (await typist.error())["code"] == "AUTH_FAILED"
            await typist.close()
        # Nine refusals from this address later, the next person still gets in.
        bob = await server.client("bob")
        assert bob.auth["userId"] == "bob"
        await bob.close()


async def test_a_page_that_pings_types_and_pages_history_is_never_held_back() -> None:
    """What the bundled page sends in a busy minute is well within every budget."""
    async with running() as server:
        alice = await server.client("alice")
        for _ in range(3):
            await alice.send("history", {"limit": 50})
            await alice.expect("history")
        for _ in range(10):
            await alice.send("typing")
            await alice.still_works()
        started = time.monotonic()
        await alice.still_works()
        assert time.monotonic() - started < 0.5
        await alice.close()


def test_budgets_refill_on_the_hubs_clock() -> None:
    """The throttle waits only as long as the budget needs, counted on the injected clock."""
    from chatbus.transports.websocket.guard import Guard
    from chatbus.transports.websocket.settings import WebSocketSettings

    clock = FakeClock()
    settings = WebSocketSettings(control_burst=3, control_per_second=2.0, refused_burst=2, refused_per_second=1.0)

    class Peer:
        client_address = "192.0.2.7"

    throttle = Guard(settings).throttle(Peer(), clock)  # type: ignore[arg-type]
    assert [throttle.after("ping").wait for _ in range(3)] == [0.0, 0.0, 0.0]
    assert throttle.after("ping").wait == pytest.approx(0.5)
    clock.advance(0.5)
    assert throttle.after("ping").wait == 0.0
    assert throttle.after("history").wait == 0.0  # each kind has its own budget
    assert throttle.after("message").wait == 0.0  # messages are the rate limiter's
    assert [throttle.after("INVALID_JSON").wait for _ in range(2)] == [0.0, 0.0]
    waits = [throttle.after("INVALID_JSON") for _ in range(9)]
    assert all(v.wait == pytest.approx(1.0) and v.close is None for v in waits)
    closing = throttle.after("INVALID_JSON")
    assert closing.close == "Too many frames refused (INVALID_JSON); fix the client, then reconnect."


async def test_handshakes_refused_over_a_cap_are_counted_once_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with running(max_connections_per_address=1) as server:
        first = await Client.open(server.url)
        for _ in range(30):
            extra = await Client.open(server.url)
            assert (await extra.closed())[0] == 1013
        assert len(warnings_about(caplog, "max_connections_per_address")) == 10
        await first.close()
