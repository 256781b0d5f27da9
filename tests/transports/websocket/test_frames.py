"""Building what the server sends, without a server: a member's entry in
``auth_response.users`` as a client reads it."""

from __future__ import annotations

import json

from chatbus.core.hub import Member
from chatbus.transports.websocket.frames import encode, member_entry


def on_the_wire(member: Member) -> object:
    return json.loads(encode(member_entry(member)))


def test_a_person_is_id_role_kind_and_status() -> None:
    alice = Member(user_id="alice", role="lead", kind="human", status="online")
    assert on_the_wire(alice) == {"id": "alice", "role": "lead", "kind": "human", "status": "online"}


def test_an_agent_also_says_what_it_is_doing() -> None:
    builder = Member("builder", "developer", "agent", "working", current_task="fix the login page", progress=40)
    assert on_the_wire(builder) == {
        "id": "builder",
        "role": "developer",
        "kind": "agent",
        "status": "working",
        "currentTask": "fix the login page",
        "progress": 40,
    }


def test_an_idle_agent_sends_its_task_and_progress_as_null() -> None:
    tester = Member("tester", "qa", "agent", "idle")
    entry = on_the_wire(tester)
    assert entry == {
        "id": "tester",
        "role": "qa",
        "kind": "agent",
        "status": "idle",
        "currentTask": None,
        "progress": None,
    }
    assert list(member_entry(tester)) == ["id", "role", "kind", "status", "currentTask", "progress"]
