"""What people see when they chat over WebSocket: the earlier system's scenarios and the extensions."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

from websockets.asyncio.client import connect

from chatbus import Identity, Settings

from .helpers import running, wait_until


async def test_connect_and_authenticate_as_the_earlier_clients_did() -> None:
    # Exactly the frames an earlier client sends, on the bare address it used.
    async with running() as server, connect(f"ws://127.0.0.1:{server.port}", open_timeout=5) as ws:
        await ws.send(json.dumps({"type": "auth", "data": {"userId": "alice", "role": "developer"}}))
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert frame["type"] == "auth_response"
        data = frame["data"]
        assert data["success"] is True
        assert data["userId"] == "alice" and data["role"] == "developer"
        assert data["agents"] == ["alice"]
        assert data["users"] == [{"id": "alice", "role": "developer", "kind": "human", "status": "online"}]
        assert isinstance(data["sessionId"], str) and data["sessionId"]
        assert "missed" not in data

        async def next_frame(kind: str) -> dict[str, Any]:
            # Frames of the extensions (presence, ...) may come in between; old clients ignore them.
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if frame["type"] == kind:
                    return frame
                assert frame["type"] == "presence", frame

        await ws.send(json.dumps({"type": "ping"}))
        pong = await next_frame("pong")
        assert datetime.fromisoformat(pong["data"]["timestamp"]).utcoffset() is not None

        await ws.send(json.dumps({"type": "message", "data": {"text": "hello", "id": "c-1"}}))
        echo = await next_frame("message")
        message = echo["data"]
        assert message["id"] == 1 and message["clientId"] == "c-1"
        assert message["text"] == "hello" and message["sender"] == "alice"
        assert message["mentions"] == [] and message["isCommand"] is False and message["replyTo"] is None
        assert message["room"] == "general" and message["transport"] == "websocket"
        assert datetime.fromisoformat(message["timestamp"]).utcoffset().total_seconds() == 0


async def test_session_ids_are_unique_per_connection() -> None:
    async with running() as server:
        a1, a2 = await server.client("alice"), await server.client("alice")
        assert a1.auth["sessionId"] != a2.auth["sessionId"]
        await a1.close()
        await a2.close()


async def test_task_assignment_reaches_others_with_the_mention_parsed() -> None:
    async with running() as server:
        lead, alice, bob = [await server.client(name) for name in ("lead", "alice", "bob")]
        await lead.say("@alice please review the parser", mentions=["alice"])
        for client in (alice, bob, lead):
            [frame] = await client.chat(1)
            assert frame["type"] == "message"
            assert frame["data"]["mentions"] == ["alice"]
            assert frame["data"]["sender"] == "lead"
        # Advisory mentions do not add names that are not in the text.
        await lead.say("no names here", mentions=["bob"])
        [frame] = await bob.chat(1)
        assert frame["data"]["mentions"] == []
        for client in (lead, alice, bob):
            await client.close()


async def test_three_users_see_every_message_in_the_same_order_with_the_same_ids() -> None:
    async with running() as server:
        clients = [await server.client(name) for name in ("ann", "ben", "cat")]
        await asyncio.gather(*(client.say(f"hi from {i}") for i, client in enumerate(clients)))
        seen = [await client.chat(3) for client in clients]
        ids = [[frame["data"]["id"] for frame in frames] for frames in seen]
        texts = [[frame["data"]["text"] for frame in frames] for frames in seen]
        assert ids[0] == ids[1] == ids[2] == sorted(ids[0]) == [1, 2, 3]
        assert texts[0] == texts[1] == texts[2]
        assert sorted(texts[0]) == ["hi from 0", "hi from 1", "hi from 2"]
        for client in clients:
            await client.close()


async def test_rate_limited_messages_are_refused_and_reach_nobody() -> None:
    settings = Settings.isolated(db=":memory:", rate_limit={"burst": 5, "per_second": 1.0})
    async with running(settings=settings) as server:
        spammer, other = await server.client("spammer"), await server.client("other")
        for i in range(10):
            await spammer.say(f"burst {i}")
        accepted, refused = [], []
        async with asyncio.timeout(5):
            while len(accepted) + len(refused) < 10:
                frame = await spammer.recv()
                if frame["type"] == "message":
                    accepted.append(frame["data"]["text"])
                elif frame["type"] == "error":
                    refused.append(frame["data"])
        assert accepted == [f"burst {i}" for i in range(5)]
        assert len(refused) == 5
        for error in refused:
            assert error["code"] == "RATE_LIMITED"
            assert error["retryAfter"] > 0
            assert "too fast" in error["message"]
        # The other user got the five accepted ones and nothing else.
        assert [f["data"]["text"] for f in await other.chat(5)] == accepted
        await other.still_works()
        assert sum(f["type"] == "message" for f in other.received) == 5
        assert server.hub.store.last_id == 5
        await spammer.close()
        await other.close()


async def test_agent_and_system_messages_arrive_as_agent_response() -> None:
    async with running() as server:
        await server.hub.hire("coder", "developer")
        alice = await server.client("alice")
        assert "coder" in alice.auth["agents"]
        assert {
            "id": "coder",
            "role": "developer",
            "kind": "agent",
            "status": "idle",
            "currentTask": None,
            "progress": None,
        } in alice.auth["users"]
        await server.hub.send("on it", sender="coder", reply_to=None)
        await server.hub.send("maintenance at noon")
        agent, system = await alice.chat(2)
        assert agent["type"] == system["type"] == "agent_response"
        assert agent["data"]["sender"] == "coder" and agent["data"]["text"] == "on it"
        assert system["data"]["sender"] == "system"
        await alice.close()


async def test_agent_status_reaches_everyone() -> None:
    async with running() as server:
        await server.hub.hire("coder", "developer")
        alice = await server.client("alice")
        await server.hub.set_agent_status("coder", "working", "parser review", 40)
        status = await alice.expect("agent_status", skip=frozenset({"presence"}))
        assert status == {"userId": "coder", "status": "working", "currentTask": "parser review", "progress": 40}
        await alice.close()


async def test_several_tabs_one_presence() -> None:
    async with running() as server:
        watcher = await server.client("watcher")
        tab1 = await server.client("alice")
        online = await watcher.presence("alice")
        assert online == {
            "userId": "alice",
            "role": "user",
            "kind": "human",
            "status": "online",
            "displayName": "alice",
            "transport": "websocket",
        }
        tab2 = await server.client("alice")
        assert tab2.auth["agents"].count("alice") == 1
        await tab1.close()
        # Still online through tab 2: a message from tab 2 arrives before any presence change.
        await tab2.say("still here")
        frame = await watcher.recv()
        assert frame["type"] == "message", frame
        assert server.hub.is_online("alice")
        await tab2.close()
        offline = await watcher.presence("alice")
        assert offline["status"] == "offline" and offline["userId"] == "alice"
        assert not server.hub.is_online("alice")
        await watcher.close()


async def test_both_tabs_of_a_user_receive_each_message_once() -> None:
    async with running() as server:
        tab1, tab2, bob = await server.client("alice"), await server.client("alice"), await server.client("bob")
        await tab1.say("from tab one")
        for client in (tab1, tab2, bob):
            [frame] = await client.chat(1)
            assert frame["data"]["text"] == "from tab one"
        for client in (tab1, tab2, bob):
            await client.still_works()
            assert sum(f["type"] == "message" for f in client.received) == 1
            await client.close()


async def test_typing_is_relayed_to_others_only() -> None:
    async with running() as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        await alice.send("typing", {"room": "general"})
        typing = await bob.expect("typing")
        assert typing == {"userId": "alice", "room": "general", "displayName": "alice", "transport": "websocket"}
        await alice.still_works()
        assert not any(f["type"] == "typing" for f in alice.received)
        await alice.close()
        await bob.close()


async def test_history_pages_back_through_a_room() -> None:
    async with running() as server:
        alice = await server.client("alice")
        for i in range(7):
            await server.hub.send(f"m{i}", sender="bob")
        await server.hub.send("elsewhere", sender="bob", room="random")
        await alice.chat(8)
        await alice.send("history", {"limit": 3})
        page = await alice.expect("history")
        assert [f["data"]["text"] for f in page["messages"]] == ["m4", "m5", "m6"]
        assert page["hasMore"] is True
        assert all(f["type"] == "agent_response" and f["data"]["sender"] == "bob" for f in page["messages"])
        await alice.send("history", {"before": page["messages"][0]["data"]["id"], "limit": 10})
        page = await alice.expect("history")
        assert [f["data"]["text"] for f in page["messages"]] == ["m0", "m1", "m2", "m3"]
        assert page["hasMore"] is False
        await alice.send("history", {"room": "random"})
        page = await alice.expect("history")
        assert [f["data"]["text"] for f in page["messages"]] == ["elsewhere"]
        await alice.close()


async def test_rooms_and_replies_travel_with_the_message() -> None:
    async with running() as server:
        alice, bob = await server.client("alice"), await server.client("bob")
        await alice.say("first")
        [first] = await bob.chat(1)
        await bob.say("answer", replyTo=first["data"]["id"], room="dev")
        answer = (await alice.chat(2))[-1]
        assert answer["data"]["replyTo"] == first["data"]["id"]
        assert answer["data"]["room"] == "dev"
        await alice.close()
        await bob.close()


async def test_ws_info_counts_connected_users() -> None:
    async with running() as server:
        alice1, alice2, bob = await server.client("alice"), await server.client("alice"), await server.client("bob")
        assert server.transport.info()["connected_users"] == 2
        assert server.transport.info()["connections"] == 3
        # A person on another transport counts too; the WebSocket connections do not change.
        await server.hub.connect(Identity("tg-carol"), "telegram")
        assert server.transport.info()["connected_users"] == 3
        assert server.transport.info()["connections"] == 3
        assert server.transport.info()["epoch"] == server.hub.store.epoch
        for client in (alice1, alice2, bob):
            await client.close()
        await wait_until(lambda: server.transport.info()["connections"] == 0)
