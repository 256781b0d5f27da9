"""The built-in mention and command parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatbus import Settings
from chatbus.plugins.mentions import parse, parse_command, parse_mentions
from chatbus.testing import make_hub

NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."
names = st.text(alphabet=NAME_CHARS, min_size=1, max_size=64).filter(
    lambda n: n.rstrip(".-") == n and n[0] not in ".-" and not n.lower().endswith("-bot")
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@alice please look", ("alice",)),
        ("hey @alice, and @bob.", ("alice", "bob")),
        ("@alice-bot can you help", ("alice",)),
        ("@alice-bot. thanks", ("alice",)),
        ("mail bob@example.com about it", ()),
        ("@alice @bob @alice again", ("alice", "bob")),
        ("(@carol) and [@dave]", ("carol", "dave")),
        ("@first.last: done?", ("first.last",)),
        ("@under_score and @dash-ed", ("under_score", "dash-ed")),
        ("no mentions here", ()),
        ("@ alone", ()),
        ("@@double", ()),
        ("@" + "x" * 65, ()),
        ("@" + "x" * 64, ("x" * 64,)),
        ("line one\n@zoe on line two", ("zoe",)),
    ],
)
def test_mentions(text: str, expected: tuple[str, ...]) -> None:
    assert parse_mentions(text) == expected


def test_the_suffix_is_configurable() -> None:
    assert parse_mentions("@alice-agent hi", strip_suffix="-agent") == ("alice",)
    assert parse_mentions("@alice-bot hi", strip_suffix="") == ("alice-bot",)


@pytest.mark.parametrize(
    ("text", "command", "args"),
    [
        ("/help", "help", ()),
        ("/status alice", "status", ("alice",)),
        ("/status@SomeBot", "status", ()),
        ("/status@SomeBot alice", "status", ("alice",)),
        ('/hire zoe "senior developer"', "hire", ("zoe", "senior developer")),
        ("/hire zoe 'it''s'", "hire", ("zoe", "its")),
        ('/say "unbalanced quote', "say", ('"unbalanced', "quote")),
        ("  /Agents", "agents", ()),
        ("not /a command", None, ()),
        ("/", None, ()),
        ("//comment", None, ()),
        ("/path/to/file", None, ()),
    ],
)
def test_commands(text: str, command: str | None, args: tuple[str, ...]) -> None:
    assert parse_command(text) == (command, args)


@given(names)
def test_any_valid_name_is_found_after_at(name: str) -> None:
    assert parse_mentions(f"hello @{name} there") == (name,)


@given(names, st.sampled_from([",", ".", "!", "?", ":", ";", ")", "...", "-"]))
def test_trailing_punctuation_is_not_part_of_the_name(name: str, punctuation: str) -> None:
    assert parse_mentions(f"@{name}{punctuation}") == (name,)


@given(st.lists(names, min_size=1, max_size=8))
def test_each_name_once_in_order_of_first_appearance(chosen: list[str]) -> None:
    text = " ".join(f"@{name}" for name in chosen + chosen[::-1])
    assert parse_mentions(text) == tuple(dict.fromkeys(chosen))


@given(names, names)
def test_email_addresses_are_never_mentions(local: str, domain: str) -> None:
    assert parse_mentions(f"write to {local}@{domain}") == ()


@given(st.text())
def test_any_text_parses_without_error_into_valid_names(text: str) -> None:
    parsed = parse(text)
    for name in parsed.mentions:
        assert 1 <= len(name) <= 64
        assert all(ch in NAME_CHARS for ch in name)
    assert len(set(parsed.mentions)) == len(parsed.mentions)
    if parsed.command is not None:
        assert text.lstrip().startswith("/")


async def test_the_hub_uses_it_with_the_configured_suffix() -> None:
    hub = make_hub(settings=Settings.isolated(db=":memory:", mentions={"strip_suffix": "-agent"}))
    async with hub:
        message = await hub.send("/status@Bot @alice-agent")
    assert (message.command, message.mentions, message.is_command) == ("status", ("alice",), True)
