"""What the hub keeps besides its log, in the Redis of a :class:`~.redis.RedisEngine`.

The roster, the transports' id maps, the small key-value state and the changes
made to messages (edits, deletions, grown answers, reactions), shared by every
node, each with the same meaning as in :class:`~chatbus.core.store.memory.MemoryStore`:

* an agent is a hash ``agent:<name>`` (each field as JSON), its name in the set ``agents``;
* ``ext:<transport>`` maps external ids to hub ids; ``ext-rev:<transport>:<hub id>``
  orders each hub id's external ids by when each was first mapped (``ext-seq:<transport>``);
* the state is the hash ``state``;
* a changed message has the hash ``change:<id>`` laid over its stream entry,
  which is never rewritten: ``m`` its latest state, ``r`` its reactions (JSON),
  ``v`` the texts it had before (JSON, oldest first); its id is in the sorted set
  ``changed``, so that the changes of messages trimmed from the log are forgotten
  (:meth:`RedisState.prune`, a few at each edit).

The scripts name some keys in their arguments (a transport's reverse sets,
the change hashes): they suit one Redis, not a Redis Cluster.

It uses the engine's connection and key prefix; open the engine first.
The hub does not use it yet (issue 14).
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from typing import Any

from ..message import Agent, Message
from ..store.base import AGENT_FIELDS
from .codec import decode, encode
from .redis import RedisEngine

__all__ = ["RedisState"]

Reactions = tuple[tuple[str, tuple[str, ...]], ...]

#: KEYS: the log, the changed ids. ARGV: the prefix of change hashes, how many at most.
#: Forgets the changes of messages trimmed from the log (ids below its oldest entry).
_PRUNE = """
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
if not first then return 0 end
local oldest = string.match(first[1], '^(%d+)')
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. oldest, 'LIMIT', 0, tonumber(ARGV[#ARGV]))
for _, id in ipairs(ids) do redis.call('DEL', ARGV[#ARGV - 1] .. id) end
if #ids > 0 then redis.call('ZREM', KEYS[2], unpack(ids)) end
return #ids
"""
#: KEYS: the log, the changed ids, the message's change hash. ARGV: id, its new state, the text it
#: replaces, '1' to keep that text, then the prune's ARGV. Nothing for a message the log does not
#: have; each change also forgets a few changes of trimmed messages.
_REPLACE = (
    """
if #redis.call('XRANGE', KEYS[1], ARGV[1] .. '-0', ARGV[1] .. '-0') == 0 then return 0 end
if ARGV[4] == '1' then
  local kept = redis.call('HGET', KEYS[3], 'v')
  local versions = kept and cjson.decode(kept) or {}
  table.insert(versions, ARGV[3])
  redis.call('HSET', KEYS[3], 'v', cjson.encode(versions))
end
redis.call('HSET', KEYS[3], 'm', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[1])
"""
    + _PRUNE
)

#: KEYS: a transport's map, its order of first mapping, its counter. ARGV: external id, hub id,
#: the prefix of the transport's reverse sets. An external id mapped again moves to the new hub id.
_MAP = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old and old ~= ARGV[2] then redis.call('ZREM', ARGV[3] .. old, ARGV[1]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local seq = redis.call('HGET', KEYS[2], ARGV[1])
if not seq then
  seq = redis.call('INCR', KEYS[3])
  redis.call('HSET', KEYS[2], ARGV[1], seq)
end
redis.call('ZADD', ARGV[3] .. ARGV[2], seq, ARGV[1])
return 1
"""


def _agent_fields(agent: Agent) -> dict[str, str]:
    return {name: json.dumps(value) for name, value in asdict(agent).items()}


def _agent(fields: dict[str, str]) -> Agent:
    values: dict[str, Any] = {name: json.loads(text) for name, text in fields.items()}
    for name in ("command", "allow"):
        if values.get(name) is not None:
            values[name] = tuple(values[name])
    return Agent(**values)


def _reactions(text: str) -> Reactions:
    return tuple((emoji, tuple(users)) for emoji, users in json.loads(text))


class RedisState:
    """The roster, id maps, state and message changes every node shares, in ``engine``'s Redis."""

    def __init__(self, engine: RedisEngine) -> None:
        self._engine = engine
        self._prefix = engine._prefix
        self._scripts: dict[str, Any] = {}

    @property
    def _r(self) -> Any:
        """The engine's client (its replies are ``str``: it decodes them)."""
        return self._engine._r

    def _key(self, *parts: object) -> str:
        return ":".join([self._prefix, *map(str, parts)])

    def _script(self, name: str, source: str) -> Any:
        if name not in self._scripts:
            self._scripts[name] = self._r.register_script(source)
        return self._scripts[name]

    # the roster ------------------------------------------------------------
    async def list_agents(self) -> list[Agent]:
        r = self._r
        names = sorted(await self._engine._call("read the roster", lambda: r.smembers(self._key("agents"))))

        async def read() -> Any:
            pipe = r.pipeline(transaction=False)
            for name in names:
                pipe.hgetall(self._key("agent", name))
            return await pipe.execute()

        found = await self._engine._call("read the roster", read) if names else []
        return [_agent(fields) for fields in found if fields]

    async def get_agent(self, name: str) -> Agent | None:
        r = self._r
        fields = await self._engine._call("read the roster", lambda: r.hgetall(self._key("agent", name)))
        return _agent(fields) if fields else None

    async def save_agent(self, agent: Agent) -> None:
        """Add an agent, or replace the one with the same name."""

        async def write() -> None:
            pipe = self._r.pipeline(transaction=True)
            key = self._key("agent", agent.name)
            pipe.delete(key).hset(key, mapping=_agent_fields(agent)).sadd(self._key("agents"), agent.name)
            await pipe.execute()

        await self._engine._call("keep the roster", write)

    async def remove_agent(self, name: str) -> bool:
        """Remove an agent; False when there was none of that name."""

        async def write() -> Any:
            pipe = self._r.pipeline(transaction=True)
            pipe.srem(self._key("agents"), name).delete(self._key("agent", name))
            return await pipe.execute()

        removed, deleted = await self._engine._call("keep the roster", write)
        return bool(removed or deleted)

    async def update_agent(self, name: str, **fields: Any) -> Agent | None:
        """Change some fields of an agent (status, current_task, progress, ...), only when it exists."""
        unknown = set(fields) - AGENT_FIELDS
        if unknown:
            raise TypeError(f"unknown agent fields: {sorted(unknown)}")
        key = self._key("agent", name)
        changed: list[Agent | None] = [None]

        async def change(pipe: Any) -> None:
            current = await pipe.hgetall(key)
            if not current:
                pipe.multi()
                return
            agent = replace(_agent(current), **fields)
            pipe.multi()
            pipe.hset(key, mapping=_agent_fields(agent))
            changed[0] = agent

        await self._engine._call("keep the roster", lambda: self._r.transaction(change, key))
        return changed[0]

    # the transports' id maps -----------------------------------------------
    async def map_external(self, transport: str, hub_id: int, external_id: str) -> None:
        """Remember that ``hub_id`` is ``external_id`` on ``transport``."""
        keys = [self._key("ext", transport), self._key("ext-seq", transport), self._key("ext-counter", transport)]
        args = [external_id, str(hub_id), self._key("ext-rev", transport, "")]
        script = self._script("map", _MAP)
        await self._engine._call("keep the id maps", lambda: script(keys=keys, args=args))

    async def hub_id_for(self, transport: str, external_id: str) -> int | None:
        r = self._r
        found = await self._engine._call("read the id maps", lambda: r.hget(self._key("ext", transport), external_id))
        return None if found is None else int(found)

    async def external_ids_for(self, transport: str, hub_id: int) -> list[str]:
        key = self._key("ext-rev", transport, hub_id)
        found: list[str] = await self._engine._call("read the id maps", lambda: self._r.zrange(key, 0, -1))
        return list(found)

    # the key-value state ---------------------------------------------------
    async def get_state(self, key: str) -> str | None:
        found = await self._engine._call("read the state", lambda: self._r.hget(self._key("state"), key))
        return None if found is None else str(found)

    async def set_state(self, key: str, value: str | None) -> None:
        """Set a value; ``None`` deletes it."""
        r, state = self._r, self._key("state")
        await self._engine._call(
            "keep the state", lambda: r.hdel(state, key) if value is None else r.hset(state, key, value)
        )

    # message changes -------------------------------------------------------
    async def replace(self, message: Message, previous: Message) -> None:
        """Lay ``message`` over the logged one of its id; a text it replaces is kept, unless ``previous``
        was an answer still being written. Nothing for a message the log does not have."""
        keep = not previous.streaming and message.text != previous.text
        keys = [self._engine._keys["log"], self._key("changed"), self._key("change", message.id)]
        args = [str(message.id), encode(message), previous.text, "1" if keep else "0", self._key("change", ""), 10]
        script = self._script("replace", _REPLACE)
        await self._engine._call("keep the change", lambda: script(keys=keys, args=args))

    async def react(self, message_id: int, emoji: str, user_id: str, on: bool) -> Reactions:
        """Add (``on``) or remove one person's reaction; every reaction of the message after it."""
        key = self._key("change", message_id)
        answer: list[Reactions] = [()]

        async def change(pipe: Any) -> None:
            kept = await pipe.hget(key, "r")
            if kept is None:
                logged = await self._logged(message_id, pipe)
                if logged is None:
                    pipe.multi()
                    return
                kept = json.dumps(logged.reactions)
            by_emoji = {e: list(users) for e, users in _reactions(kept)}
            users = by_emoji.setdefault(emoji, [])
            if on and user_id not in users:
                users.append(user_id)
            elif not on and user_id in users:
                users.remove(user_id)
            answer[0] = tuple((e, tuple(u)) for e, u in by_emoji.items() if u)
            pipe.multi()
            pipe.hset(key, "r", json.dumps(answer[0]))
            pipe.zadd(self._key("changed"), {str(message_id): message_id})

        await self._engine._call("keep the reaction", lambda: self._r.transaction(change, key))
        return answer[0]

    async def prune(self, limit: int = 1000) -> int:
        """Forget the changes of up to ``limit`` messages trimmed from the log; how many were forgotten.
        Each edit does a few of these already; a node on duty may run it to catch up."""
        keys = [self._engine._keys["log"], self._key("changed")]
        args = [self._key("change", ""), limit]
        script = self._script("prune", _PRUNE)
        return int(await self._engine._call("forget old changes", lambda: script(keys=keys, args=args)))

    async def versions(self, message_id: int) -> list[str]:
        """The texts a message had before its edits and deletion, oldest first."""
        r, key = self._r, self._key("change", message_id)
        kept = await self._engine._call("read the change", lambda: r.hget(key, "v"))
        return [] if kept is None else [str(text) for text in json.loads(kept)]

    async def _logged(self, message_id: int, client: Any) -> Message | None:
        """The message as the log has it, without its changes."""
        number = f"{message_id}-0"
        found = await client.xrange(self._engine._keys["log"], number, number)
        return decode(message_id, found[0][1]["m"]) if found else None

    async def get(self, message_id: int) -> Message | None:
        """The message of ``message_id`` as it is now, its changes laid over it; None when not in the log."""
        logged = await self._engine._call("read the log", lambda: self._logged(message_id, self._r))
        return None if logged is None else (await self.overlay([logged]))[0]

    async def overlay(self, messages: list[Message]) -> list[Message]:
        """``messages`` as read from the log, each as it is now: its changes laid over it."""
        if not messages:
            return []

        async def read() -> Any:
            pipe = self._r.pipeline(transaction=False)
            for message in messages:
                pipe.hmget(self._key("change", message.id), ["m", "r"])
            return await pipe.execute()

        found = await self._engine._call("read the changes", read)
        out = []
        for message, (state, reactions) in zip(messages, found, strict=True):
            current = message if state is None else decode(message.id, state)
            kept = message.reactions if reactions is None else _reactions(reactions)
            out.append(replace(current, reactions=kept))
        return out
