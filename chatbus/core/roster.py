"""Who is in the chat: people connected now, and the agents in the roster.

:class:`Roster` counts each person's connections (the first puts them online,
the last takes them offline), keeps the agents' roster and work status in the
store, and tells the transports about every change through the ``notify``
callback the hub gives it while it runs. It needs only a store, so the
command line can hire and fire agents without building a hub.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .errors import InvalidMessage
from .message import (
    SYSTEM_SENDER,
    TEAM,
    Agent,
    AgentStatus,
    AgentStatusName,
    Event,
    Identity,
    Kind,
    Presence,
    name_key,
    valid_name,
)
from .store import Store

__all__ = ["AGENT_STATUSES", "Member", "Roster", "RosterAccess"]

AGENT_STATUSES: tuple[AgentStatusName, ...] = ("idle", "working", "stuck", "completed")
#: What a person is told whose name an agent hired meanwhile now has (a close reason: at most 123 bytes).
SIGNED_OUT = "Your name now belongs to an agent that was just hired; sign in under another name."
_RESERVED = frozenset({name_key(SYSTEM_SENDER), name_key(TEAM)})

log = logging.getLogger("chatbus.hub")


@dataclass(frozen=True, slots=True)
class Member:
    """Someone in the chat right now: a connected person or a hired agent."""

    user_id: str
    role: str
    kind: Kind
    status: str  # "online" for people; the work status for agents
    current_task: str | None = None
    progress: int | None = None
    #: A person's name to show and the transport they came by, when known (``tg:12345`` is "Ana" on telegram).
    display_name: str | None = None
    transport: str | None = None


class Roster:
    """People online and agents hired; see the module docstring."""

    def __init__(self, store: Store, notify: Callable[[Event], None] | None = None) -> None:
        self.store = store
        #: Where changes are announced; None while the hub is not running.
        self.notify = notify
        self.agents: dict[str, Agent] = {}
        self._online: dict[str, tuple[Identity, int]] = {}
        # Everyone here, kept ready: a sign-in lists them all, and with
        # thousands online rebuilding the list each time would dominate.
        self._people: dict[str, Member] = {}
        self._agent_members: dict[str, tuple[Agent, Member]] = {}
        self._member_list: tuple[Member, ...] | None = None
        #: People connected to other nodes only (several nodes, one chat): how they look, and their nodes.
        self._elsewhere: dict[str, tuple[Member, set[str]]] = {}
        #: How many of those are not connected here too (kept as they come and go: asked per presence event).
        self._only_elsewhere = 0
        #: Where a change only the other nodes need hears of goes (several nodes); None on one node.
        self.tell_nodes: Callable[[Event], None] | None = None
        #: Changes whenever ``members()`` would answer differently.
        self.version = 0

    def _announce(self, event: Event) -> None:
        if self.notify is not None:
            self.notify(event)

    def _changed(self) -> None:
        self._member_list = None
        self.version += 1

    # people ----------------------------------------------------------------
    def arrive(self, identity: Identity, transport: str | None = None) -> bool:
        """Count a connection of ``identity`` (through ``transport``); True when it put them online."""
        entry = self._online.get(identity.user_id)
        if entry is not None:
            self._online[identity.user_id] = (entry[0], entry[1] + 1)
            return False
        self._online[identity.user_id] = (identity, 1)
        person = Member(identity.user_id, identity.role, identity.kind, "online", transport=transport)
        self._people[identity.user_id] = replace(person, display_name=identity.display_name)
        if identity.user_id in self._elsewhere:
            self._only_elsewhere -= 1
        self._changed()
        presence = Presence(identity.user_id, identity.role, identity.kind, "online", identity.display_name, transport)
        self._here_or_elsewhere(presence)
        return True

    def _here_or_elsewhere(self, presence: Presence) -> None:
        """Announce a person's arrival or departure here; only to the other nodes when
        another node has them online (its people saw no change)."""
        if presence.user_id in self._elsewhere and self.tell_nodes is not None:
            self.tell_nodes(presence)
        else:
            self._announce(presence)

    def leave(self, identity: Identity, transport: str | None = None) -> bool:
        """Count a closed connection of ``identity``; True when it took them offline."""
        entry = self._online.get(identity.user_id)
        if entry is None:
            return False
        if entry[1] > 1:
            self._online[identity.user_id] = (entry[0], entry[1] - 1)
            return False
        del self._online[identity.user_id]
        self._people.pop(identity.user_id, None)
        if identity.user_id in self._elsewhere:
            self._only_elsewhere += 1
        self._changed()
        presence = Presence(identity.user_id, identity.role, identity.kind, "offline", identity.display_name, transport)
        self._here_or_elsewhere(presence)
        return True

    def clear_people(self) -> None:
        """Everyone is offline (the hub stopped)."""
        self._online.clear()
        self._people.clear()
        self._elsewhere.clear()
        self._only_elsewhere = 0
        self._changed()

    # people on other nodes (several nodes, one chat) ---------------------------
    def seen_elsewhere(self, presence: Presence, node: str) -> bool:
        """``presence`` came from ``node``; True when it changed who is online here (announce it)."""
        user = presence.user_id
        entry = self._elsewhere.get(user)
        if presence.status == "online":
            if entry is not None:
                entry[1].add(node)
                return False
            member = Member(user, presence.role, presence.kind, "online", None, None, presence.display_name)
            self._elsewhere[user] = (replace(member, transport=presence.transport), {node})
            self._only_elsewhere += user not in self._people
            self._changed()
            return user not in self._online
        if entry is None or node not in entry[1]:
            return False
        entry[1].discard(node)
        if entry[1]:
            return False
        del self._elsewhere[user]
        self._only_elsewhere -= user not in self._people
        self._changed()
        return user not in self._online

    def elsewhere(self) -> dict[str, set[str]]:
        """The people online on other nodes, and on which."""
        return {user: set(nodes) for user, (_, nodes) in self._elsewhere.items()}

    def gone_elsewhere(self, user_id: str, node: str) -> Presence | None:
        """``user_id`` is no longer on ``node`` (it stopped renewing); their offline presence when that
        took them offline here."""
        entry = self._elsewhere.get(user_id)
        if entry is None:
            return None
        member = entry[0]
        presence = Presence(user_id, member.role, member.kind, "offline", member.display_name, member.transport)
        return presence if self.seen_elsewhere(presence, node) else None

    def status_elsewhere(self, event: AgentStatus) -> bool:
        """An agent's status recorded by another node; False for an agent unknown here."""
        agent = self.agents.get(event.user_id)
        if agent is None:
            return False
        self.agents[agent.name] = replace(
            agent, status=event.status, current_task=event.current_task, progress=event.progress
        )
        self._changed()
        return True

    @property
    def people_online(self) -> int:
        """How many people (not agents) are connected now, to any node."""
        return len(self._people) + self._only_elsewhere

    @property
    def connected(self) -> int:
        """How many identities have a connection to this node now."""
        return len(self._online)

    def here(self) -> list[str]:
        """The ids of everyone connected to this node now."""
        return list(self._online)

    def is_online(self, user_id: str) -> bool:
        return user_id in self._online or user_id in self.agents or user_id in self._elsewhere

    def identity_of(self, user_id: str) -> Identity | None:
        """How ``user_id`` signed in, while they are connected."""
        entry = self._online.get(user_id)
        return entry[0] if entry is not None else None

    def person_named(self, name: str) -> str | None:
        """The id of a person online whose name is ``name`` or could pass for it
        (see :func:`~chatbus.core.message.name_key`), else None."""
        entry = self._online.get(name)
        if entry is not None:
            return name if entry[0].kind == "human" else None
        key = name_key(name)
        return next(
            (user for user, (identity, _) in list(self._online.items()) if identity.is_human and name_key(user) == key),
            None,
        )

    def members(self) -> tuple[Member, ...]:
        """Everyone here now: connected people, then hired agents.

        The answer is cached until someone arrives, leaves or an agent
        changes (``version`` then moves on), and a member who did not change
        is the same object as before, so callers can cache per member.
        """
        if self._member_list is None:
            people = self._people
            if self._elsewhere:
                people = {user: member for user, (member, _) in self._elsewhere.items()} | people
            agents = tuple(self._agent_member(agent) for agent in self.agents.values() if agent.name not in people)
            self._member_list = (*people.values(), *agents)
        return self._member_list

    def _agent_member(self, agent: Agent) -> Member:
        cached = self._agent_members.get(agent.name)
        if cached is not None and cached[0] is agent:
            return cached[1]
        member = Member(agent.name, agent.role, "agent", agent.status, agent.current_task, agent.progress)
        self._agent_members[agent.name] = (agent, member)
        return member

    # agents ----------------------------------------------------------------
    async def load(self) -> None:
        """Read the roster from the store (at start)."""
        self.agents = {agent.name: agent for agent in await self.store.list_agents()}
        self._changed()

    async def hire(
        self,
        name: str,
        role: str,
        command: Sequence[str] | None = None,
        *,
        model: str | None = None,
        stdin: bool | None = None,
        allow: Sequence[str] | None = None,
    ) -> Agent:
        """Add an agent to the roster, or update its role; the command, model,
        ``stdin`` and ``allow`` of an agent already hired are kept unless given."""
        if not valid_name(name) or name_key(name) in _RESERVED:
            raise InvalidMessage("Agent names are 1-64 letters, digits, '_', '-' or '.', and not 'system' or 'team'.")
        person = self.person_named(name)
        if person is not None:
            raise InvalidMessage(f"{person!r} is a person who is online now; choose another agent name.")
        previous = self.agents.get(name) or await self.store.get_agent(name)
        agent = previous if previous is not None else Agent(name, role)
        agent = replace(
            agent,
            role=role,
            command=tuple(command) if command else agent.command,
            model=model or agent.model,
            stdin=agent.stdin if stdin is None else stdin,
            allow=tuple(allow) if allow is not None else agent.allow,
        )
        await self.store.save_agent(agent)
        self.agents[name] = agent
        self._changed()
        if previous is None:
            self._announce(Presence(name, role, "agent", "online"))
        return agent

    async def fire(self, name: str) -> bool:
        """Remove an agent from the roster; False when there was none of that name."""
        removed = await self.store.remove_agent(name)
        agent = self.agents.pop(name, None)
        self._agent_members.pop(name, None)
        self._changed()
        if agent is not None:
            self._announce(Presence(name, agent.role, "agent", "offline"))
        return removed or agent is not None

    async def set_status(
        self,
        name: str,
        status: AgentStatusName,
        current_task: str | None = None,
        progress: int | None = None,
    ) -> Agent:
        """Record an agent's status and announce it (``agent_status``)."""
        if status not in AGENT_STATUSES:
            raise InvalidMessage(f"Agent status must be one of {', '.join(AGENT_STATUSES)}.")
        if progress is not None:
            progress = max(0, min(100, int(progress)))
        agent = await self.store.update_agent(name, status=status, current_task=current_task, progress=progress)
        if agent is None:
            raise InvalidMessage(f"There is no agent called {name!r}.")
        self.agents[name] = agent
        self._changed()
        self._announce(AgentStatus(name, status, current_task, progress))
        return agent

    async def reload(self) -> tuple[list[str], list[str]]:
        """Re-read the roster from the store, so agents hired or fired by another
        process (``chatbus agents hire`` while the server runs) take part.
        Returns the names added and removed; presence is announced for both."""
        fresh = {agent.name: agent for agent in await self.store.list_agents()}
        added = [name for name in fresh if name not in self.agents]
        removed = [name for name in self.agents if name not in fresh]
        gone = {name: self.agents[name] for name in removed}
        self.agents.clear()
        self.agents.update(fresh)
        self._changed()
        for name in added:
            self._announce(Presence(name, fresh[name].role, "agent", "online"))
        for name, agent in gone.items():
            self._announce(Presence(name, agent.role, "agent", "offline"))
        return added, removed

    def by_status(self) -> dict[str, Any]:
        """Agents in total and by status."""
        counts = dict.fromkeys(AGENT_STATUSES, 0)
        for agent in self.agents.values():
            counts[agent.status] = counts.get(agent.status, 0) + 1
        return {"total": len(self.agents), "by_status": counts}


class RosterAccess:
    """The roster's operations on the hub itself (``hub.hire(...)``,
    ``hub.members()``), where transports and plugins look for them."""

    roster: Roster
    transports: dict[str, Any]

    @property
    def agents(self) -> dict[str, Agent]:
        """The agents' roster by name."""
        return self.roster.agents

    def members(self) -> tuple[Member, ...]:
        """Everyone here now: connected people, then hired agents (cached; see ``members_version``)."""
        return self.roster.members()

    @property
    def members_version(self) -> int:
        """Changes whenever ``members()`` would answer differently."""
        return self.roster.version

    @property
    def people_online(self) -> int:
        """How many people (not agents) are connected now."""
        return self.roster.people_online

    def is_online(self, user_id: str) -> bool:
        return self.roster.is_online(user_id)

    def identity_of(self, user_id: str) -> Identity | None:
        """How a connected person signed in (their role, who vouched for them), else None."""
        return self.roster.identity_of(user_id)

    async def hire(
        self,
        name: str,
        role: str,
        command: Sequence[str] | None = None,
        *,
        model: str | None = None,
        stdin: bool | None = None,
        allow: Sequence[str] | None = None,
    ) -> Agent:
        """Add an agent to the roster (or update its role; command, model, stdin and allow when given)."""
        return await self.roster.hire(name, role, command, model=model, stdin=stdin, allow=allow)

    async def fire(self, name: str) -> bool:
        """Remove an agent from the roster."""
        return await self.roster.fire(name)

    async def set_agent_status(
        self, name: str, status: AgentStatusName, current_task: str | None = None, progress: int | None = None
    ) -> Agent:
        """Record an agent's status and tell every transport (``agent_status``)."""
        return await self.roster.set_status(name, status, current_task, progress)

    async def reload_agents(self) -> tuple[list[str], list[str]]:
        """Re-read the roster from the store; returns the names added and removed.

        A person online under a name an added agent now has or passes for (hired
        with ``chatbus agents hire`` meanwhile) is signed out, told why, on every
        transport that can (``sign_out(user_id, reason)``): a person and an agent
        never share a name.
        """
        added, removed = await self.roster.reload()
        for name in added:
            person = self.roster.person_named(name)
            if person is None:
                continue
            log.warning(
                "agent %s was hired while %s was online under that name: %s is signed out", name, person, person
            )
            for transport in list(self.transports.values()):
                sign_out = getattr(transport, "sign_out", None)
                if sign_out is not None:
                    await sign_out(person, SIGNED_OUT)
        return added, removed

    def agent_status(self, name: str) -> Agent | None:
        """An agent's roster entry (status, current task, progress), or None."""
        return self.roster.agents.get(name)
