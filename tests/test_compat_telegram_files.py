"""Files through the CommunicationManager facade when it runs the Telegram
transport: real python-telegram-bot against the fake Bot API."""

from __future__ import annotations

import asyncio
import io
import threading
from pathlib import Path

from PIL import Image

from chatbus import Settings
from chatbus.compat import CommunicationManager, CompatMessage
from tests.transports.telegram.conftest import CHAT, telegram_options
from tests.transports.telegram.fakebot import FakeBotAPI

ALICE = FakeBotAPI.user(42, username="alice", first_name="Alice")


def picture() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), "teal").save(out, "PNG")
    return out.getvalue()


async def test_files_go_to_telegram_natively_and_come_back_to_handlers(tmp_path: Path) -> None:
    chart = tmp_path / "chart.png"
    chart.write_bytes(picture())
    received: list[CompatMessage] = []
    arrived = threading.Event()

    def handler(message: CompatMessage) -> None:
        received.append(message)
        arrived.set()

    async with FakeBotAPI() as api:
        api.add_chat(CHAT, "Team")
        settings = Settings.isolated(db=str(tmp_path / "chat.db"), telegram=telegram_options(api))
        comm = CommunicationManager("telegram", settings=settings)
        comm.add_message_handler(handler)
        await asyncio.to_thread(comm.start_polling)
        try:
            assert await asyncio.to_thread(comm.send_message, "the chart", "helper", None, [chart])
            [sent] = await api.wait_sent(1)
            assert (sent.kind, sent.text) == ("photo", "helper: the chart")
            assert [(f.filename, f.data) for f in sent.files] == [("chart.png", chart.read_bytes())]
            api.post_media(CHAT, "document", b"a,b\n1,2\n", user=ALICE, caption="the numbers",
                           file_name="numbers.csv", mime_type="text/csv")  # fmt: skip
            assert await asyncio.to_thread(arrived.wait, 10)
            (message,) = received
            assert (message.text, message.sender, message.transport) == ("the numbers", "tg:42", "telegram")
            assert [a.name for a in message.attachments] == ["numbers.csv"]
            assert await asyncio.to_thread(comm.read_file, message.attachments[0]) == b"a,b\n1,2\n"
        finally:
            await asyncio.to_thread(comm.stop_polling)
