"""Every way a Bot API call fails maps to the one outcome the transport acts on.

The failures are made by python-telegram-bot itself: a real ``Bot`` whose
HTTP layer is an ``httpx.MockTransport``, so each exception (and the httpx
error under it) is exactly what the transport sees from Telegram or the
network, and no socket is opened.
"""

from __future__ import annotations

import datetime as dtm
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from telegram import Bot
from telegram.error import NetworkError, RetryAfter, TelegramError
from telegram.request import HTTPXRequest

from chatbus.transports.telegram.errors import Backoff, Failure, Outcome, classify

# RetryAfter reads its deprecated ``retry_after`` attribute when built.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

Answer = Callable[[httpx.Request], httpx.Response]


def error(status: int, description: str, **parameters: Any) -> Answer:
    """The Bot API answering ``status`` with its usual JSON error body."""
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return lambda _request: httpx.Response(status, json=body)


def raises(exc: Exception) -> Answer:
    """The network failing under python-telegram-bot with ``exc``."""

    def answer(request: httpx.Request) -> httpx.Response:
        raise exc

    return answer


async def failure_of(answer: Answer, text: str = "hello") -> Failure:
    """Send ``text`` through a bot whose every ``sendMessage`` gets ``answer``; classify what it raises."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/getMe"):
            me = {"id": 1, "is_bot": True, "first_name": "Relay", "username": "relay_bot"}
            return httpx.Response(200, json={"ok": True, "result": me})
        return answer(request)

    request = HTTPXRequest(httpx_kwargs={"transport": httpx.MockTransport(handler)})
    async with Bot("123:secret", request=request) as bot:
        with pytest.raises(TelegramError) as caught:
            await bot.send_message(chat_id=-100123, text=text)
    return classify(caught.value)


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (error(401, "Unauthorized"), Outcome.TOKEN_REJECTED),
        (error(404, "Not Found"), Outcome.TOKEN_REJECTED),  # a base_url without /bot
        (error(403, "Forbidden: bot was kicked from the supergroup chat"), Outcome.BOT_REMOVED),
        (error(403, "Forbidden: bot was blocked by the user"), Outcome.BOT_REMOVED),
        (error(400, "Bad Request: chat not found"), Outcome.CHAT_NOT_FOUND),
        (error(400, "Bad Request: group chat was deactivated"), Outcome.CHAT_CLOSED),
        (error(400, "Bad Request: not enough rights to send text messages to the chat"), Outcome.CHAT_CLOSED),
        (error(400, "Bad Request: CHAT_WRITE_FORBIDDEN"), Outcome.CHAT_CLOSED),
        (error(400, "Bad Request: have no rights to send a message"), Outcome.CHAT_CLOSED),
        (error(400, "Bad Request: bot is not a member of the channel chat"), Outcome.CHAT_CLOSED),
        (error(400, "Bad Request: PEER_ID_INVALID"), Outcome.CHAT_CLOSED),
        (error(400, "Bad Request: can't parse entities: unclosed start tag"), Outcome.BAD_MARKUP),
        (error(400, "Bad Request: message to be replied not found"), Outcome.BAD_REPLY),
        (error(400, "Bad Request: message is too long"), Outcome.REFUSED),
        (error(400, "Bad Request: message text is empty"), Outcome.REFUSED),
        (error(409, "Conflict: terminated by other getUpdates request"), Outcome.CONFLICT),
        (error(500, "Internal Server Error"), Outcome.UNREACHABLE),
        (error(502, "Bad Gateway"), Outcome.UNREACHABLE),
        (error(503, "Service Unavailable"), Outcome.UNREACHABLE),
        (lambda _request: httpx.Response(502, text="<html>proxy error</html>"), Outcome.UNREACHABLE),
        (lambda _request: httpx.Response(200, text="not json"), Outcome.UNREACHABLE),
        (raises(httpx.ConnectError("connection refused")), Outcome.UNREACHABLE),
        (raises(httpx.RemoteProtocolError("server disconnected")), Outcome.UNREACHABLE),
        (raises(httpx.ProxyError("proxy refused")), Outcome.UNREACHABLE),
        (raises(httpx.ReadTimeout("no answer")), Outcome.TIMED_OUT),
        (raises(httpx.ConnectTimeout("no answer")), Outcome.TIMED_OUT),
        (raises(httpx.PoolTimeout("all connections busy")), Outcome.TIMED_OUT),
        (raises(RuntimeError("a bug in the HTTP layer")), Outcome.BROKEN),
    ],
)
async def test_each_bot_api_failure_has_the_outcome_the_transport_acts_on(answer: Answer, outcome: Outcome) -> None:
    assert (await failure_of(answer)).outcome is outcome


async def test_a_flood_limit_says_how_long_to_wait() -> None:
    failure = await failure_of(error(429, "Too Many Requests: retry after 7", retry_after=7))
    assert failure.outcome is Outcome.FLOOD_WAIT
    assert failure.retry_after == 7.0


async def test_a_migrated_group_names_its_new_id() -> None:
    failure = await failure_of(
        error(400, "Bad Request: group chat was upgraded to a supergroup chat", migrate_to_chat_id=-1004242)
    )
    assert failure.outcome is Outcome.MIGRATED
    assert failure.new_chat_id == -1004242


async def test_a_text_no_wire_can_carry_is_broken_not_retried() -> None:
    failure = await failure_of(error(500, "never asked"), text="broken \ud800 surrogate")
    assert failure.outcome is Outcome.BROKEN


async def test_the_detail_is_telegrams_description() -> None:
    failure = await failure_of(error(403, "Forbidden: bot was kicked from the supergroup chat"))
    assert failure.detail == "Forbidden: bot was kicked from the supergroup chat"


def test_a_flood_wait_given_as_a_timedelta_is_read_in_seconds() -> None:
    failure = classify(RetryAfter(dtm.timedelta(seconds=90)))
    assert (failure.outcome, failure.retry_after) == (Outcome.FLOOD_WAIT, 90.0)


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (httpx.ConnectError("refused"), Outcome.UNREACHABLE),
        (httpx.ReadTimeout("slow"), Outcome.TIMED_OUT),
        (ConnectionResetError("reset by peer"), Outcome.UNREACHABLE),
        (NetworkError("no cause given"), Outcome.UNREACHABLE),
        (TelegramError("Invalid server response"), Outcome.UNREACHABLE),
        (ValueError("not a Bot API failure"), Outcome.BROKEN),
    ],
)
def test_httpx_and_network_errors_raised_directly(exc: Exception, outcome: Outcome) -> None:
    assert classify(exc).outcome is outcome


def test_a_network_error_keeps_its_cause_in_mind() -> None:
    def wrapped(cause: Exception) -> NetworkError:
        try:
            raise NetworkError(f"httpx.{type(cause).__name__}: {cause}") from cause
        except NetworkError as exc:
            return exc

    assert classify(wrapped(httpx.ConnectError("refused"))).outcome is Outcome.UNREACHABLE
    assert classify(wrapped(ValueError("unparsable JSON"))).outcome is Outcome.UNREACHABLE
    assert classify(wrapped(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates"))).outcome is Outcome.BROKEN
    assert classify(wrapped(TypeError("cannot encode"))).outcome is Outcome.BROKEN


def test_the_backoff_doubles_up_to_its_limit_and_starts_over() -> None:
    backoff = Backoff(1.0, 5.0)
    assert [backoff.next() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    backoff.reset()
    assert backoff.delay == 1.0
    assert backoff.next() == 1.0
