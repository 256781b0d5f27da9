"""A store that keeps everything in memory; for tests and throwaway hubs."""

from __future__ import annotations

import bisect
from dataclasses import replace

from ..message import DEFAULT_ROOM, Agent, Attachment, Message
from .base import Store

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """Everything in memory; for tests and throwaway hubs."""

    def __init__(self) -> None:
        super().__init__()
        self._messages: list[Message] = []
        self._ids: list[int] = []
        self._agents: dict[str, Agent] = {}
        self._external: dict[tuple[str, str], int] = {}
        self._state: dict[str, str] = {}
        self._versions: dict[int, list[str]] = {}
        self._files: dict[str, tuple[Attachment, float]] = {}
        self._links: dict[int, tuple[str, ...]] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def append(self, message: Message) -> None:
        self._messages.append(message)
        self._ids.append(message.id)
        if message.attachments:
            self._links[message.id] = tuple(a.id for a in message.attachments)

    async def get(self, message_id: int) -> Message | None:
        index = bisect.bisect_left(self._ids, message_id)
        if index < len(self._ids) and self._ids[index] == message_id:
            return self._messages[index]
        return None

    async def since(self, after_id: int, limit: int, room: str | None = None) -> list[Message]:
        start = bisect.bisect_right(self._ids, after_id)
        out: list[Message] = []
        for message in self._messages[start:]:
            if room is None or message.room == room:
                out.append(message)
                if len(out) >= limit:
                    break
        return out

    async def before(
        self, before_id: int | None, limit: int, room: str | None = DEFAULT_ROOM
    ) -> tuple[list[Message], bool]:
        end = len(self._ids) if before_id is None else bisect.bisect_left(self._ids, before_id)
        picked: list[Message] = []
        index = end - 1
        while index >= 0 and len(picked) <= limit:
            message = self._messages[index]
            if room is None or message.room == room:
                picked.append(message)
            index -= 1
        has_more = len(picked) > limit
        return list(reversed(picked[:limit])), has_more

    async def rooms(self) -> list[str]:
        return list(dict.fromkeys(message.room for message in reversed(self._messages)))

    async def replace(self, message: Message, previous: Message) -> None:
        index = bisect.bisect_left(self._ids, message.id)
        if index < len(self._ids) and self._ids[index] == message.id:
            if not previous.streaming and message.text != previous.text:
                self._versions.setdefault(message.id, []).append(previous.text)
            self._messages[index] = replace(message, reactions=self._messages[index].reactions)

    async def react(
        self, message_id: int, emoji: str, user_id: str, on: bool
    ) -> tuple[tuple[str, tuple[str, ...]], ...]:
        index = bisect.bisect_left(self._ids, message_id)
        if index >= len(self._ids) or self._ids[index] != message_id:
            return ()
        by_emoji = {e: list(users) for e, users in self._messages[index].reactions}
        users = by_emoji.setdefault(emoji, [])
        if on and user_id not in users:
            users.append(user_id)
        elif not on and user_id in users:
            users.remove(user_id)
        reactions = tuple((e, tuple(u)) for e, u in by_emoji.items() if u)
        self._messages[index] = replace(self._messages[index], reactions=reactions)
        return reactions

    async def versions(self, message_id: int) -> list[str]:
        return list(self._versions.get(message_id, ()))

    async def list_agents(self) -> list[Agent]:
        return sorted(self._agents.values(), key=lambda agent: agent.name)

    async def get_agent(self, name: str) -> Agent | None:
        return self._agents.get(name)

    async def save_agent(self, agent: Agent) -> None:
        self._agents[agent.name] = agent

    async def remove_agent(self, name: str) -> bool:
        return self._agents.pop(name, None) is not None

    async def map_external(self, transport: str, hub_id: int, external_id: str) -> None:
        self._external[(transport, external_id)] = hub_id

    async def hub_id_for(self, transport: str, external_id: str) -> int | None:
        return self._external.get((transport, external_id))

    async def external_ids_for(self, transport: str, hub_id: int) -> list[str]:
        return [ext for (name, ext), hid in self._external.items() if name == transport and hid == hub_id]

    async def add_file(self, attachment: Attachment, uploaded_at: float) -> None:
        self._files.setdefault(attachment.id, (attachment, uploaded_at))

    async def get_file(self, file_id: str) -> Attachment | None:
        entry = self._files.get(file_id)
        return entry[0] if entry is not None else None

    async def touch_file(self, file_id: str, uploaded_at: float) -> Attachment | None:
        entry = self._files.get(file_id)
        if entry is None:
            return None
        self._files[file_id] = (entry[0], uploaded_at)
        return entry[0]

    async def files_total(self) -> int:
        return sum(attachment.size for attachment, _ in self._files.values())

    def _carriers(self, file_id: str) -> list[int]:
        return [mid for mid, ids in self._links.items() if file_id in ids]

    async def orphan_files(self, uploaded_before: float, limit: int = 1000) -> list[Attachment]:
        carried = {fid for ids in self._links.values() for fid in ids}
        found = [a for fid, (a, at) in self._files.items() if at < uploaded_before and fid not in carried]
        return found[:limit]

    async def remove_file(self, file_id: str, *, unused_since: float | None) -> Attachment | None:
        entry = self._files.get(file_id)
        if entry is None:
            return None
        carriers = self._carriers(file_id)
        if unused_since is not None and (carriers or entry[1] >= unused_since):
            return None
        for mid in carriers:
            message = await self.get(mid)
            if message is not None and not message.deleted:
                return None
        for mid in carriers:
            self._links[mid] = tuple(fid for fid in self._links[mid] if fid != file_id)
        del self._files[file_id]
        return entry[0]

    async def message_file_ids(self, message_id: int) -> list[str]:
        return list(self._links.get(message_id, ()))

    async def get_state(self, key: str) -> str | None:
        return self._state.get(key)

    async def set_state(self, key: str, value: str | None) -> None:
        if value is None:
            self._state.pop(key, None)
        else:
            self._state[key] = value
