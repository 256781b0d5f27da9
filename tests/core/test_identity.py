"""Nobody poses as an agent, the system or the whole team, and open mode keeps to its limits."""

from __future__ import annotations

import logging

import pytest

from chatbus import Agent, AuthError, ConfigError, Credentials, Hub, InvalidMessage, MemoryStore, Settings
from chatbus.core.message import name_key
from chatbus.testing import MemoryTransport, make_hub


@pytest.mark.parametrize(
    ("claimed", "taken"),
    [
        ("alice", "alice"),
        ("Alice", "alice"),
        ("ALICE", "alice"),
        ("alice-bot", "alice"),  # "@alice-bot" mentions alice
        ("ALICE-BOT", "alice"),
        ("System", "system"),
        ("TEAM", "team"),
    ],
)
async def test_a_person_cannot_take_a_name_that_passes_for_an_agent_or_a_reserved_one(claimed: str, taken: str) -> None:
    hub = make_hub()
    async with hub:
        await hub.hire("alice", "developer")
        with pytest.raises(AuthError) as refused:
            await hub.authenticate(Credentials(user_id=claimed))
    assert repr(taken) in str(refused.value)
    assert "choose another user id" in str(refused.value)


@pytest.mark.parametrize("claimed", ["\u0430lice", "\uff21lice", "s\u0443stem", "\u0391LICE"])
async def test_look_alike_letters_of_other_scripts_never_pass(claimed: str) -> None:
    """Web user ids are ASCII; a transport that vouches for its users (verified
    credentials) is held to the same rule, so a look-alike never reaches the chat."""
    hub = make_hub()
    async with hub:
        await hub.hire("alice", "developer")
        for extra in ({}, {"verified": True}):
            with pytest.raises(AuthError):
                await hub.authenticate(Credentials(user_id=claimed, extra=extra))


@pytest.mark.parametrize("name", ["alicia", "bob", "alice.smith", "teamwork", "systems"])
async def test_names_that_only_look_similar_to_a_person_are_fine(name: str) -> None:
    hub = make_hub()
    async with hub:
        await hub.hire("alice", "developer")
        identity = await hub.authenticate(Credentials(user_id=name))
    assert identity.user_id == name


def test_name_key_reads_look_alikes_as_latin() -> None:
    assert {name_key(n) for n in ("Alice", "ALICE", "\u0430lice", "\u0391lice", "\uff21lice")} == {"alice"}
    assert name_key("bob") != name_key("b0b")


@pytest.mark.parametrize("user_id", ["..", ".", "---", "_"])
async def test_a_user_id_needs_a_letter_or_digit(user_id: str) -> None:
    hub = make_hub()
    async with hub:
        with pytest.raises(AuthError, match="User ids are"):
            await hub.authenticate(Credentials(user_id=user_id))


async def test_an_agent_cannot_be_hired_under_the_name_of_a_person_online_or_a_reserved_one() -> None:
    hub = make_hub()
    async with hub:
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        await memory.say("Carol", "hello")  # Carol is online now
        with pytest.raises(InvalidMessage, match="'Carol' is a person who is online now"):
            await hub.hire("carol", "developer")
        for reserved in ("System", "team"):
            with pytest.raises(InvalidMessage, match="not 'system' or 'team'"):
                await hub.hire(reserved, "developer")


def settings(**auth: object) -> Settings:
    return Settings.isolated(db=":memory:", auth=auth)


async def test_open_mode_may_limit_the_roles_a_client_claims() -> None:
    hub = make_hub(settings=settings(open_roles="developer,tester"))
    async with hub:
        assert (await hub.authenticate(Credentials(user_id="ann", role="tester"))).role == "tester"
        assert (await hub.authenticate(Credentials(user_id="ann"))).role == "user"  # no claim: the default
        with pytest.raises(AuthError) as refused:
            await hub.authenticate(Credentials(user_id="mallory", role="manager"))
    assert str(refused.value) == "The role 'manager' cannot be chosen here; choose one of developer, tester."


async def test_open_mode_accepts_any_claimed_role_by_default() -> None:
    hub = make_hub()
    async with hub:
        assert (await hub.authenticate(Credentials(user_id="ann", role="manager"))).role == "manager"


def test_token_mode_without_tokens_refuses_to_start_and_says_what_to_set() -> None:
    with pytest.raises(ConfigError) as refused:
        Hub(settings(mode="token"), store=MemoryStore(), transports=[], load_entrypoints=False)
    assert "no tokens are configured" in str(refused.value)
    assert "CHATBUS_AUTH__TOKENS" in str(refused.value)


async def test_open_mode_warns_once_when_agents_run_commands(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    await store.open()
    await store.save_agent(Agent("alice", "developer", ("worker", "{task}")))
    caplog.set_level(logging.WARNING, logger="chatbus.auth")
    hub = Hub(Settings.isolated(db=":memory:"), store=store, transports=[], load_entrypoints=False)
    async with hub:
        pass
    warnings = [r.getMessage() for r in caplog.records if r.name == "chatbus.auth"]
    assert len(warnings) == 1
    assert "anyone who can reach this chat can give work to alice" in warnings[0]
    assert "CHATBUS_AUTH__MODE=token" in warnings[0]


async def test_a_transport_vouches_for_its_own_qualified_ids_which_no_web_user_can_claim() -> None:
    hub = make_hub()
    async with hub:
        await hub.hire("alice", "developer")
        first = await hub.authenticate(Credentials(user_id="tg:101", extra={"verified": True, "display_name": "ana"}))
        second = await hub.authenticate(Credentials(user_id="tg:102", extra={"verified": True, "display_name": "ana"}))
        assert (first.user_id, first.display_name) == ("tg:101", "ana")
        assert (second.user_id, second.display_name) == ("tg:102", "ana")  # two people, told apart by id
        with pytest.raises(AuthError, match="User ids are"):
            await hub.authenticate(Credentials(user_id="tg:101"))  # a web user cannot claim one
        posing = await hub.authenticate(
            Credentials(user_id="tg:103", extra={"verified": True, "display_name": "Alice"})
        )
        assert posing.display_name == "Alice (tg:103)"  # shown so nobody takes it for agent alice


@pytest.mark.parametrize("user_id", ["System", "team-bot", "tg:42", "a b", ".."])
def test_a_token_for_a_name_nobody_can_sign_in_as_stops_start_up(user_id: str) -> None:
    tokens = {"s3cret-token": {"userId": user_id}, "fine": {"userId": "ann"}}
    with pytest.raises(ConfigError) as refused:
        Hub(settings(mode="token", tokens=tokens), store=MemoryStore(), transports=[], load_entrypoints=False)
    message = str(refused.value)
    assert message.startswith(f"a token in auth.tokens is for user id {user_id!r}, which nobody can sign in as")
    assert "s3cret-token" not in message  # the operator's secret never reaches a log


async def test_token_mode_warns_of_a_token_whose_name_an_agent_has(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    await store.open()
    await store.save_agent(Agent("alice", "developer"))
    caplog.set_level(logging.WARNING, logger="chatbus.auth")
    tokens = {"t1": {"userId": "Alice"}, "t2": {"userId": "bob"}}
    async with Hub(settings(mode="token", tokens=tokens), store=store, transports=[], load_entrypoints=False):
        pass
    warnings = [r.getMessage() for r in caplog.records if r.name == "chatbus.auth"]
    assert warnings == ["the token for 'Alice' cannot sign in while agent alice is hired"]


async def test_a_name_in_another_script_is_told_which_letters_a_user_id_takes() -> None:
    hub = make_hub()
    async with hub:
        with pytest.raises(AuthError) as refused:
            await hub.authenticate(Credentials(user_id="Иван"))
    # "letters" alone would puzzle Ivan: his name is letters.
    assert (
        str(refused.value) == "User ids are 1-64 Latin letters (a-z, A-Z), digits, '_', '-' or '.'; choose another one."
    )
