"""Both transports at once: the web chat and a Telegram group as one conversation.

A real WebSocket client on the real WebSocket transport, the real Telegram
transport against the fake Bot API, and the built-in agents plugin answering.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from chatbus import Hub, MemoryStore, Settings
from chatbus.testing import FakeClock
from chatbus.transports.telegram import TelegramTransport
from chatbus.transports.websocket import WebSocketTransport

from .conftest import CHAT, telegram_options
from .fakebot import FakeBotAPI

TIMEOUT = 10.0
Frame = dict[str, Any]


class WebClient:
    """A browser's side of the chat, spoken with a real ``websockets`` client."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[Frame] = []

    @classmethod
    async def join(cls, port: int, user: str) -> WebClient:
        client = cls(await connect(f"ws://127.0.0.1:{port}/", open_timeout=TIMEOUT))
        await client.ws.send(json.dumps({"type": "auth", "data": {"userId": user}}))
        answer = await client.wait_for(lambda f: f["type"] in ("auth_response", "error"))
        assert answer["type"] == "auth_response", answer
        return client

    async def say(self, text: str, **data: Any) -> None:
        await self.ws.send(json.dumps({"type": "message", "data": {"text": text, **data}}))

    def found(self, predicate: Callable[[Frame], bool]) -> list[Frame]:
        return [frame for frame in self.frames if predicate(frame)]

    async def wait_for(self, predicate: Callable[[Frame], bool], timeout: float = TIMEOUT) -> Frame:
        """The first frame (seen before or arriving now) that matches."""
        async with asyncio.timeout(timeout):
            while not self.found(predicate):
                self.frames.append(json.loads(await self.ws.recv()))
        return self.found(predicate)[0]

    async def close(self) -> None:
        await self.ws.close()


def chat_message(text: str) -> Callable[[Frame], bool]:
    return lambda f: f["type"] in ("message", "agent_response") and f["data"]["text"] == text


async def test_the_web_chat_and_telegram_are_one_conversation_with_an_agent_answering(api: FakeBotAPI) -> None:
    web_transport = WebSocketTransport({"host": "127.0.0.1", "port": 0})
    telegram = TelegramTransport(telegram_options(api))
    hub = Hub(
        Settings.isolated(db=":memory:"),
        store=MemoryStore(),
        transports=[web_transport, telegram],
        load_entrypoints=False,
        clock=FakeClock(),
    )
    async with hub:
        await hub.hire("coder", "developer")
        ana = await WebClient.join(web_transport.port, "ana")
        try:
            # The web side speaks: the Telegram group sees it with the sender in bold.
            await ana.say("hello Telegram <3")
            [relayed] = await api.wait_sent(1)
            assert relayed.text == "ana: hello Telegram <3" and relayed.bold() == ["ana"]

            # The Telegram side speaks: the web chat sees who, and that it came from Telegram.
            api.post(CHAT, "hi web folks", user=api.user(42, username="alice", first_name="Alice"))
            frame = await ana.wait_for(chat_message("hi web folks"))
            assert frame["type"] == "message"
            assert frame["data"]["sender"] == "tg:42"
            assert frame["data"]["transport"] == "telegram"

            # Telegram asks the agent: it answers once, and both sides see the answer.
            asked = api.post(CHAT, "@coder hello", user=api.user(42, username="alice"))
            question = await ana.wait_for(chat_message("@coder hello"))
            answer = await ana.wait_for(lambda f: f["type"] == "agent_response" and f["data"]["sender"] == "coder")
            assert answer["data"]["replyTo"] == question["data"]["id"]
            await api.wait_for(lambda: any(s.text.startswith("coder: ") for s in api.sent))
            [from_agent] = [s for s in api.sent if s.text.startswith("coder: ")]
            assert from_agent.text == "coder: " + answer["data"]["text"]
            assert from_agent.reply_to == asked["message_id"]

            # The web asks the agent: again one answer, seen on both sides.
            await ana.say("@coder hello from the web")
            mine = await ana.wait_for(chat_message("@coder hello from the web"))
            second = await ana.wait_for(
                lambda f: f["type"] == "agent_response" and f["data"]["replyTo"] == mine["data"]["id"]
            )
            await api.wait_for(lambda: sum(s.text.startswith("coder: ") for s in api.sent) == 2)
            question_in_telegram = next(s for s in api.sent if s.text == "ana: @coder hello from the web")
            answer_in_telegram = [s for s in api.sent if s.text.startswith("coder: ")][1]
            assert answer_in_telegram.text == "coder: " + second["data"]["text"]
            assert answer_in_telegram.reply_to == question_in_telegram.message_id

            # Each answer exactly once on each side, and no echo of Telegram's own words.
            await ana.say("done")
            await ana.wait_for(chat_message("done"))
            await api.wait_for(lambda: any(s.text == "ana: done" for s in api.sent))
            assert len(ana.found(lambda f: f["type"] == "agent_response" and f["data"]["sender"] == "coder")) == 2
            assert sum(s.text.startswith("coder: ") for s in api.sent) == 2
            assert not any(s.text.startswith(("alice: ", "tg:42: ")) for s in api.sent)
        finally:
            await ana.close()
