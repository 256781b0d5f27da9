"""The built-in chat commands: /help, /agents, /status, /hire and /fire."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from chatbus import Hub, Presence
from chatbus.core.settings import Settings
from chatbus.testing import MemoryTransport, make_hub


@pytest.fixture
async def chat() -> AsyncIterator[tuple[Hub, MemoryTransport]]:
    transport = MemoryTransport()
    hub = make_hub(settings=Settings.isolated(db=":memory:"), transports=[transport])
    async with hub:
        await hub.hire("alice", "developer")
        await transport.join("boss", role="manager")
        await transport.join("carol", role="developer")
        yield hub, transport


async def answer(transport: MemoryTransport, user: str, text: str) -> str:
    asked = await transport.say(user, text)
    reply = await transport.wait_for(lambda m: m.reply_to == asked.id, 1.0)
    assert reply.sender == "system" and reply.kind == "system" and reply.room == asked.room
    return reply.text


async def test_help_lists_the_commands(chat: tuple[Hub, MemoryTransport]) -> None:
    text = await answer(chat[1], "carol", "/help")
    for command in ("/help", "/agents", "/status [name]", "/hire NAME ROLE", "/fire NAME"):
        assert command in text


async def test_agents_lists_the_roster_with_status_and_task(chat: tuple[Hub, MemoryTransport]) -> None:
    hub, transport = chat
    await hub.hire("bob", "tester")
    await hub.set_agent_status("bob", "working", "run the suite", 40)
    assert await answer(transport, "carol", "/agents") == (
        "Agents:\nalice (developer): idle\nbob (tester): working (40%) — run the suite"
    )


async def test_status_of_one_agent_and_of_the_chat(chat: tuple[Hub, MemoryTransport]) -> None:
    hub, transport = chat
    await hub.set_agent_status("alice", "stuck", "deploy")
    assert await answer(transport, "carol", "/status alice") == "alice (developer): stuck — deploy"
    assert await answer(transport, "carol", "/status @alice") == "alice (developer): stuck — deploy"
    assert (
        await answer(transport, "carol", "/status nobody") == "There is no agent called 'nobody'. /agents lists them."
    )
    assert await answer(transport, "carol", "/status") == (
        "Agents: 1 (1 stuck).\nTransports running: memory.\nPeople connected: 2."
    )


async def test_only_managers_hire_and_fire(chat: tuple[Hub, MemoryTransport]) -> None:
    hub, transport = chat
    refusal = await answer(transport, "carol", "/hire zed reviewer")
    assert refusal == "Only managers can hire agents; your role is 'developer'. Ask a manager to do it."
    assert "zed" not in hub.agents
    refusal = await answer(transport, "carol", "/fire alice")
    assert refusal.startswith("Only managers can fire agents")
    assert "alice" in hub.agents

    assert await answer(transport, "boss", "/hire zed reviewer") == "Hired zed as reviewer. Say hello: @zed"
    assert hub.agents["zed"].role == "reviewer" and hub.agents["zed"].command is None
    assert Presence("zed", "reviewer", "agent", "online") in transport.events
    assert await answer(transport, "boss", "/hire zed lead") == "zed is now lead."
    hello = await transport.say("carol", "@zed hi")
    assert (await transport.wait_for(lambda m: m.reply_to == hello.id, 1)).sender == "zed"

    assert await answer(transport, "boss", "/fire zed") == "Fired zed."
    assert "zed" not in hub.agents and await hub.store.get_agent("zed") is None
    assert await answer(transport, "boss", "/fire zed") == "There is no agent called 'zed'. /agents lists them."


async def test_bad_hire_and_fire_requests_say_what_to_do(chat: tuple[Hub, MemoryTransport]) -> None:
    _hub, transport = chat
    assert (await answer(transport, "boss", "/hire zed")).startswith("Usage: /hire NAME ROLE [--model MODEL]")
    assert await answer(transport, "boss", "/fire") == "Usage: /fire NAME (for example /fire alice)."
    assert await answer(transport, "boss", "/hire carol developer") == (
        "'carol' is a person who is online now; choose another agent name."
    )
    assert (await answer(transport, "boss", "/hire bad/name developer")).startswith("Agent names are 1-64 letters")


async def test_unknown_commands_and_commands_from_agents_are_left_alone(chat: tuple[Hub, MemoryTransport]) -> None:
    hub, transport = chat
    unknown = await transport.say("carol", "/deploy now")
    from_agent = await hub.send("/hire zed reviewer", sender="alice", role="manager")
    for _ in range(3):
        await hub.settle()
        await asyncio.sleep(0)
    answered = {m.reply_to for m in transport.delivered}
    assert unknown.id not in answered and from_agent.id not in answered
    assert "zed" not in hub.agents
