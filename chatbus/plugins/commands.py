"""The built-in ``commands`` plugin: chat commands answered by the system.

``/help``             what the commands are
``/agents``           the roster: name, role, status, current task
``/status [name]``    one agent's status, or the chat's (agents by status,
                      transports, people connected)
``/hire NAME ROLE [--model M] [--stdin|--no-stdin] [--allow ROLE_OR_ID...]``
                      add an agent, or change one (people whose role is ``manager`` only);
                      an agent hired again keeps its command and model unless new ones are given
``/fire NAME``        remove an agent, stopping its work first (``manager`` only)
``/link [CODE]``      link an account of another transport to a person
``/unlink``           undo it

Answers come from ``system`` and reply to the command. A command this plugin
does not know is left alone, for other plugins (and other bots in a
Telegram group) to answer. Agents hired from the chat have no worker command:
the command runs programs on the server, so it is set only with
``chatbus agents hire ... --command``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from chatbus import Agent, ChatbusError, Message, hookimpl
from chatbus.core.links import CODE_LIFETIME
from chatbus.plugins.agents.brain import unknown_model

if TYPE_CHECKING:
    from chatbus import Hub

__all__ = ["MANAGER_ROLE", "CommandsPlugin", "describe_agent", "help_text"]

log = logging.getLogger("chatbus.commands")

#: The role a person needs for ``/hire`` and ``/fire``.
MANAGER_ROLE = "manager"

HELP = """Commands:
/help - this list
/agents - the agents and what they are doing
/status [name] - an agent's status, or the chat's
/hire NAME ROLE [--model M] [--stdin] [--allow ROLE_OR_ID...] - add or change an agent (managers only)
/fire NAME - remove an agent (managers only)
/cancel NAME - stop the agent's running task; /retry NAME - run its last failed task again
/reset NAME - an agent that is stuck is idle again
/link - link your Telegram account to you (/link CODE in Telegram completes it); /unlink undoes it
Mention an agent to talk to it, e.g. "@alice please add a test" or "@alice status?"."""


def describe_agent(agent: Agent) -> str:
    """One line about an agent: ``alice (developer): working (40%) — X``; the task after a dash,
    so it reads right in any form ("fix the tests", "the build is red")."""
    head = f"{agent.name} ({agent.role})"
    if agent.status == "working" and agent.current_task:
        done = f" ({agent.progress}%)" if agent.progress is not None else ""
        return f"{head}: working{done} — {agent.current_task}"
    if agent.status in ("stuck", "completed") and agent.current_task:
        return f"{head}: {agent.status} — {agent.current_task}"
    return f"{head}: {agent.status}"


def help_text(agents: Sequence[Agent]) -> str:
    """``HELP`` with its last line about mentioning agents naming the agents of this chat."""
    commands = HELP.rsplit("\n", 1)[0]
    if not agents:
        return f"{commands}\nThere are no agents yet: a manager adds one with /hire NAME ROLE, then you mention it."
    names = ", ".join(f"{agent.name} ({agent.role})" for agent in agents)
    first, other = agents[0].name, agents[-1].name
    return (
        f"{commands}\nAgents here: {names}. Mention one to talk to it, "
        f'e.g. "@{first} please add a test" or "@{other} status?".'
    )


def _name(value: str) -> str:
    return value.removeprefix("@")


def _hire_options(words: Sequence[str]) -> dict[str, Any] | None:
    """``--model M``, ``--stdin``/``--no-stdin`` and ``--allow A B ...`` of ``/hire``; None when they do not parse."""
    options: dict[str, Any] = {}
    at = 0
    while at < len(words):
        word = words[at]
        if word in ("--stdin", "--no-stdin"):
            options["stdin"] = word == "--stdin"
        elif word == "--model" and at + 1 < len(words) and not words[at + 1].startswith("--"):
            at += 1
            options["model"] = words[at]
        elif word == "--allow":
            allowed: list[str] = []
            while at + 1 < len(words) and not words[at + 1].startswith("--"):
                at += 1
                allowed.append(_name(words[at]))
            options["allow"] = allowed
        else:
            return None
        at += 1
    return options


#: A command's answer for everyone, or None when it answered the asker alone.
Handler = Callable[[Message, "Hub"], Awaitable[str | None]]


class CommandsPlugin:
    """Registered as ``commands``."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._handlers: dict[str, Handler] = {
            "help": self._help,
            "start": self._help,
            "agents": self._agents,
            "status": self._status,
            "hire": self._hire,
            "fire": self._fire,
            "link": self._link,
            "unlink": self._unlink,
        }

    @hookimpl
    async def on_message(self, message: Message, hub: Hub) -> None:
        if message.kind != "human" or message.command is None:
            return
        handler = self._handlers.get(message.command)
        if handler is None:
            return
        try:
            text = await handler(message, hub)
        except ChatbusError as exc:
            text = str(exc)
        if text is None:
            return
        try:
            await hub.send(text, reply_to=message.id, room=message.room)
        except ChatbusError as exc:
            log.warning("could not answer /%s (message %d): %s", message.command, message.id, exc)

    async def _fresh_roster(self, hub: Hub) -> None:
        """Agents hired or fired with the CLI while the server runs show up at once."""
        try:
            await hub.reload_agents()
        except ChatbusError as exc:
            log.warning("could not re-read the roster: %s", exc)

    async def _help(self, message: Message, hub: Hub) -> str:
        await self._fresh_roster(hub)
        return help_text(sorted(hub.agents.values(), key=lambda a: a.name))

    async def _agents(self, message: Message, hub: Hub) -> str:
        await self._fresh_roster(hub)
        if not hub.agents:
            return "There are no agents yet. A manager can add one with /hire NAME ROLE."
        lines = [describe_agent(agent) for agent in sorted(hub.agents.values(), key=lambda a: a.name)]
        return "Agents:\n" + "\n".join(lines)

    async def _status(self, message: Message, hub: Hub) -> str:
        await self._fresh_roster(hub)
        if message.command_args:
            name = _name(message.command_args[0])
            agent = hub.agent_status(name)
            if agent is None:
                return f"There is no agent called {name!r}. /agents lists them."
            return describe_agent(agent)
        stats = hub.stats()
        counts = stats["agents"]["by_status"]
        busy = ", ".join(f"{count} {status}" for status, count in counts.items() if count) or "none"
        running = ", ".join(stats.get("transports_running", ())) or "none"
        people = stats["connected_users"]
        return (
            f"Agents: {stats['agents']['total']} ({busy}).\nTransports running: {running}.\nPeople connected: {people}."
        )

    def _refuse(self, message: Message, action: str) -> str | None:
        if message.sender_role == MANAGER_ROLE:
            return None
        return f"Only managers can {action} agents; your role is {message.sender_role!r}. Ask a manager to do it."

    async def _hire(self, message: Message, hub: Hub) -> str:
        refusal = self._refuse(message, "hire")
        if refusal:
            return refusal
        args: Sequence[str] = message.command_args
        options = _hire_options(args[2:])
        if len(args) < 2 or options is None:
            return (
                "Usage: /hire NAME ROLE [--model MODEL] [--stdin | --no-stdin] [--allow ROLE_OR_ID ...] "
                "(for example /hire alice developer --allow manager carol)."
            )
        name, role = _name(args[0]), args[1]
        if not role.isprintable() or len(role) > 64:
            return "The role must be at most 64 printable characters."
        await self._fresh_roster(hub)
        existed = name in hub.agents
        agent = await hub.hire(name, role, **options)
        said = f"{agent.name} is now {agent.role}." if existed else f"Hired {agent.name} as {agent.role}."
        model = options.get("model")
        if isinstance(model, str) and await asyncio.to_thread(unknown_model, model):  # llm loads its plugins
            said += (
                f' Note: llm on this server knows no model called {model!r} ("llm models" lists them), so '
                f"{agent.name} cannot answer questions until it is installed or named right."
            )
        return said if existed else f"{said} Say hello: @{agent.name}"

    async def _fire(self, message: Message, hub: Hub) -> str:
        refusal = self._refuse(message, "fire")
        if refusal:
            return refusal
        if len(message.command_args) != 1:
            return "Usage: /fire NAME (for example /fire alice)."
        name = _name(message.command_args[0])
        agents = hub.pm.get_plugin("agents")
        stopped: tuple[str | None, int] = (None, 0)
        if agents is not None and hasattr(agents, "control"):
            stopped = await agents.control.halt(name)  # its worker is stopped before it leaves
        if await hub.fire(name):
            return f"Fired {name}.{_stopped_work(*stopped)}"
        return f"There is no agent called {name!r}. /agents lists them."

    async def _link(self, message: Message, hub: Hub) -> str | None:
        """``/link`` on the web tells the asker a code; ``/link CODE`` elsewhere links that account."""
        if not message.command_args:
            signed_in = hub.identity_of(message.sender)
            if signed_in is not None and signed_in.vouched_by is not None:
                return (
                    f"Link codes are only given to people who signed in to chatbus themselves (with a token when "
                    f"the chat uses tokens), not to an account {signed_in.vouched_by} vouches for; ask in the web chat."
                )
            code = hub.links.offer(message.sender)
            where = (
                f"To post from Telegram as {message.sender}, send /link {code} in the Telegram chat"
                if "telegram" in hub.transports
                else f"To post from another transport's account as {message.sender}, send /link {code} from it"
            )
            minutes = round(CODE_LIFETIME / 60)
            hub.tell(message.sender, f"{where} within {minutes} minutes. The code works once; /unlink undoes the link.",
                     message.room)  # fmt: skip
            return None
        person = await hub.links.redeem(message.command_args[0], message.sender)
        return f"This account is now linked to {person}: its messages are posted as {person}. /unlink undoes it."

    async def _unlink(self, message: Message, hub: Hub) -> str:
        gone = await hub.links.unlink(message.sender)
        if not gone:
            return f"{message.sender} has no linked accounts."
        return f"Unlinked {', '.join(gone)} from {message.sender}."


def _stopped_work(task: str | None, dropped: int) -> str:
    """What ``/fire`` stopped, said after "Fired NAME."."""
    if task is not None and len(task) > 80:
        task = task[:79] + "…"
    said = f" Its worker is stopped; the task it was doing is not done: {task.rstrip(' .')}." if task else ""
    if dropped:
        said += f" {dropped} queued task{'s were' if dropped != 1 else ' was'} dropped."
    return said
