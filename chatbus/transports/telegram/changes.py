"""Edits, deletions and reactions from the hub, applied where the message went in Telegram.

Where a hub message went in a chat is in the store's id map (``merge.py``
says how it is written): the bot's own messages (one, or the parts of a
long text, or one line of a merged message) and, for a message written in
Telegram, the person's original.

- An edit changes the bot's messages (``editMessageText``, or the caption of
  its photo, file or album, ``files_out.py``): each part of a
  split message gets its new part, parts the new text needs beyond the old
  ones are sent as replies to the last, parts it no longer needs are
  deleted; a merged message is written again with the new line. The
  person's own Telegram message is theirs to edit, not the bot's.
- A deletion deletes the bot's messages (``deleteMessage``) and tries the
  person's original too (Telegram allows that to a group admin with the
  right to delete messages); a merged message is written again without the
  line, or deleted with its last line.
- Reactions: a bot has one reaction per message, from the emoji Telegram
  allows (:data:`telegram.constants.ReactionEmoji`). The bot shows the one
  most used by people outside Telegram (web users and agents) on the
  message's first part, or on the person's original; other emoji are not
  relayed. Telegram people's own reactions are already there.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Container
from typing import TYPE_CHECKING

from telegram.constants import ReactionEmoji

from chatbus.core.message import Message

from .calls import Calls
from .inbound import PREFIX
from .lanes import Change
from .merge import External, external_id, merged, parse_external
from .session import NAME, Session
from .settings import ChatKey

if TYPE_CHECKING:
    from .outbound import Outbound

__all__ = ["ChangeRelay", "bot_reaction", "telegram_emoji"]

log = logging.getLogger("chatbus.telegram")

#: The emoji a bot may react with.
_ALLOWED = frozenset(str(emoji.value) for emoji in ReactionEmoji)
#: Spellings of allowed reactions that web users type.
_ALIASES = {"+1": "👍", "-1": "👎", "❤️": "❤", "heart": "❤", "tada": "🎉", "fire": "🔥", "eyes": "👀"}
#: The most messages one merged Telegram message holds (a bound on reading the map).
_MAX_MERGED = 500


def telegram_emoji(emoji: str) -> str | None:
    """The reaction Telegram allows for ``emoji`` (a variation selector dropped), or None."""
    emoji = _ALIASES.get(emoji, emoji)
    for candidate in (emoji, emoji.replace("\ufe0f", "")):
        if candidate in _ALLOWED:
            return candidate
    return None


def bot_reaction(message: Message, made_in_telegram: Container[tuple[int, str, str]] = ()) -> str | None:
    """The reaction the bot shows for ``message``: the allowed emoji most used by
    people outside Telegram (the first used wins a tie), or None. Reactions made
    in Telegram (by ``tg:`` people, or as ``made_in_telegram`` lists them, by a
    linked account) are already there and do not count."""
    counts: Counter[str] = Counter()
    for emoji, users in message.reactions:
        allowed = telegram_emoji(emoji)
        if allowed is not None:
            counts[allowed] += sum(
                1 for user in users if not user.startswith(PREFIX) and (message.id, user, emoji) not in made_in_telegram
            )
    best = max(counts.values(), default=0)
    return next((emoji for emoji, count in counts.items() if count == best), None) if best else None


def _gone_key(ext: External) -> str:
    """Store key marking a part the bot deleted when an edit made the text shorter
    (the id map keeps it; this says it is no longer there)."""
    return f"telegram:gone:{ext.chat}:{ext.message_id}"


class ChangeRelay:
    """Applies the hub's changes to messages in one chat at a time (called from the chat's lane)."""

    def __init__(self, session: Session, calls: Calls, outbound: Outbound) -> None:
        self._session = session
        self._calls = calls
        self._outbound = outbound
        #: The bot's reaction on each Telegram message it reacted to: (chat, message id) -> emoji.
        self._reactions: dict[tuple[str, int], str | None] = {}

    async def apply(self, chat: ChatKey, change: Change) -> None:
        """Apply ``change`` where its message went in ``chat``."""
        message = change.message
        mine, original = await self._where(chat, message)
        if change.kind == "react":
            await self._react(chat, message, mine, original)
        elif any(ext.position > 1 for ext in mine) or (mine and await self._is_merged(mine[0])):
            await self._rewrite_merged(chat, mine[0])
        elif change.kind == "edit":
            await self._edit(chat, message, mine)
        else:
            for ext in [*mine, *([original] if original else [])]:
                await self._calls.delete(chat, ext.message_id)

    async def _where(self, chat: ChatKey, message: Message) -> tuple[list[External], External | None]:
        """The bot's messages for ``message`` in ``chat``, and the person's original there, if any."""
        names = self._session.state.names(chat)
        original = parse_external(message.client_id or "") if message.transport == NAME else None
        if original is not None and original.chat not in names:
            original = None
        store = self._session.store()
        mine: list[External] = []
        for text in await store.external_ids_for(NAME, message.id):
            found = parse_external(text)
            if found is None or found.chat not in names or found == original:
                continue
            if await store.get_state(_gone_key(found)) is None:
                mine.append(found)
        return mine, original

    async def _is_merged(self, first: External) -> bool:
        return await self._session.store().hub_id_for(NAME, external_id(first.chat, first.message_id, 2)) is not None

    async def _edit(self, chat: ChatKey, message: Message, mine: list[External]) -> None:
        if mine and message.attachments:
            mine = await self._outbound.files.edit(chat, message, mine)  # the caption; the text sent before it
        if not mine:
            return  # not (yet) relayed to this chat, or written here by the person who edits it
        parts = await self._outbound.render(message)
        for ext, part in zip(mine, parts, strict=False):
            await self._calls.edit(chat, ext.message_id, part)
        for ext in mine[len(parts) :]:
            await self._calls.delete(chat, ext.message_id)
            await self._session.store().set_state(_gone_key(ext), "deleted")
        last = mine[-1].message_id
        for part in parts[len(mine) :]:
            sent = await self._calls.send(chat, part, last)
            if sent is None:
                return
            last = sent.message_id
            await self._session.store().map_external(NAME, message.id, external_id(sent.chat.id, sent.message_id))

    async def _rewrite_merged(self, chat: ChatKey, ext: External) -> None:
        """Write a merged Telegram message again from its hub messages as they are now."""
        store = self._session.store()
        lines = []
        for position in range(1, _MAX_MERGED + 1):
            hub_id = await store.hub_id_for(NAME, external_id(ext.chat, ext.message_id, position))
            if hub_id is None:
                break
            message = await store.get(hub_id)
            if message is not None and not message.deleted:
                lines.extend(await self._outbound.render(message))
        if lines:
            await self._calls.edit(chat, ext.message_id, merged(lines))
        else:
            await self._calls.delete(chat, ext.message_id)

    async def _react(self, chat: ChatKey, message: Message, mine: list[External], original: External | None) -> None:
        target = original or next((ext for ext in mine if ext.position == 1), None)
        if target is None:
            return  # the message is one line of a merged one: its reactions are the first line's
        emoji = bot_reaction(message, self._session.reacted_in_telegram)
        key = (target.chat, target.message_id)
        if self._reactions.get(key) == emoji:
            return
        if await self._calls.react(chat, target.message_id, emoji):
            self._reactions[key] = emoji
            if len(self._reactions) > 4096:
                self._reactions.pop(next(iter(self._reactions)))
