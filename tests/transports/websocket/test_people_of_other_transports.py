"""People of another transport, as a WebSocket client that signs in later sees them."""

from __future__ import annotations

from chatbus import Credentials

from .helpers import running


async def test_a_telegram_person_online_before_you_sign_in_is_listed_by_name_and_transport() -> None:
    async with running() as server:
        grace = Credentials(user_id="tg:42", transport="telegram", extra={"verified": True, "display_name": "Grace"})
        await server.hub.connect(await server.hub.authenticate(grace), "telegram")
        ann = await server.client("ann")
        users = {user["id"]: user for user in ann.auth["users"]}
        # The page shows people by name: without these it could only show "tg:42" until Grace spoke.
        assert users["tg:42"]["displayName"] == "Grace" and users["tg:42"]["transport"] == "telegram"
        # A web person is their id, on the reader's own transport: nothing more to say.
        assert users["ann"] == {"id": "ann", "role": "user", "kind": "human", "status": "online"}
