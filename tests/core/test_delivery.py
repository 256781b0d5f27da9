"""Delivery to transports: in id order whatever order the commits finish in."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from chatbus import Message
from chatbus.core.delivery import Deliveries
from chatbus.testing import MemoryTransport


def message(number: int) -> Message:
    return Message(id=number, text=f"m{number}", sender="ann", timestamp=datetime.now(UTC))


async def test_messages_are_handed_on_in_id_order_and_a_failed_one_is_skipped() -> None:
    dispatched: list[int] = []
    deliveries = Deliveries(lambda m: dispatched.append(m.id))
    transport = MemoryTransport()
    deliveries.resume_after(10)
    deliveries.start([transport])
    deliveries.stored(message(13), True)
    deliveries.stored(message(12), False)  # its commit failed: nobody sees it
    assert dispatched == []  # 11 is not stored yet
    deliveries.stored(message(11), True)
    assert dispatched == [11, 13]
    await deliveries.drain(1.0)
    assert [m.id for m in transport.delivered] == [11, 13]
    await deliveries.stop()


class Failing(MemoryTransport):
    async def deliver(self, message: Message) -> None:
        raise RuntimeError("this transport is broken")


async def test_a_failing_transport_does_not_hold_up_another() -> None:
    deliveries = Deliveries(lambda m: None)
    healthy, broken = MemoryTransport("healthy"), Failing("broken")
    deliveries.resume_after(0)
    deliveries.start([broken, healthy])
    for number in (1, 2, 3):
        deliveries.stored(message(number), True)
    await asyncio.wait_for(deliveries.drain(1.0), 2.0)
    assert healthy.texts == ["m1", "m2", "m3"]
    await deliveries.stop()
