"""The chat brain on an in-memory hub: an agent with a model answers through llm,
with the room's recent conversation as context, streaming, and in words when the
model fails. The models are the deterministic ones of ``llm_models``."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import llm
import pytest

from chatbus import ConfigError, Hub, SQLiteStore
from chatbus.core.message import Agent, Message, MessageEdited
from chatbus.core.settings import Settings
from chatbus.plugins.agents.brain import BrainSettings, converse, finish_interrupted, model_of
from chatbus.testing import MemoryTransport, make_hub

from .llm_models import SECRET, Prompted, llm_models

__all__ = ["llm_models"]

FAST = {"stream_interval": 0.0, "answer_timeout": 10.0}


@pytest.fixture
async def chat() -> AsyncIterator[tuple[Hub, MemoryTransport]]:
    transport = MemoryTransport()
    settings = Settings.isolated(db=":memory:", plugins={"disable": ["agents", "ratelimit"]})
    hub = make_hub([], settings=settings, transports=[transport])
    await hub.start()
    yield hub, transport
    await hub.stop(timeout=5)


async def ask(
    chat: tuple[Hub, MemoryTransport], model: str | None, text: str, **settings: Any
) -> tuple[Agent, Message, list[Message]]:
    """Hire alice with ``model``, let carol say ``text``, and have alice converse about it;
    alice's answer as it was delivered and then edited, in order."""
    hub, transport = chat
    agent = await hub.hire("alice", "developer", model=model)
    asked = await transport.say("carol", text)
    answered = await converse(hub, agent, asked, BrainSettings(**{**FAST, **settings}))
    assert answered is (model is not None)
    return agent, asked, await answer_of(transport, "alice") if answered else []


async def answer_of(transport: MemoryTransport, sender: str) -> list[Message]:
    """``sender``'s answer as it was delivered and then edited, in order, once it is final."""
    posted = await transport.wait_for(lambda m: m.sender == sender)
    for _ in range(500):
        edits = [c.message for c in transport.changes if isinstance(c, MessageEdited) and c.message.id == posted.id]
        if edits and not edits[-1].streaming:
            return [posted, *edits]
        await asyncio.sleep(0.01)
    raise AssertionError(f"{sender}'s answer never became final: {[e.text for e in edits]}")


async def test_a_question_is_answered_with_the_earlier_conversation_as_context(
    chat: tuple[Hub, MemoryTransport], llm_models: list[Prompted]
) -> None:
    _hub, transport = chat
    await transport.say("dave", "The staging database is called pelican.")
    await transport.say("erin", "We deploy on Fridays at noon.")
    _agent, asked, versions = await ask(chat, "chatbus-echo", "@alice when do we deploy?")
    prompted = llm_models[-1]
    assert prompted.model == "chatbus-echo"
    assert "dave: The staging database is called pelican." in prompted.prompt
    assert "erin: We deploy on Fridays at noon." in prompted.prompt
    assert prompted.prompt.rstrip().endswith("carol says to you:\n@alice when do we deploy?")
    assert "You are alice" in prompted.system and "Your role in the team: developer." in prompted.system
    final = versions[-1]
    assert final.streaming is False and final.reply_to == asked.id and final.sender == "alice"
    assert "Fridays at noon" in final.text and final.text.startswith("I read: ")


async def test_the_answer_streams_as_one_message_growing_by_edits(
    chat: tuple[Hub, MemoryTransport], llm_models: list[Prompted]
) -> None:
    _agent, _asked, versions = await ask(chat, "chatbus-echo", "@alice tell me a story about a long long road")
    first, *edits = versions
    assert first.streaming is True and first.kind == "agent"
    assert len(edits) >= 3, [e.text for e in edits]
    assert all(e.streaming for e in edits[:-1]) and edits[-1].streaming is False
    texts = [e.text for e in edits]
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))
    assert texts[-1].endswith("a long long road")


async def test_edits_are_throttled_by_the_stream_interval(
    chat: tuple[Hub, MemoryTransport], llm_models: list[Prompted]
) -> None:
    _agent, _asked, versions = await ask(chat, "chatbus-echo", "@alice say something long enough", stream_interval=30)
    _first, *edits = versions
    assert [e.streaming for e in edits] == [True, False]  # the first words at once, then only the final text
    assert edits[0].text == "I read: caro"  # the first chunk of the echo (models.CHUNK characters)
    assert edits[1].text.endswith("say something long enough")


async def test_the_context_is_bounded_by_messages_and_by_tokens(
    chat: tuple[Hub, MemoryTransport], llm_models: list[Prompted]
) -> None:
    hub, transport = chat
    for n in range(1, 6):
        await transport.say("dave", f"note number {n}")
    await ask(chat, "chatbus-echo", "@alice what were the notes?", context_messages=2)
    prompt = llm_models[-1].prompt
    assert "note number 4" in prompt and "note number 5" in prompt and "note number 3" not in prompt
    await transport.say("dave", "x" * 400)  # about 100 tokens
    asked = await transport.say("carol", "@alice and now?")
    await converse(hub, hub.agents["alice"], asked, BrainSettings(**FAST, context_tokens=110))
    prompt = llm_models[-1].prompt
    assert "x" * 400 in prompt and "note number" not in prompt


async def test_without_context_the_model_gets_only_the_message(
    chat: tuple[Hub, MemoryTransport], llm_models: list[Prompted]
) -> None:
    _hub, transport = chat
    await transport.say("dave", "something earlier")
    await ask(chat, "chatbus-echo", "@alice hello there", context_messages=0)
    assert llm_models[-1].prompt == "carol says to you:\n@alice hello there"


async def test_a_sync_only_model_answers_from_a_thread(
    chat: tuple[Hub, MemoryTransport], llm_models: list[Prompted]
) -> None:
    _agent, _asked, versions = await ask(chat, "chatbus-echo-sync", "@alice are threads fine?")
    assert llm_models[-1].model == "chatbus-echo-sync"
    assert versions[-1].streaming is False and versions[-1].text.endswith("are threads fine?")
    assert len(versions) > 2


async def test_the_default_model_is_the_one_llm_is_configured_with(
    chat: tuple[Hub, MemoryTransport], llm_models: list[Prompted]
) -> None:
    llm.set_default_model("chatbus-echo-sync")
    _agent, _asked, versions = await ask(chat, "default", "@alice who answers?")
    assert llm_models[-1].model == "chatbus-echo-sync"
    assert versions[-1].text.endswith("who answers?")


async def test_a_model_that_fails_ends_the_answer_in_words_and_logs_why(
    chat: tuple[Hub, MemoryTransport], llm_models: list[Prompted], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "chatbus.agents.brain")
    _agent, _asked, versions = await ask(chat, "chatbus-broken", "@alice what do you think?")
    final = versions[-1]
    assert final.streaming is False
    assert final.text.startswith("Let me think")
    assert 'Sorry, I couldn\'t answer: my model "chatbus-broken" failed' in final.text
    assert all(SECRET not in v.text for v in versions)
    assert SECRET in caplog.text


@pytest.mark.parametrize(
    ("model", "settings", "said"),
    [
        ("no-such-model-anywhere", {}, '"no-such-model-anywhere" is not one llm knows on the server ("llm models"'),
        ("chatbus-keyed", {}, 'my model "chatbus-keyed" needs an API key on the server ("llm keys set")'),
        ("chatbus-silent", {"answer_timeout": 0.3}, "I stopped: my model took too long to answer."),
        ("chatbus-slow-sync", {"answer_timeout": 0.3}, "I stopped: my model took too long to answer."),
        ("chatbus-broken-sync", {}, 'Sorry, I couldn\'t answer: my model "chatbus-broken-sync" failed'),
    ],
)
async def test_a_model_that_cannot_answer_says_why_in_words(
    chat: tuple[Hub, MemoryTransport], llm_models: list[Prompted], model: str, settings: dict[str, Any], said: str
) -> None:
    _agent, _asked, versions = await ask(chat, model, "@alice anyone home?", **settings)
    assert versions[-1].streaming is False
    assert said in versions[-1].text
    assert "Traceback" not in versions[-1].text and "Error" not in versions[-1].text


async def test_without_a_model_nothing_is_posted(chat: tuple[Hub, MemoryTransport], llm_models: list[Prompted]) -> None:
    agent, _asked, versions = await ask(chat, None, "@alice hello?")
    assert model_of(agent) is None and versions == [] and llm_models == []


async def test_an_answer_deleted_while_streaming_stops_quietly(
    chat: tuple[Hub, MemoryTransport], llm_models: list[Prompted]
) -> None:
    hub, transport = chat
    agent = await hub.hire("alice", "developer", model="chatbus-echo")
    asked = await transport.say("carol", "@alice " + "talk for a while " * 10)
    answering = asyncio.ensure_future(converse(hub, agent, asked, BrainSettings(**FAST)))
    posted = await transport.wait_for(lambda m: m.sender == "alice")
    await hub.delete(agent.identity, posted.id)
    assert await asyncio.wait_for(answering, 5) is True
    stored = await hub.store.get(posted.id)
    assert stored is not None and stored.deleted and stored.text == ""


async def test_an_answer_cut_off_by_a_stop_is_ended_when_the_server_starts_again(
    tmp_path: Path, llm_models: list[Prompted]
) -> None:
    db = str(tmp_path / "chat.db")
    settings = Settings.isolated(db=db, plugins={"disable": ["agents", "ratelimit"]})
    transport = MemoryTransport()
    hub = Hub(settings, store=SQLiteStore(db), transports=[transport], load_entrypoints=False)
    await hub.start()
    agent = await hub.hire("alice", "developer", model="chatbus-silent")
    asked = await transport.say("carol", "@alice are you there?")
    answering = asyncio.ensure_future(converse(hub, agent, asked, BrainSettings(**FAST)))
    posted = await transport.wait_for(lambda m: m.sender == "alice")
    await hub.stop(timeout=1)
    answering.cancel()
    hub = Hub(settings, store=SQLiteStore(db), transports=[MemoryTransport()], load_entrypoints=False)
    async with hub:
        left = await hub.store.get(posted.id)
        assert left is not None and left.streaming
        assert await finish_interrupted(hub) == 1
        ended = await hub.store.get(posted.id)
        assert ended is not None and not ended.streaming
        assert ended.text == "⚠️ Cut off: the server stopped while this was being written."
        assert await finish_interrupted(hub) == 0


async def test_the_message_replied_to_is_in_the_context_however_old(
    chat: tuple[Hub, MemoryTransport], llm_models: list[Prompted]
) -> None:
    hub, transport = chat
    agent = await hub.hire("alice", "developer", model="chatbus-echo")
    old = await transport.say("dave", "The launch code word is albatross.")
    for n in range(5):
        await transport.say("erin", f"chatter {n}")
    asked = await transport.say("carol", "@alice what does this mean?", reply_to=old.id)
    await converse(hub, agent, asked, BrainSettings(**FAST, context_messages=2))
    prompt = llm_models[-1].prompt
    assert prompt.index("dave: The launch code word is albatross.") < prompt.index("erin: chatter 3")
    assert "chatter 2" not in prompt and "erin: chatter 4" in prompt


async def test_the_brain_s_settings_are_part_of_the_agents_section() -> None:
    settings = Settings.isolated(db=":memory:", agents={"context_messages": 5, "stream_interval": 0.25})
    hub = make_hub([], settings=settings)
    async with hub:
        plugin = hub.pm.get_plugin("agents")
        assert plugin.settings.context_messages == 5 and plugin.settings.stream_interval == 0.25
        assert plugin.settings.context_tokens == 2000 and plugin.settings.answer_timeout == 120
    with pytest.raises(ConfigError, match=r"agents\.context_tokens \(CHATBUS_AGENTS__CONTEXT_TOKENS\)"):
        await make_hub([], settings=Settings.isolated(db=":memory:", agents={"context_tokens": -1})).start()


async def test_a_failure_note_always_fits_in_a_message(llm_models: list[Prompted]) -> None:
    transport = MemoryTransport()
    settings = Settings.isolated(db=":memory:", max_text_length=200, plugins={"disable": ["agents", "ratelimit"]})
    hub = make_hub([], settings=settings, transports=[transport])
    async with hub:
        _agent, _asked, versions = await ask((hub, transport), "chatbus-broken", "@alice go on")
    final = versions[-1].text
    assert len(final) <= 200 and final.startswith("Let me think about it")
    assert final.endswith('Sorry, I couldn\'t answer: my model "chatbus-broken" failed (the server log says why). '
                          "Try again in a moment.")  # fmt: skip
    assert "…\n\n⚠️ Sorry" in final
