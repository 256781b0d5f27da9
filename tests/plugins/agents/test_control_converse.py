"""The ``agent_converse`` hook: a plugin that answers questions and conversation
as an agent wins; one that passes leaves it to the built-in (the agent's model,
else its texts); tasks still go to work. Over WebSocket."""

from __future__ import annotations

from chatbus import Agent, Hub, Message, hookimpl
from tests.plugins.agents.test_websocket import COMMAND, agent_settings, ask, collect, reply_to
from tests.transports.websocket.helpers import running


class Oracle:
    """Answers alice's questions; leaves everyone else's to the built-in."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    @hookimpl
    async def agent_converse(self, agent: Agent, message: Message, hub: Hub) -> bool | None:
        self.asked.append(message.text)
        if agent.name != "alice":
            return None
        await hub.send(f"The oracle says: ask {message.sender} again tomorrow.", sender=agent.name, reply_to=message.id)
        return True


async def test_a_plugin_answers_conversation_and_tasks_still_go_to_work() -> None:
    oracle = Oracle()
    async with running(settings=agent_settings(), plugins=[oracle]) as server:
        await server.hub.hire("alice", "developer", COMMAND)
        await server.hub.hire("bob", "tester", COMMAND)
        carol = await server.client("carol", role="developer")
        question = await ask(carol, "@alice what do you think of the plan?")
        frames = await collect(carol, reply_to(question["id"], "alice"))
        assert frames[-1]["data"]["text"] == "The oracle says: ask carol again tomorrow."
        other = await ask(carol, "@bob what do you think of the plan?")
        frames = await collect(carol, reply_to(other["id"], "bob"))
        assert not frames[-1]["data"]["text"].startswith("The oracle")  # bob's own words
        task = await ask(carol, "@alice please write the notes")
        frames = await collect(carol, reply_to(task["id"], "alice", "✅"))
        assert oracle.asked == ["@alice what do you think of the plan?", "@bob what do you think of the plan?"]
        await carol.close()
