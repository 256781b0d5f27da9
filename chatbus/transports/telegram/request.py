"""python-telegram-bot's HTTP request, counted: every Bot API call by method and outcome.

The one place all of the bot's calls pass (python-telegram-bot's own retries
and rate limiter included), so ``chatbus_telegram_api_calls_total`` misses
none. Only the method name is kept from the URL (``download`` for a file):
the token in it never reaches a label.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter
from telegram.error import TimedOut
from telegram.request import HTTPXRequest, RequestData

__all__ = ["CountedRequest"]


class CountedRequest(HTTPXRequest):
    """An ``HTTPXRequest`` that counts each call in ``calls`` (labels: method, outcome)."""

    def __init__(self, *args: Any, calls: Counter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._calls = calls

    async def do_request(  # type: ignore[override]
        self, url: str, method: str, request_data: RequestData | None = None, **timeouts: Any
    ) -> tuple[int, bytes]:
        # A file download's address ends with the file's path: counted as one name, "download".
        name = "download" if "/file/bot" in url else url.rsplit("/", 1)[-1] or "unknown"
        try:
            code, payload = await super().do_request(url, method, request_data, **timeouts)
        except TimedOut:
            self._calls.labels(name, "timeout").inc()
            raise
        except Exception:
            self._calls.labels(name, "network_error").inc()
            raise
        self._calls.labels(name, "ok" if code == 200 else str(code)).inc()
        return code, payload
