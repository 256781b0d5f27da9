"""Who may give an agent work, on every transport: people whose role is in
``agents.allow_roles`` (manager and developer unless configured), or whom the
agent's roster entry allows; everyone else is refused in words and nothing runs."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from chatbus import Settings
from tests.plugins.agents.test_websocket import COMMAND, agent_settings, ask, collect, reply_to
from tests.transports.telegram.conftest import CHAT, build_hub
from tests.transports.telegram.fakebot import FakeBotAPI
from tests.transports.websocket.helpers import running

REFUSAL = (
    "Sorry {who}, I only take work and orders from these roles and people: {allowed}. Your role is {role!r}, so "
    "ask one of them, or a manager to let you (chatbus agents hire alice developer --allow ...)."
)


async def test_a_person_without_the_right_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    async with running(settings=agent_settings()) as server:
        await server.hub.hire("alice", "developer", COMMAND)
        tess = await server.client("tess", role="tester")
        asked = await ask(tess, "@alice please delete the database")
        frames = await collect(tess, reply_to(asked["id"], "alice"))
        assert frames[-1]["data"]["text"] == REFUSAL.format(who="tess", allowed="manager, developer", role="tester")
        assert not [f for f in frames if f["type"] == "agent_status"]
        # Stopping and retrying are work too, and the refusal reads right for them (not "give me this task").
        for command in ("/cancel alice", "/retry alice", "/reset alice"):
            said = await ask(tess, command)
            frames = await collect(tess, reply_to(said["id"], "alice"))
            assert frames[-1]["data"]["text"] == REFUSAL.format(who="tess", allowed="manager, developer", role="tester")
        # Talking is not work.
        hello = await ask(tess, "@alice hi")
        frames = await collect(tess, reply_to(hello["id"], "alice"))
        assert frames[-1]["data"]["text"].startswith("Hi tess!")
        assert server.hub.agent_status("alice").status == "idle"  # type: ignore[union-attr]
        assert not (tmp_path / "agents" / "alice").exists()
        await tess.close()


async def test_the_agents_own_allow_list_names_roles_and_people() -> None:
    async with running(settings=agent_settings()) as server:
        await server.hub.hire("alice", "developer", COMMAND, allow=["tess", "lead"])
        tess = await server.client("tess", role="tester")
        dev = await server.client("dev", role="developer")
        asked = await ask(tess, "@alice please write the notes")
        assert (await collect(tess, reply_to(asked["id"], "alice", "✅")))[-1]["data"]["sender"] == "alice"
        refused = await ask(dev, "@alice please write more notes")
        frames = await collect(dev, reply_to(refused["id"], "alice"))
        assert frames[-1]["data"]["text"] == REFUSAL.format(who="dev", allowed="tess, lead", role="developer")
        for client in (tess, dev):
            await client.close()


async def test_allow_roles_is_a_setting() -> None:
    async with running(settings=agent_settings(allow_roles="manager, tester")) as server:
        await server.hub.hire("alice", "developer", COMMAND)
        tess = await server.client("tess", role="tester")
        asked = await ask(tess, "@alice please write the notes")
        frames = await collect(tess, reply_to(asked["id"], "alice"))
        assert frames[-1]["data"]["text"] == "Got it! I'll write the notes."
        await tess.close()


@pytest_asyncio.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    server = FakeBotAPI()
    server.add_chat(CHAT, "Team", username="team_chat")
    async with server:
        yield server


def telegram_settings() -> Settings:
    agents = {"stuck_after": 30, "timeout": 60, "kill_grace": 1}
    return Settings.isolated(db=":memory:", agents=agents)


async def test_a_telegram_person_has_no_right_to_give_work_unless_configured(api: FakeBotAPI) -> None:
    hub, _web, _telegram = build_hub(api, settings=telegram_settings(), roles={"502": "developer"})
    async with hub:
        await hub.hire("alice", "developer", [sys.executable, "-c", "print('done')"])
        mention = [{"type": "mention", "offset": 0, "length": 6}]
        api.post(CHAT, "@alice please deploy", user=api.user(501, username="mallory"), entities=mention)
        await api.wait_for(lambda: any("Sorry" in s.text for s in api.sent))
        refusal = next(s.text for s in api.sent if "Sorry" in s.text)
        assert (
            "Sorry mallory, I only take work and orders from these roles and people: manager, developer. Your role is 'user'"
            in refusal
        )
        assert hub.agent_status("alice").status == "idle"  # type: ignore[union-attr]
        api.post(CHAT, "@alice please deploy", user=api.user(502, username="devi"), entities=mention)
        await api.wait_for(lambda: any("Got it! I'll deploy." in s.text for s in api.sent))
        await api.wait_for(lambda: any("✅ Completed: deploy" in s.text for s in api.sent))


async def test_hire_from_the_chat_sets_who_may_give_work_and_keeps_the_command_and_model() -> None:
    async with running(settings=agent_settings()) as server:
        await server.hub.hire("alice", "developer", COMMAND, model="echo")
        boss = await server.client("boss", role="manager")
        tess = await server.client("tess", role="tester")
        hired = await ask(boss, "/hire alice lead --allow tess manager --stdin")
        frames = await collect(boss, reply_to(hired["id"], "system"))
        assert frames[-1]["data"]["text"] == "alice is now lead."
        alice = server.hub.agents["alice"]
        assert (alice.role, alice.command, alice.model, alice.stdin, alice.allow) == (
            "lead",
            tuple(COMMAND),
            "echo",
            True,
            ("tess", "manager"),
        )
        asked = await ask(tess, "@alice please write the notes")
        assert (await collect(tess, reply_to(asked["id"], "alice", "✅")))[-1]["data"]["sender"] == "alice"
        bad = await ask(boss, "/hire alice lead --colour blue")
        frames = await collect(boss, reply_to(bad["id"], "system"))
        assert frames[-1]["data"]["text"].startswith("Usage: /hire NAME ROLE [--model MODEL]")
        for client in (boss, tess):
            await client.close()


async def test_a_reply_from_someone_without_the_right_does_not_reach_the_worker(tmp_path: Path) -> None:
    async with running(settings=agent_settings(kill_grace=0.5)) as server:
        await server.hub.hire("alice", "developer", COMMAND, stdin=True)
        carol = await server.client("carol", role="developer")
        tess = await server.client("tess", role="tester")
        asked = await ask(carol, "@alice please run the hang test")
        ack = (await collect(carol, reply_to(asked["id"], "alice", "Got it!")))[-1]["data"]
        butting_in = await ask(tess, "rm -rf everything", replyTo=ack["id"])
        frames = await collect(tess, reply_to(butting_in["id"], "alice"))
        assert frames[-1]["data"]["text"].startswith(
            "Sorry tess, I only take work and orders from these roles and people: manager, developer."
        )
        assert server.hub.agent_status("alice").status == "working"  # type: ignore[union-attr]
        stopped = await ask(carol, "/cancel alice")
        await collect(carol, lambda f: f["type"] == "agent_response" and f["data"]["text"].startswith("⏹️"))
        assert stopped["id"] > ack["id"]
        for client in (carol, tess):
            await client.close()
