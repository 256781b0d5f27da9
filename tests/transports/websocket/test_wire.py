"""Reading client frames without a server: every refusal a client can meet,
with the code and the words it gets, and what good frames turn into."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from chatbus.transports.websocket import wire
from chatbus.transports.websocket.wire import (
    ERROR_CODES,
    MAX_ID,
    AuthFrame,
    HistoryFrame,
    MessageFrame,
    ProtocolViolation,
    TypingFrame,
    decode_frame,
    parse_auth,
    parse_history,
    parse_message,
    parse_typing,
)

ROOM_RULE = "room must be 1-64 letters, digits, '_', '-' or '.'."
#: Ids no JSON client reads exactly, or that SQLite cannot even hold (2**63 and up).
HUGE = [MAX_ID + 1, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63) - 1]


def refusal(parse: Any, data: Any) -> tuple[str, str]:
    """The code and text a client is sent for ``data``."""
    with pytest.raises(ProtocolViolation) as caught:
        parse(data)
    assert caught.value.code in ERROR_CODES
    return caught.value.code, str(caught.value)


def from_json(text: str) -> dict[str, Any]:
    """``data`` as the server gets it: decoded from the client's JSON."""
    _, data = decode_frame(text.encode())
    return data


# auth ------------------------------------------------------------------------
@pytest.mark.parametrize("data", [{}, {"userId": None}, {"userId": ""}, {"userId": None, "role": "dev"}])
def test_auth_without_a_user_id_asks_who_you_are(data: dict[str, Any]) -> None:
    assert refusal(parse_auth, data) == (
        "MISSING_USER_ID",
        'Say who you are: {"type": "auth", "data": {"userId": "your-name"}}.',
    )


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ({"userId": 42}, "userId must be a string."),
        ({"userId": ["alice"]}, "userId must be a string."),
        ({"userId": True}, "userId must be a string."),
        ({"userId": "carol", "role": ["admin"]}, "role must be a string."),
        ({"userId": "carol", "role": 1}, "role must be a string."),
        ({"userId": "carol", "token": 12345}, "token must be a string."),
    ],
)
def test_auth_fields_of_the_wrong_type_are_invalid(data: dict[str, Any], text: str) -> None:
    assert refusal(parse_auth, data) == ("INVALID_MESSAGE", text)


def test_the_largest_id_a_client_may_name_is_javascripts_largest_safe_integer() -> None:
    assert MAX_ID == 2**53 - 1 == 9007199254740991


@pytest.mark.parametrize("last_seen", [-1, "7", True, False, 1.5, 7.0, [3], 1e308, *HUGE])
def test_last_seen_id_must_be_a_whole_number_from_zero(last_seen: object) -> None:
    assert refusal(parse_auth, {"userId": "carol", "lastSeenId": last_seen}) == (
        "INVALID_MESSAGE",
        "lastSeenId must be the id of the last message you saw, or 0 for all (a whole number from 0 to 9007199254740991).",
    )


def test_last_seen_id_huge_in_the_json_itself_is_refused() -> None:
    # As it comes off the wire: Python reads any JSON integer exactly, however long.
    for text in ("9223372036854775808", "18446744073709551616", "-9223372036854775809", "1e400"):
        data = from_json('{"type": "auth", "data": {"userId": "carol", "lastSeenId": ' + text + "}}")
        assert refusal(parse_auth, data)[0] == "INVALID_MESSAGE", text
    assert parse_auth({"userId": "carol", "lastSeenId": MAX_ID}).last_seen_id == MAX_ID


EPOCH_RULE = "epoch must be the epoch this server sent in auth_response (at most 128 characters)."


@pytest.mark.parametrize(
    ("epoch", "text"),
    [
        ("7", "epoch must be a string."),
        ('["a"]', "epoch must be a string."),
        ("true", "epoch must be a string."),
        ('"' + "e" * 129 + '"', EPOCH_RULE),
        ('"bad \\ud800 half"', EPOCH_RULE),
    ],
)
def test_epoch_must_be_a_short_string(epoch: str, text: str) -> None:
    data = from_json('{"type": "auth", "data": {"userId": "carol", "lastSeenId": 3, "epoch": ' + epoch + "}}")
    assert refusal(parse_auth, data) == ("INVALID_MESSAGE", text)


@pytest.mark.parametrize(
    ("rooms", "text"),
    [
        ("general", "rooms must be a list of 1 to 64 room names."),
        ({"general": True}, "rooms must be a list of 1 to 64 room names."),
        ([], "rooms must be a list of 1 to 64 room names."),
        ([f"r{n}" for n in range(65)], "rooms must be a list of 1 to 64 room names."),
        (["general", 7], "rooms must be a list of room names, each 1-64 letters, digits, '_', '-' or '.'."),
        (["no spaces"], "rooms must be a list of room names, each 1-64 letters, digits, '_', '-' or '.'."),
        ([""], "rooms must be a list of room names, each 1-64 letters, digits, '_', '-' or '.'."),
        (["../etc"], "rooms must be a list of room names, each 1-64 letters, digits, '_', '-' or '.'."),
    ],
)
def test_rooms_must_be_a_short_list_of_room_names(rooms: object, text: str) -> None:
    assert refusal(parse_auth, {"userId": "carol", "rooms": rooms}) == ("INVALID_MESSAGE", text)


def test_resume_asks_for_an_epoch_and_rooms() -> None:
    frame = parse_auth({"userId": "carol", "lastSeenId": 9, "epoch": "4f1c", "rooms": ["dev", "general", "dev"]})
    assert frame == AuthFrame(user_id="carol", last_seen_id=9, epoch="4f1c", rooms=("dev", "general"))
    assert parse_auth({"userId": "carol", "epoch": None, "rooms": None}) == AuthFrame(user_id="carol")
    assert len(parse_auth({"userId": "carol", "rooms": [f"r{n}" for n in range(64)]}).rooms or ()) == 64


def test_a_good_auth_says_who_and_from_where_to_resume() -> None:
    assert parse_auth({"userId": "alice"}) == AuthFrame(user_id="alice")
    assert parse_auth({"userId": "alice", "role": "lead", "token": "s3cret", "lastSeenId": 0}) == AuthFrame(
        user_id="alice", role="lead", token="s3cret", last_seen_id=0
    )
    frame = parse_auth({"userId": "bob", "lastSeenId": 41, "unknownField": "ignored"})
    assert (frame.user_id, frame.role, frame.token, frame.last_seen_id) == ("bob", None, None, 41)


def test_a_user_id_that_is_not_allowed_is_the_hubs_to_refuse() -> None:
    # AUTH_FAILED comes from the hub's sign-in checks, not from reading the frame.
    assert parse_auth({"userId": "carol with spaces"}).user_id == "carol with spaces"


# message ---------------------------------------------------------------------
def test_a_message_needs_text() -> None:
    assert refusal(parse_message, {}) == (
        "INVALID_MESSAGE",
        'A message needs text: {"type": "message", "data": {"text": "hello"}}.',
    )
    assert refusal(parse_message, {"text": None, "room": "dev"})[0] == "INVALID_MESSAGE"


@pytest.mark.parametrize("text", [5, True, ["hi"], {"t": "hi"}])
def test_text_must_be_a_string(text: object) -> None:
    assert refusal(parse_message, {"text": text}) == ("INVALID_MESSAGE", "text must be a string.")


def test_text_with_a_lone_surrogate_is_refused() -> None:
    data = from_json('{"type": "message", "data": {"text": "bad \\ud800 half"}}')
    assert refusal(parse_message, data) == (
        "INVALID_MESSAGE",
        "text contains characters that are not valid Unicode.",
    )


def test_any_valid_unicode_text_is_read_as_sent() -> None:
    data = from_json('{"type": "message", "data": {"text": "h\\u00e9 \\ud83d\\ude00 \\u4e2d"}}')
    assert parse_message(data).text == "hé 😀 中"


def test_empty_and_overlong_text_are_the_hubs_to_refuse() -> None:
    # INVALID_MESSAGE for empty text and MESSAGE_TOO_LARGE come from the hub,
    # which knows the configured maximum.
    assert parse_message({"text": "   "}).text == "   "
    assert parse_message({"text": "x" * 100_000}).text == "x" * 100_000


@pytest.mark.parametrize(
    "client_id",
    ["x" * 129, {"a": 1}, ["a"], 1.5, True, "bad \ud800 half"],
    ids=["too long", "object", "list", "fraction", "bool", "lone surrogate"],
)
def test_client_id_must_be_a_short_string(client_id: object) -> None:
    assert refusal(parse_message, {"text": "hi", "id": client_id}) == (
        "INVALID_MESSAGE",
        "id must be a string of at most 128 characters.",
    )


def test_client_id_up_to_128_characters_or_a_number_is_kept_for_the_echo() -> None:
    assert parse_message({"text": "hi", "id": "x" * 128}).client_id == "x" * 128
    assert parse_message({"text": "hi", "id": 17}).client_id == "17"
    assert parse_message({"text": "hi", "id": "c-1"}).client_id == "c-1"
    assert parse_message({"text": "hi"}).client_id is None


@pytest.mark.parametrize("mentions", ["alice", {"alice": True}, ["alice", 2], [None], 3])
def test_mentions_must_be_a_list_of_user_ids(mentions: object) -> None:
    assert refusal(parse_message, {"text": "hi", "mentions": mentions}) == (
        "INVALID_MESSAGE",
        "mentions must be a list of user ids.",
    )


@pytest.mark.parametrize("reply_to", [0, -3, True, False, "one", "5", 2.0, 1e308, *HUGE])
def test_reply_to_must_be_a_message_id(reply_to: object) -> None:
    assert refusal(parse_message, {"text": "hi", "replyTo": reply_to}) == (
        "INVALID_MESSAGE",
        "replyTo must be the id of a message (a whole number from 1 to 9007199254740991).",
    )


def test_reply_to_up_to_the_largest_safe_integer_is_read() -> None:
    assert parse_message({"text": "hi", "replyTo": MAX_ID}).reply_to == MAX_ID
    assert parse_message({"text": "hi", "replyTo": 1}).reply_to == 1


@pytest.mark.parametrize("room", ["no spaces allowed", "../etc", "x" * 65, 7, ["dev"], "caf\u00e9"])
def test_message_room_must_be_a_valid_name(room: object) -> None:
    assert refusal(parse_message, {"text": "hi", "room": room}) == ("INVALID_MESSAGE", ROOM_RULE)


def test_a_good_message_becomes_a_message_frame() -> None:
    assert parse_message({"text": "hello"}) == MessageFrame(text="hello", room="general")
    data = {"text": "@bob look", "id": "c-7", "mentions": ["bob"], "replyTo": 3, "room": "dev.team_1-a"}
    assert parse_message(data) == MessageFrame(
        text="@bob look", room="dev.team_1-a", client_id="c-7", mentions=("bob",), reply_to=3
    )
    # An empty or null room is the default room; null optional fields are absent.
    empty = {"text": "hi", "room": "", "id": None, "mentions": None, "replyTo": None}
    assert parse_message(empty) == MessageFrame(text="hi", room="general")


def test_the_first_problem_is_the_one_reported() -> None:
    # A client fixing its frame one error at a time sees them in a stable order.
    data = {"text": 5, "id": {}, "mentions": "x", "replyTo": 0, "room": "bad room"}
    assert refusal(parse_message, data)[1] == "text must be a string."
    data["text"] = "hi"
    assert refusal(parse_message, data)[1].startswith("id must")
    del data["id"]
    assert refusal(parse_message, data)[1].startswith("mentions must")
    del data["mentions"]
    assert refusal(parse_message, data)[1].startswith("replyTo must")
    del data["replyTo"]
    assert refusal(parse_message, data)[1] == ROOM_RULE


# typing ----------------------------------------------------------------------
def test_typing_names_a_room() -> None:
    assert parse_typing({}) == TypingFrame(room="general")
    assert parse_typing({"room": "dev"}) == TypingFrame(room="dev")
    assert refusal(parse_typing, {"room": "../etc"}) == ("INVALID_MESSAGE", ROOM_RULE)


# history ---------------------------------------------------------------------
@pytest.mark.parametrize("limit", [0, 201, 500, -1, True, False, "50", 10.0, 2**64, -(2**64), 1e308])
def test_history_limit_is_a_whole_number_from_1_to_200(limit: object) -> None:
    assert refusal(parse_history, {"limit": limit}) == (
        "INVALID_MESSAGE",
        "limit must be a whole number from 1 to 200.",
    )


@pytest.mark.parametrize("before", [0, -1, True, "x", "12", 3.5, 1e308, *HUGE])
def test_history_before_is_a_message_id(before: object) -> None:
    assert refusal(parse_history, {"before": before}) == (
        "INVALID_MESSAGE",
        "before must be a message id (a whole number from 1 to 9007199254740991).",
    )


def test_history_room_must_be_a_valid_name() -> None:
    assert refusal(parse_history, {"room": "no spaces"}) == ("INVALID_MESSAGE", ROOM_RULE)


def test_a_good_history_request_has_defaults_for_what_it_leaves_out() -> None:
    assert parse_history({}) == HistoryFrame(room="general", before=None, limit=50)
    assert parse_history({"limit": None, "before": None, "room": None}) == HistoryFrame()
    assert parse_history({"before": 90, "limit": 1, "room": "dev"}) == HistoryFrame(room="dev", before=90, limit=1)
    assert parse_history({"limit": 200}).limit == 200
    assert parse_history({"before": MAX_ID}).before == MAX_ID


# frames in general -----------------------------------------------------------
def test_parsed_frames_cannot_be_changed() -> None:
    frame = parse_message({"text": "hi"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.text = "changed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "code", "text"),
    [
        (
            b"{not json",
            "INVALID_JSON",
            'Frames must be UTF-8 JSON text like {"type": "message", "data": {"text": "hi"}}.',
        ),
        (
            b'{"x": "\xff"}',
            "INVALID_JSON",
            'Frames must be UTF-8 JSON text like {"type": "message", "data": {"text": "hi"}}.',
        ),
        (b"[1, 2]", "INVALID_MESSAGE", 'Frames must be JSON objects like {"type": "message", "data": {"text": "hi"}}.'),
        (b'{"data": {}}', "INVALID_MESSAGE", 'Frames need a "type" string, such as "auth", "message" or "ping".'),
        (b'{"type": ""}', "INVALID_MESSAGE", 'Frames need a "type" string, such as "auth", "message" or "ping".'),
        (
            b'{"type": "message", "data": [1]}',
            "INVALID_MESSAGE",
            "The \"data\" of a 'message' frame must be a JSON object.",
        ),
        (b'{"type": "a\\nb", "data": 1}', "INVALID_MESSAGE", 'The "data" of a this frame must be a JSON object.'),
    ],
)
def test_decode_frame_refusals(raw: bytes, code: str, text: str) -> None:
    assert refusal(decode_frame, raw) == (code, text)


def test_decode_frame_gives_type_and_data() -> None:
    assert decode_frame(json.dumps({"type": "ping"}).encode()) == ("ping", {})
    assert decode_frame(b'{"type": "message", "data": {"text": "hi"}}') == ("message", {"text": "hi"})


def test_change_frames_name_a_message_and_what_to_do() -> None:
    assert wire.parse_edit({"id": 7, "text": "fixed"}) == wire.ChangeFrame(7, text="fixed")
    assert wire.parse_delete({"id": 7}) == wire.ChangeFrame(7)
    assert wire.parse_react({"id": 7, "emoji": "👍"}) == wire.ChangeFrame(7, emoji="👍", on=True)
    assert wire.parse_react({"id": 7, "emoji": "👍", "on": False}).on is False


@pytest.mark.parametrize(
    ("parse", "data", "words"),
    [
        (wire.parse_edit, {"text": "no id"}, "Say which message"),
        (wire.parse_edit, {"id": 7}, "An edit needs the new text"),
        (wire.parse_edit, {"id": 7, "text": 5}, "An edit needs the new text"),
        (wire.parse_delete, {"id": True}, "id must be the id of a message"),
        (wire.parse_delete, {"id": 2**63}, "id must be the id of a message"),
        (wire.parse_react, {"id": 7}, "A reaction needs an emoji"),
        (wire.parse_react, {"id": 7, "emoji": "👍", "on": 1}, "on must be true"),
    ],
)
def test_bad_change_frames_are_invalid_messages(parse: Any, data: dict[str, Any], words: str) -> None:
    with pytest.raises(wire.ProtocolViolation) as refused:
        parse(data)
    assert refused.value.code == "INVALID_MESSAGE"
    assert words in str(refused.value)


@pytest.mark.parametrize("message_id", [0, -1, True, 1.0, "7", None, *HUGE])
@pytest.mark.parametrize(
    "parse",
    [
        lambda data: wire.parse_edit({"text": "fixed", **data}),
        wire.parse_delete,
        lambda data: wire.parse_react({"emoji": "+1", **data}),
    ],
    ids=["edit", "delete", "react"],
)
def test_changes_name_a_message_by_an_id_in_the_safe_range(parse: Any, message_id: object) -> None:
    code, text = refusal(parse, {"id": message_id})
    assert code == "INVALID_MESSAGE"
    if message_id is None:
        assert text.startswith("Say which message")
    else:
        assert text == "id must be the id of a message (a whole number from 1 to 9007199254740991)."
    assert parse({"id": MAX_ID}).message_id == MAX_ID
