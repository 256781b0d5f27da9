"""Telegram people as hub identities: ``tg:<id>``, their names and roles.

Each Telegram person is authenticated once per run as ``tg:<numeric id>``
(vouched for by the transport, ``verified``), with the role
``telegram.roles`` gives their id, else ``telegram.role``. Their username or
full name is only what the web chat shows. A person who linked their account
to a web identity (``/link``) is whoever the hub says they are.

The names are remembered (in memory and in the store under
``telegram:name:<id>``) so that a web mention of a Telegram person without a
username (``@tg:123``) can be written as a real Telegram mention, which
notifies them; usernames seen are remembered so that an ``@username`` written
in Telegram also mentions that person's hub identity.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from telegram import User

from chatbus.core.errors import StoreError
from chatbus.core.message import Credentials, Identity, name_key

from .errors import Stopped
from .inbound import Sender, user_sender
from .presence import Presence
from .session import NAME, Session

if TYPE_CHECKING:
    from chatbus.core.hub import Hub

__all__ = ["People"]

log = logging.getLogger("chatbus.telegram")


class People:
    """Who is who among the Telegram people this run has seen."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.presence = Presence(session)
        self._identities: dict[tuple[int, str, str | None], Identity] = {}
        self._names: dict[int, str] = {}
        self._usernames: dict[str, int] = {}

    def reset(self) -> None:
        """A new run: authenticate Telegram people again (roles or links may have changed)."""
        self._identities.clear()
        self.presence = Presence(self._session)

    async def identity(self, sender: Sender) -> Identity:
        """The hub identity of a Telegram person (``AuthError`` when the hub refuses them)."""
        hub = self._hub()
        # Authenticated again when the name, or the web identity the account is linked to, changes.
        cache_key = (sender.telegram_id, sender.display_name, hub.links.person_of(sender.user_id))
        identity = self._identities.get(cache_key)
        if identity is not None:
            return identity
        credentials = Credentials(
            user_id=sender.user_id,
            role=self._session.settings.role_for(sender.user_id),
            transport=NAME,
            extra={"verified": True, "display_name": sender.display_name, "telegram_id": sender.telegram_id},
        )
        identity = await hub.authenticate(credentials)
        self._identities[cache_key] = identity
        await self._learn(sender)
        return identity

    async def active(self, sender: Sender) -> Identity:
        """The identity of a Telegram person who just did something, online from now on."""
        identity = await self.identity(sender)
        await self.presence.posted(self._hub(), identity)
        return identity

    async def _learn(self, sender: Sender) -> None:
        if sender.username:
            self._usernames[sender.username.lower()] = sender.telegram_id
        if self._names.get(sender.telegram_id) == sender.display_name:
            return
        self._names[sender.telegram_id] = sender.display_name
        try:
            await self._session.store().set_state(f"telegram:name:{sender.telegram_id}", sender.display_name)
        except StoreError as exc:
            log.debug("telegram: cannot remember the name of %s: %s", sender.user_id, exc)

    async def name_of(self, telegram_id: int) -> str | None:
        """What Telegram person ``telegram_id`` is called, if they were ever seen."""
        name = self._names.get(telegram_id)
        if name is None:
            try:
                name = await self._session.store().get_state(f"telegram:name:{telegram_id}")
            except (StoreError, Stopped):
                return None
            if name:
                self._names[telegram_id] = name
        return name

    async def mentions(self, usernames: list[str], mentioned: list[tuple[User, str]]) -> list[str]:
        """Hub names for the people a Telegram message mentions.

        An ``@username`` of someone seen here is their ``tg:<id>`` (the hub
        parses the ``@username`` itself). A person mentioned without a
        username is their ``tg:<id>``; when the words that mention them name
        an agent, as the hub's parser would read ``@words``, that agent too.
        """
        found: list[str] = []
        for username in usernames:
            telegram_id = self._usernames.get(username.lower())
            if telegram_id is not None:
                found.append(f"tg:{telegram_id}")
        hub = self._hub()
        agents = {name_key(name): name for name in hub.agents}
        for user, words in mentioned:
            found.append(user_sender(user).user_id)
            parsed = await hub.hooks.parse("@" + words.strip().lstrip("@"))
            for name in parsed.mentions if parsed is not None else ():
                if name_key(name) in agents:
                    found.append(agents[name_key(name)])
        return list(dict.fromkeys(found))

    def _hub(self) -> Hub:
        hub = self._session.hub
        if hub is None:
            raise Stopped
        return hub
