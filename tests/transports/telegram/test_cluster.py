"""The Telegram relay on a cluster: run by one node at a time, moved to another without losing or doubling.

The relay runs where the duty ``transport:telegram`` is held. In one process:
the same transport stopped and started again (the duty lost and won back)
catches up both ways; a node whose fenced write is refused stops reading and
relaying at once; what a node stored or sent before it died is not stored or
sent twice by the next. Then two real ``chatbus serve`` nodes on a real
redis-server, the holder killed with SIGKILL while people keep writing on both
sides.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chatbus import Hub
from chatbus.core.errors import StoreError
from chatbus.core.message import Message, utcnow
from chatbus.core.store import MemoryStore, Store
from chatbus.transports.telegram.session import DUTY
from chatbus.transports.telegram.state import DELIVERED_KEY
from tests.cluster.nodes import LEASE_TTL, START_TIMEOUT, Cluster
from tests.cluster.people import Person
from tests.core.engine.redis_server import RedisServer
from tests.deploy.nginx import Nginx
from tests.support import free_port

from .conftest import CHAT, build_hub
from .fakebot import FakeBotAPI

TIMEOUT = 10.0


class Duty:
    """The hub's cluster as this node sees the duty ``transport:telegram``: held, or lost to another node.

    It stands for the hub's ``cluster`` (``set_state(key, value, duty=...)``, a write fenced
    by the duty's lease); the real ``chatbus serve`` nodes below use the real one, on Redis.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.held = True
        self.refused: list[str] = []

    async def set_state(self, key: str, value: str | None, duty: str = DUTY) -> bool:
        assert duty == DUTY
        if not self.held:
            self.refused.append(key)
            return False
        await self.store.set_state(key, value)
        return True


def on_duty(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> Duty:
    """The hub's fenced writes go through ``Duty``: this node holds the duty until a test says not."""
    duty = Duty(hub.store)
    monkeypatch.setattr(hub.cluster, "set_state", duty.set_state)
    return duty


async def eventually(predicate: Any, timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def sent_texts(api: FakeBotAPI) -> Counter[str]:
    return Counter(sent.text for sent in api.sent)


async def test_the_relay_stopped_and_started_again_catches_up_both_ways_each_time(api: FakeBotAPI) -> None:
    hub, web, telegram = build_hub(api)
    alice = api.user(42, username="alice")
    async with hub:
        await web.say("ana", "before")
        await api.wait_sent(1)
        for turn in range(3):
            await telegram.stop()  # the duty went to another node, which is down as well
            assert not telegram.is_connected()
            await web.say("ana", f"said while nobody relayed {turn}")
            api.post(CHAT, f"written while nobody read {turn}", user=alice)
            await telegram.start(hub)  # the duty came back
            await web.wait_for(lambda m, t=turn: m.text == f"written while nobody read {t}")
            await api.wait_for(lambda t=turn: f"ana: said while nobody relayed {t}" in sent_texts(api))
            await eventually(telegram.is_connected)
        await web.say("ana", "after")
        await api.wait_for(lambda: "ana: after" in sent_texts(api))
    assert set(sent_texts(api).values()) == {1}, sent_texts(api)
    assert len(api.sent) == 5
    from_telegram = Counter(m.text for m in web.delivered if m.transport == "telegram")
    assert from_telegram == Counter(f"written while nobody read {turn}" for turn in range(3))


async def test_a_node_that_lost_the_duty_stops_reading_and_relaying_at_once(
    api: FakeBotAPI, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger="chatbus.telegram")
    hub, web, telegram = build_hub(api)
    alice = api.user(42, username="alice")
    async with hub:
        duty = on_duty(hub, monkeypatch)
        api.post(CHAT, "first", user=alice)
        await web.wait_for(lambda m: m.text == "first")
        offset = await hub.store.get_state(f"telegram:{api.bot['id']}:offset")

        duty.held = False  # another node took the duty while this one was polling
        second = api.post(CHAT, "second", user=alice)
        await web.wait_for(lambda m: m.text == "second")  # taken: the hub keeps a person's message anyway
        await eventually(lambda: bool(duty.refused))
        await web.say("ana", "for Telegram, from the node that runs the relay now")
        polls = len(api.calls_of("getUpdates"))
        await asyncio.sleep(0.5)
        assert len(api.calls_of("getUpdates")) == polls  # no more polling: it would end the other node's poll
        assert api.sent == []  # and no relaying: the other node does it
        assert await hub.store.get_state(f"telegram:{api.bot['id']}:offset") == offset
        await telegram.stop()
        assert len(api.calls_of("getUpdates")) == polls  # not even to confirm the offset
        lost = [r for r in caplog.records if "another node took over" in r.getMessage()]
        assert len(lost) == 1, [r.getMessage() for r in caplog.records]

        duty.held = True  # the duty comes back to this node: the update is read again, stored once
        await telegram.start(hub)
        await api.wait_for(lambda: not api.updates)  # all confirmed
        await api.wait_for(lambda: len(api.sent) == 1)
        assert api.sent[0].text == "ana: for Telegram, from the node that runs the relay now"
    assert [m.text for m in web.delivered if m.transport == "telegram"] == ["first", "second"]
    assert second["message_id"] > 0


async def test_a_message_sent_to_telegram_just_before_a_crash_is_not_sent_again(api: FakeBotAPI) -> None:
    """A node died between sending and writing the last relayed id: the next start sees where it went."""
    hub, web, telegram = build_hub(api)
    async with hub:
        before = (await web.say("ana", "before")).id
        await api.wait_for(lambda: len(api.sent) == 1)
        await web.say("ana", "sent, but the node died before writing it down")
        await api.wait_for(lambda: len(api.sent) == 2)
        await telegram.stop()
        await hub.store.set_state(DELIVERED_KEY, str(before))  # as the dead node left it
        await web.say("ana", "stored while nobody relayed")
        await telegram.start(hub)
        await api.wait_for(lambda: len(api.sent) == 3)
        await asyncio.sleep(0.3)
    assert [s.text for s in api.sent] == [
        "ana: before",
        "ana: sent, but the node died before writing it down",
        "ana: stored while nobody relayed",
    ]


async def test_an_update_stored_just_before_a_crash_is_not_stored_again_by_the_next_node(api: FakeBotAPI) -> None:
    """A node stored a Telegram message and died before mapping it and saving the offset: the
    node that takes over reads the update again and finds the message already in the hub."""
    hub, web, telegram = build_hub(api)
    alice = api.user(42, username="alice")
    async with hub:  # the hub stands for the node taking over; its pipeline never saw the dead node's message
        api.post(CHAT, "hello", user=alice)
        await web.wait_for(lambda m: m.text == "hello")
        await telegram.stop()
        posted = api.post(CHAT, "stored by the node that died", user=alice)
        external = f"{CHAT}:{posted['message_id']}"
        # What the dead node did before SIGKILL: the message is in the shared log, nothing else.
        dead = Message(0, "stored by the node that died", "tg:42", utcnow(), transport="telegram", client_id=external)
        stored = await hub.store.add(dead)
        await telegram.start(hub)
        await api.wait_for(lambda: not api.updates)  # read again, and confirmed
        log = await hub.store.since(0, 100)
    assert [m.text for m in log if m.transport == "telegram"] == ["hello", "stored by the node that died"]
    assert await hub.store.hub_id_for("telegram", external) == stored.id


class Unsteady(MemoryStore):
    """A store that cannot answer for a moment (Redis restarting as a node takes the duty over)."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = {"since": 0, "set_state": 0, "append": 0}

    async def since(self, after_id: int, limit: int, room: str | None = None) -> list[Message]:
        if self.failing["since"]:
            self.failing["since"] -= 1
            raise StoreError("Redis is loading the dataset in memory")
        return await super().since(after_id, limit, room)

    async def append(self, message: Message) -> None:
        await super().append(message)
        if self.failing["append"]:  # kept, but the answer is lost on the way (a timeout)
            self.failing["append"] -= 1
            raise StoreError("Redis did not answer in time")

    async def set_state(self, key: str, value: str | None) -> None:
        if self.failing["set_state"] and key == DELIVERED_KEY:
            self.failing["set_state"] -= 1
            raise StoreError("Redis is loading the dataset in memory")
        await super().set_state(key, value)


async def test_a_store_that_cannot_answer_for_a_moment_delays_the_catch_up_but_loses_nothing(
    api: FakeBotAPI,
) -> None:
    store = Unsteady()
    hub, web, telegram = build_hub(api, store=store)
    async with hub:
        await web.say("ana", "before")
        await api.wait_sent(1)
        await telegram.stop()
        await web.say("ana", "stored while nobody relayed")
        store.failing.update(since=3, set_state=2)
        await telegram.start(hub)
        await web.say("ana", "after the start")
        await web.say("ana", "and one more")
        await api.wait_for(lambda: len(api.sent) == 4)
        assert not any(store.failing.values())
        await asyncio.sleep(0.3)
    assert [s.text for s in api.sent] == [
        "ana: before",
        "ana: stored while nobody relayed",
        "ana: after the start",
        "ana: and one more",
    ]
    assert await store.get_state(DELIVERED_KEY) == str(store.last_id)


async def test_an_update_whose_message_was_kept_though_the_store_said_no_is_not_stored_twice(
    api: FakeBotAPI,
) -> None:
    store = Unsteady()
    hub, web, _telegram = build_hub(api, store=store)
    alice = api.user(42, username="alice")
    async with hub:
        store.failing["append"] = 1
        api.post(CHAT, "kept on the first try", user=alice)
        await api.wait_for(lambda: not api.updates)  # tried again, and confirmed
        api.post(CHAT, "next", user=alice)
        await web.wait_for(lambda m: m.text == "next")
        log = await store.since(0, 100)
    assert [m.text for m in log] == ["kept on the first try", "next"]


# two real nodes on a real Redis ----------------------------------------------------------------


@dataclass
class Relays(Cluster):
    """``chatbus serve`` nodes running the web chat and the Telegram bot, each calling the fake Bot
    API as itself (``api.via(name)``), so the test sees which node polled and relayed when."""

    api: FakeBotAPI | None = None

    transports: tuple[str, ...] = ("websocket", "telegram")

    def settings(self, name: str) -> dict[str, str]:
        assert self.api is not None
        return {
            **super().settings(name),
            "CHATBUS_TELEGRAM__TOKEN": self.api.token,
            "CHATBUS_TELEGRAM__CHAT_IDS": str(CHAT),
            "CHATBUS_TELEGRAM__BASE_URL": self.api.via(name),
            "CHATBUS_TELEGRAM__RETRY_INITIAL_DELAY": "0.05",
            "CHATBUS_TELEGRAM__RETRY_MAX_DELAY": "0.2",
            "CHATBUS_TELEGRAM__POLL_TIMEOUT": "2",
        }


#: Telegram updates posted (one every 0.1 s, before, during and after the takeover) and web messages sent.
UPDATES = 60
WEB = 30
#: Seconds a start of the relay may take beyond the lease's expiry (getMe, getChat, deleteWebhook).
START_SLACK = 3.0


async def post_updates(api: FakeBotAPI, count: int) -> None:
    """People in the Telegram group keep writing, whoever relays (three of them, taking turns)."""
    people = [api.user(100 + i, username=f"member{i}") for i in range(3)]
    for n in range(count):
        api.post(CHAT, f"tg {n}", user=people[n % len(people)])
        await asyncio.sleep(0.1)


async def say_all(ana: Person, texts: list[str]) -> None:
    for text in texts:
        await ana.say(text)
        await asyncio.sleep(0.1)


async def what_became_of(updates: list[str], ana: Person, api: FakeBotAPI) -> str:
    """For a failure: the updates ana did not see, whether the log has them, and what Telegram still holds."""
    missing = [text for text in updates if text not in ana.texts("tg ")]
    later = await Person.join(ana.node, "ana", lastSeenId=0)
    logged = [text for text in missing if text in later.texts("tg ")]
    waiting = [u.get("message", {}).get("text") for u in api.updates]
    return f"missing {missing}; of them in the log {logged}; still at Telegram {waiting}"


def relayed(api: FakeBotAPI) -> Counter[str]:
    return Counter(sent.text for sent in api.sent)


#: The webhook behind a load balancer: nginx sends each post to a node, and on to the next when that
#: one refuses the connection (only the node holding the duty listens on its webhook port).
BALANCER = """
upstream chatbus_telegram_webhook {{
    server 127.0.0.1:{a} max_fails=0;
    server 127.0.0.1:{b} max_fails=0;
}}
server {{
    listen 127.0.0.1:{http};
    listen 127.0.0.1:{https};
    location /telegram/ {{
        proxy_pass http://chatbus_telegram_webhook;
        proxy_next_upstream error timeout non_idempotent;
        proxy_connect_timeout 2s;
    }}
}}
"""


@pytest.mark.parametrize(
    ("mode", "ending"),
    [("polling", "killed"), ("webhook", "killed"), ("polling", "stopped")],
    ids=["polling-killed", "webhook-killed", "polling-stopped"],
)
async def test_one_node_relays_and_another_takes_over_when_it_goes_without_loss_or_double(
    api: FakeBotAPI, tmp_path: Path, mode: str, ending: str
) -> None:
    """Polling: one node calls getUpdates at a time. Webhook: every node behind one address (nginx),
    only the holder listening; Telegram posts again what was not answered while no node held the duty.
    The holder is killed (SIGKILL: its lease runs out) or stopped (SIGTERM, a deploy: it hands over)."""
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(RedisServer(tmp_path / "redis", appendonly=True))
        env: dict[str, dict[str, str]] = {"a": {}, "b": {}}
        if mode == "webhook":
            ports = {"a": free_port(), "b": free_port()}
            site = functools.partial(BALANCER.format, a=ports["a"], b=ports["b"])
            balancer = stack.enter_context(Nginx(tmp_path / "nginx", lambda https, http: site(https=https, http=http)))
            url = f"http://127.0.0.1:{balancer.http_port}/telegram/hook"
            env = {name: webhook_env(url, port) for name, port in ports.items()}
        nodes = Relays(redis, tmp_path / "nodes", api=api)
        try:
            await takeover(nodes, api, "getUpdates" if mode == "polling" else "setWebhook", env, ending)
        finally:
            nodes.stop()
            print(nodes.logs())  # shown when the test fails


def webhook_env(url: str, port: int) -> dict[str, str]:
    return {
        "CHATBUS_TELEGRAM__WEBHOOK_URL": url,
        "CHATBUS_TELEGRAM__WEBHOOK_LISTEN": "127.0.0.1",
        "CHATBUS_TELEGRAM__WEBHOOK_PORT": str(port),
    }


async def takeover(nodes: Relays, api: FakeBotAPI, reads: str, env: dict[str, dict[str, str]], ending: str) -> None:
    """a runs the relay, b stands by; a is killed while people write on both sides; b takes over."""
    [a] = await nodes.start("a", env=env["a"])
    await api.wait_for(lambda: any(c.via == "a" for c in api.calls_of(reads)), START_TIMEOUT)
    [b] = await nodes.start("b", env=env["b"])
    ana = await Person.join(b, "ana")
    web = [f"web {n}" for n in range(WEB)]
    posting = asyncio.create_task(post_updates(api, UPDATES))
    await say_all(ana, web[:10])
    await api.wait_for(lambda: all(f"ana: {text}" in relayed(api) for text in web[:10]), TIMEOUT)
    await asyncio.sleep(0.3)  # ... and written down (a message sent in the instant a node dies goes again)
    ended_at = time.monotonic()
    if ending == "killed":
        a.kill()
    stopping = asyncio.create_task(asyncio.to_thread(a.process.terminate))  # SIGTERM, or reap the killed one
    await say_all(ana, web[10:])  # stored while a stops or after it died, and relayed by b
    await posting
    assert await stopping in (0, -9)

    updates = [f"tg {n}" for n in range(UPDATES)]
    try:
        await ana.until(lambda: set(updates) <= set(ana.texts("tg ")), "every Telegram update", 30)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{await what_became_of(updates, ana, api)}") from None
    await api.wait_for(lambda: all(f"ana: {text}" in relayed(api) for text in web), 30)
    await asyncio.sleep(1.0)  # a double would have come by now
    assert Counter(ana.texts("tg ")) == Counter(updates), "a Telegram update reached the web twice"
    assert relayed(api) == Counter(f"ana: {text}" for text in web), "a web message reached Telegram twice"

    # One node at a time: b never called the Bot API while a held the duty, and took over within the lease.
    assert all(call.began > ended_at for call in api.calls if call.via == "b")
    started_reading = min(call.began for call in api.calls_of(reads) if call.via == "b")
    assert started_reading - ended_at < LEASE_TTL + START_SLACK
    polls = api.calls_of("getUpdates")
    if reads == "getUpdates":  # a's last poll answered before b's first (the poll a died in was cut: 409)
        assert max(call.at for call in polls if call.via == "a" and call.status == 200) < started_reading
        assert [call.status for call in polls if call.via == "b" and call.status != 200] == []
    else:
        assert polls == []
    sends = api.calls_of("sendMessage")
    assert max(call.at for call in sends if call.via == "a") < min(call.began for call in sends if call.via == "b")
