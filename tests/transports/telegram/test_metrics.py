"""Bot API calls and retries in the hub's metrics, as an operator's dashboard reads them."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import build_hub
from .fakebot import FakeBotAPI

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def counts(exposition: bytes, name: str) -> dict[tuple[str, ...], float]:
    """The samples of ``name`` by their label values, read with prometheus_client's parser."""
    found: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(exposition.decode()):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sample.labels.values())] = sample.value
    return found


async def test_calls_and_retries_are_counted_and_the_token_stays_out(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        api.fail("sendMessage", status=500, times=2)
        await web.say("ana", "through a rough patch")
        await api.wait_sent(1)
        async with asyncio.timeout(5):  # the answer reaches the bot just after the fake API counted it
            while ("sendMessage", "ok") not in counts(hub.metrics.exposition(), "chatbus_telegram_api_calls_total"):
                await asyncio.sleep(0.01)
        exposition = hub.metrics.exposition()
    calls = counts(exposition, "chatbus_telegram_api_calls_total")
    assert calls[("sendMessage", "500")] == 2
    assert calls[("sendMessage", "ok")] == 1
    assert calls[("getMe", "ok")] >= 1
    assert counts(exposition, "chatbus_telegram_retries_total")[("unreachable",)] == 2
    assert api.token.encode() not in exposition
