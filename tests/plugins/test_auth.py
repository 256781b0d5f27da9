"""The built-in authentication: open and token modes."""

from __future__ import annotations

import pytest

from chatbus import AuthError, ConfigError, Credentials, Identity, Settings
from chatbus.core.transport import BaseTransport
from chatbus.testing import make_hub

TOKENS = {"t-alice": {"userId": "alice", "role": "manager"}, "t-bob": {"userId": "bob"}}


async def authenticate(settings: Settings, credentials: Credentials) -> Identity:
    hub = make_hub(settings=settings)
    async with hub:
        return await hub.authenticate(credentials)


async def test_open_mode_accepts_a_valid_id_with_its_role() -> None:
    identity = await authenticate(Settings.isolated(db=":memory:"), Credentials(user_id="carol.d", role="designer"))
    assert identity == Identity("carol.d", "designer", "human")


async def test_open_mode_defaults_the_role_to_user() -> None:
    identity = await authenticate(Settings.isolated(db=":memory:"), Credentials(user_id="carol"))
    assert identity.role == "user"


@pytest.mark.parametrize("user_id", ["", "has space", "x" * 65, 42, None, ["alice"], "<script>", "ünïcode"])
async def test_open_mode_refuses_invalid_ids(user_id: object) -> None:
    with pytest.raises(AuthError) as refused:
        await authenticate(Settings.isolated(db=":memory:"), Credentials(user_id=user_id))
    assert "1-64 Latin letters (a-z, A-Z)" in str(refused.value)


@pytest.mark.parametrize("role", [42, "x" * 65, "bad\nrole"])
async def test_open_mode_refuses_invalid_roles(role: object) -> None:
    with pytest.raises(AuthError) as refused:
        await authenticate(Settings.isolated(db=":memory:"), Credentials(user_id="carol", role=role))
    assert "role" in str(refused.value)


def token_settings() -> Settings:
    return Settings.isolated(db=":memory:", auth={"mode": "token", "tokens": TOKENS})


async def test_token_mode_takes_the_id_and_role_from_the_configuration() -> None:
    identity = await authenticate(token_settings(), Credentials(user_id="alice", role="intern", token="t-alice"))
    assert identity == Identity("alice", "manager", "human")
    bob = await authenticate(token_settings(), Credentials(user_id="bob", token="t-bob"))
    assert bob.role == "user"


@pytest.mark.parametrize(
    ("credentials", "words"),
    [
        (Credentials(user_id="alice"), "Wrong or missing token"),
        (Credentials(user_id="alice", token="guess"), "Wrong or missing token"),
        (Credentials(user_id="alice", token=123), "Wrong or missing token"),
        (Credentials(user_id="bob", token="t-alice"), "belongs to another user id"),
    ],
)
async def test_token_mode_refuses_wrong_tokens(credentials: Credentials, words: str) -> None:
    with pytest.raises(AuthError) as refused:
        await authenticate(token_settings(), credentials)
    assert words in str(refused.value)


async def test_a_transport_verified_user_is_trusted_in_token_mode() -> None:
    identity = await authenticate(
        token_settings(),
        Credentials(
            user_id="tg_dave", role="user", transport="telegram", extra={"verified": True, "display_name": "Dave"}
        ),
    )
    assert identity == Identity("tg_dave", "user", "human", "Dave", vouched_by="telegram")


class PublicTransport(BaseTransport):
    name = "public"

    def listens_publicly(self) -> bool:
        return True

    async def deliver(self, message: object) -> None:
        pass


async def test_open_mode_refuses_to_start_on_a_public_address() -> None:
    hub = make_hub(transports=[PublicTransport()])
    with pytest.raises(ConfigError) as refused:
        await hub.start()
    assert "--allow-open-auth" in str(refused.value)
    assert not hub.running


async def test_open_mode_on_a_public_address_when_explicitly_allowed() -> None:
    settings = Settings.isolated(db=":memory:", auth={"allow_open_public": True})
    async with make_hub(settings=settings, transports=[PublicTransport()]) as hub:
        assert hub.running


async def test_token_mode_may_listen_publicly() -> None:
    async with make_hub(settings=token_settings(), transports=[PublicTransport()]) as hub:
        assert hub.running
