"""The hub's pipeline, plugin isolation and transport isolation."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, ClassVar

import pytest

from chatbus import (
    AuthError,
    Credentials,
    Hub,
    Identity,
    InvalidMessage,
    Message,
    MessageTooLarge,
    Parsed,
    PluginError,
    RateDecision,
    RateLimited,
    Settings,
    hookimpl,
)
from chatbus.core.message import AgentStatus, Presence
from chatbus.testing import FakeClock, MemoryTransport, make_hub
from chatbus.transports.websocket.frames import member_entry


class Recorder:
    """Records the order in which hooks see a message."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @hookimpl
    def rate_limit(self, identity: Identity, message: Any) -> None:
        self.calls.append(("rate_limit", message.text))

    @hookimpl
    def parse_message(self, text: str) -> None:
        self.calls.append(("parse_message", text))

    @hookimpl
    def on_message(self, message: Message, hub: Hub) -> None:
        delivered = hub.transports["memory"].delivered  # type: ignore[attr-defined]
        self.calls.append(("on_message", (message.id, [m.id for m in delivered])))


async def test_message_goes_through_rate_limit_parse_store_then_on_message() -> None:
    recorder = Recorder()
    hub = make_hub([recorder])
    async with hub:
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        message = await memory.say("alice", "hello @bob /ignored")
        assert message.id == 1
        assert message.mentions == ("bob",)
        assert await hub.store.get(1) == message
        await memory.wait_for(lambda m: m.id == 1)
        assert [name for name, _ in recorder.calls] == ["rate_limit", "parse_message", "on_message"]
        # on_message runs after the message was stored; delivery is queued before it.
        assert recorder.calls[-1][1][0] == 1


async def test_ids_are_strictly_increasing_across_transports_and_concurrent_senders() -> None:
    first, second = MemoryTransport("one"), MemoryTransport("two")
    settings = Settings.isolated(db=":memory:", rate_limit={"burst": 1000})
    hub = make_hub(settings=settings, transports=[first, second])
    async with hub:
        sent = await asyncio.gather(
            *(t.say(f"user{i % 5}", f"message {i}") for i, t in enumerate([first, second] * 50))
        )
        ids = sorted(m.id for m in sent)
        assert ids == list(range(1, 101))
        await first.wait_for(lambda m: m.id == 100)
        await second.wait_for(lambda m: m.id == 100)
        # Every transport sees every message exactly once, in id order.
        assert [m.id for m in first.delivered] == ids
        assert [m.id for m in second.delivered] == ids


async def test_refused_message_is_neither_stored_nor_delivered() -> None:
    clock = FakeClock()
    hub = make_hub(clock=clock)
    async with hub:
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        for i in range(5):
            await memory.say("alice", f"burst {i}")
        with pytest.raises(RateLimited) as refused:
            await memory.say("alice", "one too many")
        assert refused.value.retry_after == pytest.approx(1.0)
        assert refused.value.code == "RATE_LIMITED"
        assert "Wait 1 second" in str(refused.value)
        await memory.wait_for(lambda m: m.id == 5)
        assert "one too many" not in memory.texts
        assert hub.store.last_id == 5
        clock.advance(1.0)
        accepted = await memory.say("alice", "after the wait")
        assert accepted.id == 6


async def test_agents_and_system_are_not_rate_limited() -> None:
    hub = make_hub()
    async with hub:
        await hub.hire("alice", "developer")
        for i in range(20):
            await hub.send(f"agent line {i}", sender="alice")
            await hub.send(f"system line {i}")
        assert hub.store.last_id == 40
        last = await hub.store.get(40)
        assert last is not None and last.kind == "system" and last.sender == "system"
        first = await hub.store.get(1)
        assert first is not None and first.kind == "agent" and first.sender_role == "developer"


@pytest.mark.parametrize(
    ("text", "error", "words"),
    [
        ("", InvalidMessage, "empty"),
        ("   \n\t ", InvalidMessage, "empty"),
        (42, InvalidMessage, "string"),
        ("x" * 4097, MessageTooLarge, "limit is 4096"),
    ],
)
async def test_bad_text_is_refused_with_a_clear_reason(text: Any, error: type[Exception], words: str) -> None:
    hub = make_hub()
    async with hub:
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        with pytest.raises(error) as refused:
            await memory.say("alice", text)
        assert words in str(refused.value)
        assert hub.store.last_id == 0


async def test_max_text_length_is_a_setting() -> None:
    hub = make_hub(settings=Settings.isolated(db=":memory:", max_text_length=10))
    async with hub:
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        await memory.say("alice", "x" * 10)
        with pytest.raises(MessageTooLarge):
            await memory.say("alice", "x" * 11)


async def test_bad_room_and_reply_to_are_refused() -> None:
    hub = make_hub()
    async with hub:
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        with pytest.raises(InvalidMessage):
            await memory.say("alice", "hi", room="no spaces allowed")
        with pytest.raises(InvalidMessage):
            await memory.say("alice", "hi", reply_to=True)  # type: ignore[arg-type]
        with pytest.raises(InvalidMessage):
            await memory.say("alice", "hi", reply_to=-3)
        with pytest.raises(InvalidMessage, match="There is no message 7 to reply to"):
            await memory.say("alice", "hi", reply_to=7)  # not yet sent: it would attach to a later message
        first = await memory.say("bob", "a question")
        reply = await memory.say("alice", "hi", reply_to=first.id, room="ops")
        assert (reply.reply_to, reply.room) == (first.id, "ops")
        with pytest.raises(InvalidMessage):
            await memory.say("alice", "hi", reply_to=2**63)
        assert [m.id for m in await hub.since(0, 10)] == [first.id, reply.id]


async def test_a_message_resent_with_the_same_client_id_is_stored_once() -> None:
    hub = make_hub()
    async with hub:
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        ann = await hub.authenticate(Credentials(user_id="ann"))
        first = await hub.receive(ann, "deploying now", client_id="c-1", transport="memory")
        again = await hub.receive(ann, "deploying now", client_id="c-1", transport="memory")
        other = await hub.receive(ann, "deployed", client_id="c-2", transport="memory")
        bob = await hub.authenticate(Credentials(user_id="bob"))
        theirs = await hub.receive(bob, "same id, other person", client_id="c-1", transport="memory")
        assert again == first
        assert [m.id for m in await hub.since(0, 10)] == [first.id, other.id, theirs.id]
        await memory.wait_for(lambda m: m.id == theirs.id)
        assert [m.id for m in memory.delivered] == [first.id, other.id, theirs.id]


async def test_a_message_resent_after_a_restart_is_stored_once(tmp_path: Path) -> None:
    def on_disk(clock: FakeClock) -> Hub:
        settings = Settings.isolated(db=str(tmp_path / "chat.db"))
        return Hub(settings, transports=[MemoryTransport()], load_entrypoints=False, clock=clock)

    async with on_disk(FakeClock()) as hub:
        ann = await hub.authenticate(Credentials(user_id="ann"))
        first = await hub.receive(ann, "deploying now", client_id="c-1", transport="memory")
    # A new process (its clock starts anew): the client resends what it never saw acknowledged.
    clock = FakeClock()
    async with on_disk(clock) as hub:
        ann = await hub.authenticate(Credentials(user_id="ann"))
        again = await hub.receive(ann, "deploying now", client_id="c-1", transport="memory")
        assert again.id == first.id
        assert [m.id for m in await hub.since(0, 10)] == [first.id]
        # Past the resend window the same client id is a new message.
        clock.advance(601)
        later = await hub.receive(ann, "deploying now", client_id="c-1", transport="memory")
        assert later.id != first.id


class Exploding:
    @hookimpl
    def on_message(self, message: Message) -> None:
        raise RuntimeError("boom")


class AsyncExploding:
    @hookimpl
    async def on_message(self, message: Message) -> None:
        raise RuntimeError("async boom")


class Counting:
    def __init__(self) -> None:
        self.seen: list[int] = []

    @hookimpl
    async def on_message(self, message: Message) -> None:
        await asyncio.sleep(0)
        self.seen.append(message.id)


async def test_a_failing_plugin_is_logged_by_name_and_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    counting = Counting()
    hub = make_hub([Exploding(), AsyncExploding(), counting])
    caplog.set_level(logging.ERROR, logger="chatbus.hub")
    async with hub:
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        await memory.say("alice", "one")
        await memory.say("alice", "two")
        for _ in range(100):
            if len(counting.seen) == 2:
                break
            await asyncio.sleep(0.01)
    assert counting.seen == [1, 2]
    failures = [r for r in caplog.records if "failed in on_message" in r.getMessage()]
    assert len(failures) == 4
    assert any("Exploding" in r.getMessage() for r in failures)


class SlowTransport(MemoryTransport):
    def __init__(self) -> None:
        super().__init__("slow")
        self.release = asyncio.Event()

    async def deliver(self, message: Message) -> None:
        await self.release.wait()
        await super().deliver(message)


class BrokenTransport(MemoryTransport):
    def __init__(self) -> None:
        super().__init__("broken")

    async def deliver(self, message: Message) -> None:
        raise ConnectionError("the other side went away")


async def test_a_slow_or_failing_transport_does_not_delay_the_others() -> None:
    slow, broken, fast = SlowTransport(), BrokenTransport(), MemoryTransport("fast")
    hub = make_hub(transports=[slow, broken, fast])
    async with hub:
        await fast.say("alice", "first")
        await fast.say("alice", "second")
        await fast.wait_for(lambda m: m.text == "second", timeout=2)
        assert slow.delivered == []
        slow.release.set()
        await slow.wait_for(lambda m: m.text == "second", timeout=2)
        assert slow.texts == ["first", "second"]


async def test_stop_delivers_what_was_queued() -> None:
    slow = SlowTransport()
    hub = make_hub(transports=[slow])
    await hub.start()
    await slow.say("alice", "queued before stop")
    asyncio.get_running_loop().call_later(0.05, slow.release.set)
    await hub.stop()
    assert slow.texts == ["queued before stop"]


class FirstWins:
    @hookimpl
    def parse_message(self, text: str) -> Parsed:
        return Parsed(mentions=("everyone",))

    @hookimpl
    async def rate_limit(self, identity: Identity, message: Any) -> RateDecision:
        return RateDecision.refuse(30)


async def test_an_installed_plugin_replaces_a_builtin_without_configuration() -> None:
    hub = make_hub([FirstWins()])
    async with hub:
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        with pytest.raises(RateLimited) as refused:
            await memory.say("alice", "hi @bob")
        assert refused.value.retry_after == 30
        message = await hub.send("hi @bob")
        assert message.mentions == ("everyone",)


class Abstains:
    @hookimpl
    async def parse_message(self, text: str) -> None:
        return None


async def test_an_async_first_result_hook_that_returns_none_falls_through() -> None:
    hub = make_hub([Abstains()])
    async with hub:
        message = await hub.send("hello @carol")
        assert message.mentions == ("carol",)


def test_builtin_plugins_are_registered_by_name() -> None:
    hub = make_hub()
    for name in ("mentions", "ratelimit", "auth"):
        assert hub.pm.has_plugin(name)


def test_settings_block_a_plugin_or_allow_only_some() -> None:
    blocked = make_hub(settings=Settings.isolated(db=":memory:", plugins={"disable": ["ratelimit"]}))
    assert not blocked.pm.has_plugin("ratelimit")
    assert blocked.pm.has_plugin("mentions")
    only = make_hub(settings=Settings.isolated(db=":memory:", plugins={"only": ["mentions"]}))
    assert only.pm.has_plugin("mentions")
    assert not only.pm.has_plugin("auth")
    assert not only.pm.has_plugin("ratelimit")


async def test_a_blocked_rate_limiter_lets_everything_through() -> None:
    hub = make_hub(settings=Settings.isolated(db=":memory:", plugins={"disable": ["ratelimit"]}))
    async with hub:
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        for i in range(20):
            await memory.say("alice", f"{i}")
        assert hub.store.last_id == 20


class Misspelled:
    @hookimpl
    def on_mesage(self, message: Message) -> None:  # the typo is the point
        pass


def test_a_misspelled_hook_name_fails_loudly() -> None:
    with pytest.raises(PluginError) as failure:
        make_hub([Misspelled()])
    assert "on_mesage" in str(failure.value)


class WrongArguments:
    @hookimpl
    def on_message(self, message: Message, extra: int) -> None:
        pass


def test_a_hook_with_unknown_arguments_fails_loudly() -> None:
    with pytest.raises(PluginError) as failure:
        make_hub([WrongArguments()])
    assert "extra" in str(failure.value)


async def test_presence_goes_online_with_first_connection_and_offline_with_last() -> None:
    hub = make_hub()
    async with hub:
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        alice = Identity("alice", "developer")
        await hub.connect(alice, "memory")
        await hub.connect(alice, "memory")
        await hub.disconnect(alice, "memory")
        assert hub.is_online("alice")
        await hub.disconnect(alice, "memory")
        assert not hub.is_online("alice")
        await memory.wait_for_event(lambda e: isinstance(e, Presence) and e.status == "offline")
        presence = [e for e in memory.events if isinstance(e, Presence)]
        assert [(e.user_id, e.status) for e in presence] == [("alice", "online"), ("alice", "offline")]


class PresenceHooks:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    @hookimpl
    def on_connect(self, identity: Identity, transport: str) -> None:
        self.seen.append(("connect", identity.user_id, transport))

    @hookimpl
    async def on_disconnect(self, identity: Identity, transport: str, hub: Hub) -> None:
        self.seen.append(("disconnect", identity.user_id, transport))


async def test_on_connect_and_on_disconnect_are_called_once_per_person() -> None:
    hooks = PresenceHooks()
    hub = make_hub([hooks])
    async with hub:
        bob = Identity("bob")
        for _ in range(3):
            await hub.connect(bob, "memory")
        for _ in range(3):
            await hub.disconnect(bob, "memory")
    assert hooks.seen == [("connect", "bob", "memory"), ("disconnect", "bob", "memory")]


class Lifecycle:
    def __init__(self) -> None:
        self.events: list[str] = []

    @hookimpl
    async def on_startup(self, hub: Hub) -> None:
        self.events.append(f"startup running={hub.running}")

    @hookimpl
    def on_shutdown(self, hub: Hub) -> None:
        self.events.append("shutdown")


async def test_startup_and_shutdown_hooks_run_once() -> None:
    lifecycle = Lifecycle()
    hub = make_hub([lifecycle])
    async with hub:
        pass
    assert lifecycle.events == ["startup running=True", "shutdown"]


class RefusesStartup:
    @hookimpl
    def on_startup(self, hub: Hub) -> None:
        raise PluginError("the plugin needs a licence key")


async def test_a_plugin_can_refuse_startup_and_the_hub_stays_stopped() -> None:
    hub = make_hub([RefusesStartup()])
    with pytest.raises(PluginError):
        await hub.start()
    assert not hub.running


async def test_a_person_cannot_take_an_agents_name() -> None:
    hub = make_hub()
    async with hub:
        await hub.hire("alice", "developer")
        with pytest.raises(AuthError) as refused:
            await hub.authenticate(Credentials(user_id="alice"))
        assert "belongs to an agent" in str(refused.value)
        with pytest.raises(AuthError):
            await hub.authenticate(Credentials(user_id="system"))
        assert (await hub.authenticate(Credentials(user_id="bob", role="tester"))).role == "tester"


async def test_agent_status_is_stored_and_published() -> None:
    hub = make_hub()
    async with hub:
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        await hub.hire("alice", "developer", ["worker", "{task}"])
        await hub.set_agent_status("alice", "working", "build the login page", 140)
        event = await memory.wait_for_event(lambda e: isinstance(e, AgentStatus))
        assert event == AgentStatus("alice", "working", "build the login page", 100)
        stored = await hub.store.get_agent("alice")
        assert stored is not None and stored.status == "working" and stored.command == ("worker", "{task}")
        assert hub.stats()["agents"]["by_status"]["working"] == 1
        assert [member_entry(m) for m in hub.members()] == [
            {
                "id": "alice",
                "role": "developer",
                "kind": "agent",
                "status": "working",
                "currentTask": "build the login page",
                "progress": 100,
            }
        ]
        with pytest.raises(InvalidMessage):
            await hub.set_agent_status("alice", "sleeping")  # type: ignore[arg-type]


async def test_receive_before_start_is_a_clear_error() -> None:
    hub = make_hub()
    with pytest.raises(Exception) as refused:
        await hub.receive(Identity("alice"), "hi")
    assert "not running" in str(refused.value)


class TeamDirectory:
    """A replacement auth plugin: only people in the directory, with their roles."""

    people: ClassVar[dict[str, str]] = {"alice": "manager", "bob": "developer"}

    @hookimpl
    async def on_auth(self, credentials: Credentials) -> Identity | None:
        if credentials.transport == "legacy":
            return None  # let the next plugin decide
        role = self.people.get(credentials.user_id)
        if role is None:
            raise AuthError(f"{credentials.user_id} is not in the team directory; ask a manager to add you.")
        return Identity(credentials.user_id, role)


async def test_a_replacement_auth_plugin_decides_who_joins() -> None:
    hub = make_hub([TeamDirectory()])
    async with hub:
        alice = await hub.authenticate(Credentials(user_id="alice", role="intern"))
        assert alice.role == "manager"
        with pytest.raises(AuthError) as refused:
            await hub.authenticate(Credentials(user_id="mallory"))
        assert "not in the team directory" in str(refused.value)
        # Returning None falls through to the built-in open authentication.
        legacy = await hub.authenticate(Credentials(user_id="mallory", role="tester", transport="legacy"))
        assert legacy.role == "tester"
