"""Talking with an agent that has a model, end to end: a real WebSocket client and
python-telegram-bot against the fake Bot API, the agents plugin, the chat brain
and the deterministic test models of ``llm_models`` (never the network)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chatbus import Settings, SQLiteStore
from tests.plugins.agents.test_websocket import COMMAND
from tests.transports.telegram.conftest import CHAT, api, build_hub
from tests.transports.telegram.fakebot import FakeBotAPI
from tests.transports.websocket.helpers import Client, running

from . import llm_models as models
from .llm_models import SECRET, Prompted, llm_models

__all__ = ["api", "llm_models"]

TIMEOUT = 10.0


def agent_settings(**agents: Any) -> Settings:
    options = {"stream_interval": 0.05, "answer_timeout": 10, "roster_refresh": 5, **agents}
    return Settings.isolated(db=":memory:", agents=options)


async def frames_until(client: Client, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """Every frame up to and including the first that matches ``predicate``."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(TIMEOUT):
        while True:
            frames.append(await client.recv(TIMEOUT))
            if predicate(frames[-1]):
                return frames


async def say(client: Client, text: str) -> int:
    await client.say(text)
    frames = await frames_until(client, lambda f: f["type"] == "message" and f["data"]["text"] == text)
    return int(frames[-1]["data"]["id"])


async def answer_to(client: Client, asked: int, sender: str = "alice") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The agent's answer to message ``asked`` as first posted, and every edit of it up to the final one."""
    frames = await frames_until(
        client,
        lambda f: f["type"] == "agent_response" and f["data"]["replyTo"] == asked and f["data"]["sender"] == sender,
    )
    posted = frames[-1]["data"]
    if not posted.get("streaming"):
        return posted, []
    frames = await frames_until(
        client,
        lambda f: f["type"] == "message_edited" and f["data"]["id"] == posted["id"] and not f["data"]["streaming"],
    )
    return posted, [f["data"] for f in frames if f["type"] == "message_edited" and f["data"]["id"] == posted["id"]]


async def test_a_question_is_answered_by_the_model_streaming_over_the_websocket(
    llm_models: list[Prompted],
) -> None:
    async with running(settings=agent_settings()) as server:
        await server.hub.hire("alice", "release manager", model="chatbus-echo")
        dave = await server.client("dave")
        carol = await server.client("carol")
        await say(dave, "The release train leaves on Thursdays at 10.")
        asked = await say(carol, "@alice when does the release train leave?")
        posted, edits = await answer_to(carol, asked)
        assert posted["streaming"] is True and posted["sender"] == "alice" and posted["text"] == "…"
        assert len(edits) >= 3 and all(e["streaming"] for e in edits[:-1]) and edits[-1]["streaming"] is False
        final = edits[-1]["text"]
        assert "dave: The release train leaves on Thursdays at 10." in final  # the context reached the model
        assert final.endswith("carol says to you:\n@alice when does the release train leave?")
        prompted = llm_models[-1]
        assert "dave: The release train leaves on Thursdays at 10." in prompted.prompt
        assert "Your role in the team: release manager." in prompted.system
        stored = await server.hub.store.get(posted["id"])
        assert stored is not None and stored.text == final and not stored.streaming
        history = await server.client("erin")
        await history.send("history", {"limit": 10})
        frames = await frames_until(history, lambda f: f["type"] == "history")
        (kept,) = [m["data"] for m in frames[-1]["data"]["messages"] if m["data"]["id"] == posted["id"]]
        assert kept["text"] == final and "streaming" not in kept
        for client in (dave, carol, history):
            await client.close()


async def test_a_model_that_fails_answers_in_words_over_the_websocket(llm_models: list[Prompted]) -> None:
    async with running(settings=agent_settings()) as server:
        await server.hub.hire("alice", "developer", model="chatbus-broken")
        carol = await server.client("carol")
        asked = await say(carol, "@alice what do you think of the new logo?")
        _posted, edits = await answer_to(carol, asked)
        assert edits[-1]["streaming"] is False
        assert 'Sorry, I couldn\'t answer: my model "chatbus-broken" failed' in edits[-1]["text"]
        assert all(SECRET not in e["text"] for e in edits)
        await carol.close()


async def test_an_agent_without_a_model_keeps_its_built_in_texts(llm_models: list[Prompted]) -> None:
    async with running(settings=agent_settings()) as server:
        await server.hub.hire("alice", "developer")
        carol = await server.client("carol")
        asked = await say(carol, "@alice the coffee machine is broken")
        posted, edits = await answer_to(carol, asked)
        assert posted["text"].startswith("I'm not sure what you need, carol.") and edits == []
        asked = await say(carol, "@alice what is the capital of France?")
        posted, edits = await answer_to(carol, asked)
        assert posted["text"].startswith("I can't answer questions, carol: I have no language model.")
        assert "/hire alice developer --model MODEL" in posted["text"] and edits == []
        assert llm_models == []
        await carol.close()


async def test_a_task_for_an_agent_with_a_model_is_still_work_not_talk(llm_models: list[Prompted]) -> None:
    async with running(settings=agent_settings()) as server:
        await server.hub.hire("alice", "developer", COMMAND, model="chatbus-echo")
        carol = await server.client("carol", role="developer")
        asked = await say(carol, "@alice please fix my tests")
        posted, _edits = await answer_to(carol, asked)
        assert posted["text"] == "Got it! I'll fix your tests."
        await frames_until(carol, lambda f: f["type"] == "agent_response" and f["data"]["text"].startswith("✅"))
        assert llm_models == []
        await carol.close()


async def test_a_question_from_telegram_is_answered_there_edited_in_place(
    api: FakeBotAPI, llm_models: list[Prompted], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "DELAY", 0.05)
    settings = Settings.isolated(db=":memory:", max_text_length=20_000, agents={"stream_interval": 0.05})
    hub, _web, _telegram = build_hub(api, settings=settings, edit_interval=0.5)
    async with hub:
        await hub.hire("alice", "developer", model="chatbus-echo")
        api.post(CHAT, "The staging database is called pelican.", user=api.user(41, first_name="Dora"))
        api.post(CHAT, "@alice what is the staging database called?", user=api.user(42, first_name="Ana"))
        await api.wait_for(lambda: any(s.text.startswith("alice: ") for s in api.sent), TIMEOUT)
        (answer,) = [s for s in api.sent if s.text.startswith("alice: ")]
        await api.wait_for(lambda: answer.text.endswith("@alice what is the staging database called?"), TIMEOUT)
        assert "Dora: The staging database is called pelican." in answer.text
        edits = [c for c in api.calls_of("editMessageText") if int(c.params["message_id"]) == answer.message_id]
        assert 1 <= len(edits) <= 5  # about 25 chunks in 1.3 seconds, at most one edit every half second
        assert all(later.at - earlier.at >= 0.45 for earlier, later in itertools.pairwise(edits))


async def test_a_request_that_asks_for_no_work_is_a_question_for_the_model(llm_models: list[Prompted]) -> None:
    async with running(settings=agent_settings()) as server:
        await server.hub.hire("alice", "developer", model="chatbus-echo")
        carol = await server.client("carol", role="developer")
        asked = await say(carol, "@alice can you explain how the cache is invalidated?")
        posted, edits = await answer_to(carol, asked)
        assert posted["streaming"] is True and edits[-1]["text"].endswith("how the cache is invalidated?")
        assert server.hub.agents["alice"].status == "idle"  # no task was started
        await carol.close()


async def test_an_answer_cut_off_by_a_restart_is_ended_when_the_server_is_back(
    tmp_path: Path, llm_models: list[Prompted]
) -> None:
    db = str(tmp_path / "chat.db")
    settings = Settings.isolated(db=db, agents={"stream_interval": 0.05, "answer_timeout": 60})
    async with running(settings=settings, store=SQLiteStore(db)) as server:
        await server.hub.hire("alice", "developer", model="chatbus-silent")
        carol = await server.client("carol")
        asked = await say(carol, "@alice are you thinking hard?")
        frames = await frames_until(carol, lambda f: f["type"] == "agent_response" and f["data"]["replyTo"] == asked)
        posted = frames[-1]["data"]
        assert posted["streaming"] is True
        await carol.close()
        await server.hub.stop(timeout=1)  # while the model is still thinking
    async with running(settings=settings, store=SQLiteStore(db)) as server:
        erin = await server.client("erin")
        for _ in range(100):
            await erin.send("history", {"limit": 10})
            frames = await frames_until(erin, lambda f: f["type"] == "history")
            (kept,) = [m["data"] for m in frames[-1]["data"]["messages"] if m["data"]["id"] == posted["id"]]
            if not kept.get("streaming"):
                break
            await asyncio.sleep(0.05)
        assert "streaming" not in kept
        assert kept["text"] == "⚠️ Cut off: the server stopped while this was being written."
        await erin.close()


async def test_hire_with_a_model_llm_does_not_know_warns_the_manager(llm_models: list[Prompted]) -> None:
    async with running() as server:
        boss = await server.client("boss", role="manager")
        for text, expected in (
            ("/hire eve writer --model no-such-model", "Hired eve as writer. Note: llm on this server knows no model"),
            ("/hire eve writer --model chatbus-echo", "eve is now writer."),
        ):
            await boss.send("message", {"text": text})
            said = await system_answer(boss)
            assert said.startswith(expected), said
            assert "Note" not in said or "no-such-model" in said
        await boss.close()


async def system_answer(client: Client) -> str:
    while True:
        frame = await client.recv()
        if frame["type"] == "agent_response" and frame["data"]["sender"] == "system":
            return str(frame["data"]["text"])
