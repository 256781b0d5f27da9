"""Linked accounts: one person on several transports, posting as one.

A person signed in on the web asks for a code (``/link``); it is told to
them alone, and is good once, for ten minutes. Sending ``/link CODE`` from
another transport (a Telegram account, ``tg:12345``) links that account to
the web identity: from then on it signs in, and posts, as that person.
``/unlink`` from either side undoes it. Links are kept in the store, so
they outlive restarts. Display names never link anyone.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ChatbusError, InvalidMessage
from .message import QUALIFIED_ID
from .store import Store

__all__ = ["CODE_LIFETIME", "Links"]

log = logging.getLogger("chatbus.hub")

#: The store state key under which links are kept: ``{account: person}``.
STATE_KEY = "identity.links"
#: Seconds a link code is good for.
CODE_LIFETIME = 600.0


@dataclass(frozen=True, slots=True)
class _Offer:
    person: str
    expires: float


class Links:
    """Who is linked to whom, and the codes on offer."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock
        self._links: dict[str, str] = {}
        self._offers: dict[str, _Offer] = {}
        #: Called after each change is saved (several nodes: the others read the links again).
        self.saved: Callable[[], None] | None = None

    async def load(self) -> None:
        raw = await self.store.get_state(STATE_KEY)
        try:
            loaded = json.loads(raw) if raw else {}
        except ValueError:
            log.error("the linked accounts could not be read; starting with none")
            loaded = {}
        self._links = {str(account): str(person) for account, person in dict(loaded).items()}

    async def _save(self) -> None:
        await self.store.set_state(STATE_KEY, json.dumps(self._links) if self._links else None)
        if self.saved is not None:
            self.saved()

    def person_of(self, account: str) -> str | None:
        """The web identity an account (``tg:12345``) is linked to, if any."""
        return self._links.get(account)

    def accounts_of(self, person: str) -> list[str]:
        return sorted(account for account, linked in self._links.items() if linked == person)

    def offer(self, person: str) -> str:
        """A one-time code that links an account of another transport to ``person``."""
        if QUALIFIED_ID.fullmatch(person):
            raise InvalidMessage("Ask for a link code where you signed in with your own name (the web chat).")
        now = self.clock()
        self._offers = {code: offer for code, offer in self._offers.items() if offer.expires > now}
        code = f"{secrets.randbelow(1000):03d}-{secrets.randbelow(1000):03d}"
        while code in self._offers:
            code = f"{secrets.randbelow(1000):03d}-{secrets.randbelow(1000):03d}"
        self._offers[code] = _Offer(person, now + CODE_LIFETIME)
        return code

    async def redeem(self, code: str, account: str) -> str:
        """Link ``account`` to whoever was offered ``code``; returns that person."""
        offer = self._offers.pop(code.strip(), None)
        if not QUALIFIED_ID.fullmatch(account):
            # Said in the web chat, the code is now in everyone's view (and relayed): nobody may use it.
            void = " That code is now void, as everyone here saw it; ask for a new one with /link." if offer else ""
            raise InvalidMessage(f"Send /link CODE from the account you want to link, not from the web chat.{void}")
        if offer is None or offer.expires <= self.clock():
            raise ChatbusError("That link code is wrong or has expired; ask for a new one with /link in the web chat.")
        self._links[account] = offer.person
        await self._save()
        log.info("account %s is linked to %s", account, offer.person)
        return offer.person

    async def unlink(self, who: str) -> list[str]:
        """Undo the links of a person or of one account; returns the accounts unlinked."""
        gone = [account for account, person in self._links.items() if who in (account, person)]
        for account in gone:
            del self._links[account]
        if gone:
            await self._save()
            log.info("unlinked %s", ", ".join(gone))
        return gone
