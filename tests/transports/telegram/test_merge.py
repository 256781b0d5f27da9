"""A chat held back by Telegram's flood limit gets the messages waiting for it merged, in order."""

from __future__ import annotations

import pytest

from chatbus.transports.telegram.formatting import Rendered
from chatbus.transports.telegram.merge import External, external_id, fits, merged, parse_external

from .conftest import build_hub
from .fakebot import FakeBotAPI

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

SENDERS = ("coder", "reviewer", "system")


async def burst(hub: object, count: int) -> list[str]:
    """``count`` messages from agents and the system at once; their lines as Telegram shows them."""
    from chatbus import Hub

    assert isinstance(hub, Hub)
    lines = []
    for n in range(count):
        sender = SENDERS[n % len(SENDERS)]
        await hub.send(f"step {n:03d} done", sender=sender)
        lines.append(f"{sender}: step {n:03d} done")
    return lines


def shown_lines(api: FakeBotAPI) -> list[str]:
    return [line for sent in api.sent for line in sent.text.split("\n")]


async def test_messages_waiting_for_the_group_rate_are_merged_each_sender_named_in_order(api: FakeBotAPI) -> None:
    api.flood_limit = (20, 60.0)  # Telegram: about 20 messages a minute to one group
    hub, _web, _telegram = build_hub(api, group_rate=20)
    async with hub:
        await hub.hire("coder", "developer")
        await hub.hire("reviewer", "developer")
        lines = await burst(hub, 60)
        await api.wait_for(lambda: len(shown_lines(api)) >= 60, timeout=20)
        assert shown_lines(api) == lines  # every message, each naming its sender, in order
        assert len(api.sent) < 25  # 20 on their own, the rest merged instead of 40 more minutes
        merged_one = next(s for s in api.sent if "\n" in s.text)
        assert all(bold in merged_one.bold() for bold in ("coder", "reviewer", "system"))


async def test_a_flood_wait_from_telegram_merges_what_waits_meanwhile(api: FakeBotAPI) -> None:
    api.flood_limit = (3, 1.0)
    hub, web, _telegram = build_hub(api, group_rate=0)  # only Telegram's 429 holds the chat back
    async with hub:
        for n in range(12):
            await web.say(f"person{n}", f"hello {n}")
        await api.wait_for(lambda: len(shown_lines(api)) >= 12, timeout=20)
        assert shown_lines(api) == [f"person{n}: hello {n}" for n in range(12)]
        assert 429 in [call.status for call in api.calls_of("sendMessage")]
        assert len(api.sent) < 12


async def test_without_a_backlog_nothing_is_merged(api: FakeBotAPI) -> None:
    hub, web, _telegram = build_hub(api)
    async with hub:
        for n in range(5):
            await web.say("ana", f"one by one {n}")
            await api.wait_sent(n + 1)
        assert [s.text for s in api.sent] == [f"ana: one by one {n}" for n in range(5)]


async def test_merging_can_be_switched_off(api: FakeBotAPI) -> None:
    api.flood_limit = (3, 1.0)
    hub, web, _telegram = build_hub(api, group_rate=0, merge=False)
    async with hub:
        for n in range(6):
            await web.say(f"person{n}", f"hello {n}")
        sent = await api.wait_sent(6, timeout=20)
        assert [s.text for s in sent] == [f"person{n}: hello {n}" for n in range(6)]


def test_external_ids_of_merged_messages_read_back() -> None:
    assert external_id(-100, 7) == "-100:7"
    assert external_id(-100, 7, 3) == "-100:7#3"
    assert parse_external("-100:7#3") == External("-100", 7, 3)
    assert parse_external("-100:7") == External("-100", 7, 1)
    assert parse_external("@team:7") == External("@team", 7, 1)
    assert parse_external("nonsense") is None
    assert parse_external("-100:x") is None


def test_merged_messages_stay_within_one_telegram_message() -> None:
    line = Rendered("<b>a</b>: " + "x" * 2000, "a: " + "x" * 2000)
    assert fits([line, line])
    assert not fits([line, line, line])
    assert merged([line, line]).plain == f"{line.plain}\n{line.plain}"
