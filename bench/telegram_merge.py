"""Telegram flood limit benchmark: how far a 200-message burst falls behind in a group.

    .venv/bin/python bench/telegram_merge.py              # 200 messages, time 20x faster (about a minute)
    .venv/bin/python bench/telegram_merge.py --speed 60   # quicker, coarser

Telegram lets a bot post about 20 messages a minute to one group. When agents
and the web chat say more than that, what waits for the group falls behind.
This runs the real Telegram transport against the test suite's fake Bot API,
which enforces a per-chat flood limit like Telegram's (a burst of 20, then one
every 3 s, 429 with ``retry_after`` beyond it), and sends a burst of messages
from three agents through the hub twice in the same run: once with merging
off (``telegram.merge = false``, one Telegram message per hub message, as
before) and once with it on (messages waiting for the chat merged, each line
naming its sender). Time runs ``--speed`` times faster than Telegram's (the
fake's window and the period of the transport's group rate are shortened
alike; Telegram's ``retry_after`` stays whole seconds of the faster time, so
each 429 costs ``--speed`` real seconds), and every figure is given in
Telegram's real seconds.

Printed per setting: Telegram messages sent, 429 answers, the lag of the last
message (from the burst's start to the moment it shows in the group), the
median lag, and every line's presence in order; then the ratio of the lags
(merging off / on), which is what to compare across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatbus import Hub, MemoryStore, Settings
from chatbus.testing import FakeClock
from chatbus.transports.telegram import TelegramTransport, calls
from tests.transports.telegram.fakebot import FakeBotAPI

CHAT = -1001234567890
SENDERS = ("coder", "reviewer", "system")
#: Telegram's limit for one group: this many messages a minute.
GROUP_RATE = 20


async def run(count: int, speed: float, *, merge: bool) -> dict[str, Any]:
    """Send ``count`` messages at once and time when each shows in the group (in Telegram's seconds)."""
    api = FakeBotAPI()
    api.add_chat(CHAT, "Team")
    api.flood_limit = (GROUP_RATE, 60.0 / speed)
    calls.GROUP_PERIOD = 60.0 / speed  # the transport counts its group rate in the same faster time
    async with api:
        telegram = TelegramTransport(
            {
                "token": api.token,
                "chat_ids": str(CHAT),
                "base_url": api.base_url,
                "poll_timeout": 1,
                "group_rate": GROUP_RATE,
                "merge": merge,
                "retry_initial_delay": 0.05,
                "retry_max_delay": 0.2,
            }
        )
        hub = Hub(
            Settings.isolated(db=":memory:"),
            store=MemoryStore(),
            transports=[telegram],
            load_entrypoints=False,
            clock=FakeClock(),
        )
        async with hub:
            for agent in SENDERS[:2]:
                await hub.hire(agent, "developer")
            await api.wait_for(lambda: bool(api.calls_of("getUpdates")))
            lines = [f"{SENDERS[n % 3]}: step {n:03d} done" for n in range(count)]
            start = time.monotonic()
            for n in range(count):
                await hub.send(f"step {n:03d} done", sender=SENDERS[n % 3])
            await api.wait_for(lambda: sum(s.text.count("\n") + 1 for s in api.sent) >= count, timeout=3600)
        shown_at: dict[str, float] = {}
        for sent in api.sent:
            for line in sent.text.split("\n"):
                shown_at.setdefault(line, sent.at)
        shown = [line for sent in api.sent for line in sent.text.split("\n")]
        lags = [(shown_at[line] - start) * speed for line in lines]
        return {
            "telegram_messages": len(api.sent),
            "flood_waits": sum(call.status == 429 for call in api.calls_of("sendMessage")),
            "last_lag": max(lags),
            "median_lag": statistics.median(lags),
            "complete_in_order": shown == lines,
        }


def table(results: dict[str, dict[str, Any]], count: int) -> str:
    rows = [
        f"burst of {count} messages to one group (Telegram: {GROUP_RATE} messages/minute), seconds in real time",
        f"{'setting':<14}{'sent':>6}{'429s':>6}{'last lag':>11}{'median lag':>12}  all lines, in order",
    ]
    for name, figures in results.items():
        rows.append(
            f"{name:<14}{figures['telegram_messages']:>6}{figures['flood_waits']:>6}"
            f"{figures['last_lag']:>10.1f}s{figures['median_lag']:>11.1f}s  {figures['complete_in_order']}"
        )
    before, after = results["merge off"], results["merge on"]
    rows.append(
        f"merge off / merge on: last lag x{before['last_lag'] / max(after['last_lag'], 0.001):.1f}, "
        f"median lag x{before['median_lag'] / max(after['median_lag'], 0.001):.1f}, "
        f"Telegram messages x{before['telegram_messages'] / after['telegram_messages']:.1f}"
    )
    return "\n".join(rows)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="messages in the burst (default 200)")
    parser.add_argument("--speed", type=float, default=20.0, help="how much faster than Telegram time runs")
    args = parser.parse_args()
    results = {
        "merge off": await run(args.count, args.speed, merge=False),
        "merge on": await run(args.count, args.speed, merge=True),
    }
    print(table(results, args.count))


if __name__ == "__main__":
    asyncio.run(main())
