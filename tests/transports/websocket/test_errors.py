"""Every error code and close code of the protocol, each for the right input.

Each bad input gets exactly the code PROTOCOL.md names, one WARNING line in
the log, no exception text over the wire, and nothing changes for the two
people chatting beside it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from chatbus import Settings, hookimpl

from .helpers import Client, Server, running, wait_until, warnings_about

pytestmark = pytest.mark.usefixtures("caplog")


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    settings = Settings.isolated(db=":memory:", max_text_length=100, rate_limit={"burst": 50})
    async with running(settings=settings, max_frame_bytes=4096, max_connections=5) as server:
        yield server


@pytest.fixture
async def pair(server: Server) -> AsyncIterator[tuple[Client, Client]]:
    """Two people chatting while someone else misbehaves."""
    alice, bob = await server.client("alice"), await server.client("bob")
    yield alice, bob
    await alice.close()
    await bob.close()


async def assert_pair_unaffected(pair: tuple[Client, Client], text: str = "still fine") -> None:
    alice, bob = pair
    await alice.say(text)
    for client in (alice, bob):
        [frame] = await client.chat(1)
        assert frame["data"]["text"] == text


async def assert_one_warning(caplog: pytest.LogCaptureFixture, *needles: str) -> None:
    await wait_until(lambda: bool(warnings_about(caplog)))
    records = warnings_about(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    for needle in needles:
        assert needle in records[0].getMessage()


async def refused(client: Client, caplog: pytest.LogCaptureFixture, code: str) -> dict[str, Any]:
    """The error the client got; checks its shape and the single log line."""
    error = await client.error()
    assert error["code"] == code
    assert error["message"] and "Traceback" not in error["message"]
    assert error["timestamp"].endswith("+00:00")
    session = client.auth.get("sessionId", "")
    await assert_one_warning(caplog, code, session)
    return error


# error codes -----------------------------------------------------------------
@pytest.mark.parametrize("payload", ["{not json", "", "nul\x00l", '{"type": "message"'])
async def test_invalid_json(
    server: Server, pair: tuple[Client, Client], caplog: pytest.LogCaptureFixture, payload: str
) -> None:
    carol = await server.client("carol")
    caplog.clear()
    await carol.send_raw(payload)
    await refused(carol, caplog, "INVALID_JSON")
    await carol.still_works()
    await assert_pair_unaffected(pair)


async def test_invalid_utf8_is_invalid_json(
    server: Server, pair: tuple[Client, Client], caplog: pytest.LogCaptureFixture
) -> None:
    carol = await server.client("carol")
    caplog.clear()
    await carol.ws.send(b'{"type": "ping", "x": "\xff\xfe"}', text=True)
    await refused(carol, caplog, "INVALID_JSON")
    await carol.still_works()
    await assert_pair_unaffected(pair)


BAD_SHAPES: list[tuple[str, str]] = [
    ("not an object", "[1, 2, 3]"),
    ("a string", '"hello"'),
    ("no type", '{"data": {"text": "hi"}}'),
    ("type not a string", '{"type": 5}'),
    ("data not an object", '{"type": "message", "data": [1]}'),
    ("no text", '{"type": "message", "data": {}}'),
    ("text not a string", '{"type": "message", "data": {"text": 5}}'),
    ("empty text", '{"type": "message", "data": {"text": "   "}}'),
    ("lone surrogate", '{"type": "message", "data": {"text": "bad \\ud800 half"}}'),
    ("replyTo not an id", '{"type": "message", "data": {"text": "hi", "replyTo": "one"}}'),
    ("replyTo a bool", '{"type": "message", "data": {"text": "hi", "replyTo": true}}'),
    ("bad room", '{"type": "message", "data": {"text": "hi", "room": "no spaces allowed"}}'),
    ("client id an object", '{"type": "message", "data": {"text": "hi", "id": {"a": 1}}}'),
    ("mentions not a list", '{"type": "message", "data": {"text": "hi", "mentions": "alice"}}'),
    ("history limit too big", '{"type": "history", "data": {"limit": 500}}'),
    ("history before not an id", '{"type": "history", "data": {"before": "x"}}'),
    ("typing in a bad room", '{"type": "typing", "data": {"room": "../etc"}}'),
    ("second auth", '{"type": "auth", "data": {"userId": "carol"}}'),
]


@pytest.mark.parametrize(("case", "payload"), BAD_SHAPES, ids=[case for case, _ in BAD_SHAPES])
async def test_invalid_message(
    server: Server, pair: tuple[Client, Client], caplog: pytest.LogCaptureFixture, case: str, payload: str
) -> None:
    carol = await server.client("carol")
    caplog.clear()
    await carol.send_raw(payload)
    await refused(carol, caplog, "INVALID_MESSAGE")
    await carol.still_works()
    await assert_pair_unaffected(pair)
    assert server.hub.store.last_id == 1  # only the pair's message was stored


@pytest.mark.parametrize(
    "auth",
    [
        {"userId": 42},
        {"userId": "carol", "role": ["admin"]},
        {"userId": "carol", "lastSeenId": -1},
        {"userId": "carol", "lastSeenId": "7"},
    ],
)
async def test_auth_with_wrong_field_types_is_invalid_message(
    server: Server, pair: tuple[Client, Client], caplog: pytest.LogCaptureFixture, auth: dict[str, Any]
) -> None:
    carol = await server.client()
    caplog.clear()
    await carol.send("auth", auth)
    await refused(carol, caplog, "INVALID_MESSAGE")
    await carol.sign_in("carol")  # the connection stays usable
    await assert_pair_unaffected(pair)


async def test_unknown_type(server: Server, pair: tuple[Client, Client], caplog: pytest.LogCaptureFixture) -> None:
    carol = await server.client("carol")
    caplog.clear()
    await carol.send("dance", {"style": "waltz"})
    error = await refused(carol, caplog, "UNKNOWN_TYPE")
    assert "auth, message, ping, typing, history, edit, delete and react" in error["message"]
    await carol.still_works()
    await assert_pair_unaffected(pair)


@pytest.mark.parametrize("data", [None, {}, {"userId": ""}, {"userId": None, "role": "dev"}])
async def test_missing_user_id(
    server: Server, pair: tuple[Client, Client], caplog: pytest.LogCaptureFixture, data: dict[str, Any] | None
) -> None:
    carol = await server.client()
    caplog.clear()
    await carol.send("auth", data)
    await refused(carol, caplog, "MISSING_USER_ID")
    await carol.sign_in("carol")
    await assert_pair_unaffected(pair)


async def test_auth_failed_for_a_user_id_that_is_not_allowed(
    server: Server, pair: tuple[Client, Client], caplog: pytest.LogCaptureFixture
) -> None:
    carol = await server.client()
    caplog.clear()
    await carol.send("auth", {"userId": "carol with spaces"})
    await refused(carol, caplog, "AUTH_FAILED")
    await carol.sign_in("carol")
    await assert_pair_unaffected(pair)


async def test_auth_failed_for_a_wrong_token(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.isolated(
        db=":memory:", auth={"mode": "token", "tokens": {"s3cret": {"userId": "alice", "role": "lead"}}}
    )
    async with running(settings=settings) as server:
        client = await server.client()
        caplog.clear()
        await client.send("auth", {"userId": "alice", "token": "guess"})
        error = await refused(client, caplog, "AUTH_FAILED")
        assert "token" in error["message"]
        await client.send("auth", {"userId": "alice"})
        await refused_again(client, "AUTH_FAILED")
        # The right token signs in, with the role the token grants.
        auth = await client.sign_in("alice", token="s3cret", role="admin")
        assert auth["userId"] == "alice" and auth["role"] == "lead"
        await client.close()


async def refused_again(client: Client, code: str) -> None:
    assert (await client.error())["code"] == code


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "message", "data": {"text": "let me in"}},
        {"type": "typing"},
        {"type": "history", "data": {}},
        {"type": "whatever"},
    ],
)
async def test_not_authenticated(
    server: Server, pair: tuple[Client, Client], caplog: pytest.LogCaptureFixture, frame: dict[str, Any]
) -> None:
    stranger = await server.client()
    await stranger.still_works()  # ping is allowed before auth
    caplog.clear()
    await stranger.send_raw(json.dumps(frame))
    await refused(stranger, caplog, "NOT_AUTHENTICATED")
    await assert_pair_unaffected(pair)
    assert server.hub.store.last_id == 1
    assert not any(f["type"] == "message" for f in stranger.received)


async def test_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.isolated(db=":memory:", rate_limit={"burst": 1, "per_second": 0.5})
    async with running(settings=settings) as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        await alice.say("one")
        await alice.chat(1)
        await bob.chat(1)
        caplog.clear()
        await alice.say("two")
        error = await refused(alice, caplog, "RATE_LIMITED")
        assert error["retryAfter"] == pytest.approx(2.0)
        await bob.say("bob is not limited")
        for client in (alice, bob):
            [frame] = await client.chat(1)
            assert frame["data"]["text"] == "bob is not limited"
        await alice.close()
        await bob.close()


async def test_message_too_large(server: Server, pair: tuple[Client, Client], caplog: pytest.LogCaptureFixture) -> None:
    carol = await server.client("carol")
    caplog.clear()
    await carol.say("x" * 101)
    error = await refused(carol, caplog, "MESSAGE_TOO_LARGE")
    assert "100" in error["message"]
    await carol.say("y" * 100)  # exactly the limit is fine
    for client in (carol, *pair):
        [frame] = await client.chat(1)
        assert frame["data"]["text"] == "y" * 100
    await assert_pair_unaffected(pair)


class Exploding:
    """A parser plugin with a bug that shows on one word."""

    @hookimpl(tryfirst=True)
    def parse_message(self, text: str) -> None:
        if "boom" in text:
            raise RuntimeError("secret internal detail /etc/passwd")


async def test_internal_error_says_only_that(caplog: pytest.LogCaptureFixture) -> None:
    async with running(plugins=[Exploding()]) as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        caplog.clear()
        await alice.say("boom")
        error = await alice.error()
        assert error["code"] == "INTERNAL_ERROR"
        assert "secret" not in error["message"] and "RuntimeError" not in error["message"]
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "chatbus.transports.websocket"]
        assert len(errors) == 1 and errors[0].exc_info is not None
        assert alice.auth["sessionId"] in errors[0].getMessage()
        await assert_pair_unaffected((alice, bob), "after the bug")
        assert server.hub.store.last_id == 1
        await alice.close()
        await bob.close()


# close codes -------------------------------------------------------------------
async def test_binary_frame_closes_1003(
    server: Server, pair: tuple[Client, Client], caplog: pytest.LogCaptureFixture
) -> None:
    carol = await server.client("carol")
    caplog.clear()
    await carol.send_raw(b"\x00\x01binary")
    code, reason = await carol.closed()
    assert code == 1003 and reason and "binary" in reason.lower()
    await assert_one_warning(caplog, carol.auth["sessionId"], "binary")
    await assert_pair_unaffected(pair)


async def test_binary_frame_before_auth_closes_1003(server: Server, pair: tuple[Client, Client]) -> None:
    stranger = await server.client()
    await stranger.send_raw(b"\xff" * 10)
    assert (await stranger.closed())[0] == 1003
    await assert_pair_unaffected(pair)


async def test_frame_over_the_limit_closes_1009(
    server: Server, pair: tuple[Client, Client], caplog: pytest.LogCaptureFixture
) -> None:
    carol = await server.client("carol")
    caplog.clear()
    await carol.say("z" * 5000)  # over max_frame_bytes=4096
    code, _ = await carol.closed()
    assert code == 1009
    await assert_one_warning(caplog, carol.auth["sessionId"], "1009")
    await assert_pair_unaffected(pair)
    assert server.hub.store.last_id == 1


async def test_no_auth_in_time_closes_1008(caplog: pytest.LogCaptureFixture) -> None:
    async with running(auth_timeout=0.3) as server:
        alice = await server.client("alice")
        idle, noisy = await server.client(), await server.client()
        caplog.clear()
        await noisy.send("message", {"text": "not signed in"})
        assert (await noisy.error())["code"] == "NOT_AUTHENTICATED"
        for client in (idle, noisy):
            code, reason = await client.closed(timeout=3)
            assert code == 1008
            assert reason and "auth" in reason
        assert len(warnings_about(caplog, "auth_timeout")) == 2
        # The signed-in user is not subject to the timeout.
        await alice.still_works()
        await alice.close()


async def test_connections_beyond_the_maximum_close_1013(
    server: Server, pair: tuple[Client, Client], caplog: pytest.LogCaptureFixture
) -> None:
    extra = [await server.client(f"user{i}") for i in range(3)]  # 5 open with the pair
    caplog.clear()
    one_too_many = await server.client()
    code, reason = await one_too_many.closed()
    assert code == 1013 and reason and "full" in reason
    await assert_one_warning(caplog, "max_connections")
    await assert_pair_unaffected(pair)
    await extra[0].close()
    # Room again once someone leaves.
    await wait_until(lambda: server.transport.info()["connections"] == 4)
    late = await server.client()
    await late.sign_in("late")
    for client in (*extra[1:], late):
        await client.close()


async def test_stop_closes_clients_with_1001() -> None:
    async with running() as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        await alice.say("before stop")
        await bob.chat(1)
        await server.hub.stop()
        for client in (alice, bob):
            code, _ = await client.closed()
            assert code == 1001


# the Origin check --------------------------------------------------------------
async def test_other_origins_are_refused_with_403(caplog: pytest.LogCaptureFixture) -> None:
    async with running(allowed_origins="https://chat.example.org") as server:
        caplog.clear()
        with pytest.raises(InvalidStatus) as refused_handshake:
            await Client.open(server.url, origin="https://evil.example.com")
        assert refused_handshake.value.response.status_code == 403
        await assert_one_warning(caplog, "evil.example.com")
        # Same origin, no origin, and the configured origin are let in.
        for origin in (f"http://127.0.0.1:{server.port}", None, "https://chat.example.org"):
            client = await Client.open(server.url, origin=origin)
            await client.sign_in("alice")
            await client.close()


async def test_any_origin_when_configured_with_a_star() -> None:
    async with running(allowed_origins=["*"]) as server:
        client = await Client.open(server.url, origin="https://anywhere.example.net")
        await client.sign_in("alice")
        await client.close()
