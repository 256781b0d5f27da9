"""Splitting and escaping of relayed text, checked against Telegram's HTML rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatbus.transports.telegram import DEFAULT_FORMAT, render, split_text
from chatbus.transports.telegram.formatting import utf16_length

from .fakebot import parse_telegram_html


def words_of(parts: list[str]) -> list[str]:
    return " ".join(parts).split()


def test_short_text_is_one_part() -> None:
    assert split_text("hello world", 4096) == ["hello world"]


def test_splits_at_the_last_line_break_that_fits() -> None:
    text = "first line\nsecond line\nthird"
    assert split_text(text, 24) == ["first line\nsecond line", "third"]


def test_splits_at_a_space_when_a_line_is_too_long() -> None:
    assert split_text("alpha beta gamma delta", 11) == ["alpha beta", "gamma delta"]


def test_cuts_inside_a_word_only_when_the_word_is_longer_than_a_part() -> None:
    assert split_text("ab " + "x" * 10 + " cd", 4) == ["ab", "xxxx", "xxxx", "xx", "cd"]


def test_counts_utf16_units_like_telegram() -> None:
    # Each emoji is two UTF-16 units: 3 of them do not fit in 5 units.
    parts = split_text("😀😀😀", 5)
    assert parts == ["😀😀", "😀"]
    assert all(utf16_length(part) <= 5 for part in parts)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(
                alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters=" \n\t"),
                min_size=1,
                max_size=30,
            ),
            st.sampled_from([" ", "\n", "  ", "<", "&", "&amp;", "<b>", "😀"]),
        ),
        max_size=80,
    ),
    st.integers(min_value=8, max_value=60),
)
def test_split_never_loses_reorders_or_oversizes(pieces: list[str], limit: int) -> None:
    text = "".join(pieces)
    parts = split_text(text, limit)
    assert all(utf16_length(part) <= limit for part in parts)
    # Words come back in order; a word is only ever cut when it is longer than a part.
    rejoined = "".join(parts)
    assert "".join(text.split()) == "".join(rejoined.split())
    long_words = [w for w in text.split() if utf16_length(w) > limit]
    if not long_words:
        assert words_of(parts) == text.split()


def test_render_escapes_sender_and_text_for_html() -> None:
    [part] = render(DEFAULT_FORMAT, sender="a&b", text="1 < 2 > 0 & <b>not bold</b>", room="general")
    visible, entities = parse_telegram_html(part.html)
    assert visible == "a&b: 1 < 2 > 0 & <b>not bold</b>"
    assert entities == [{"type": "bold", "offset": 0, "length": 3}]
    assert part.plain == visible


def test_render_splits_long_text_and_keeps_every_part_valid_html() -> None:
    text = ("<tag> & more " * 900).strip()  # ~11,700 characters full of markup characters
    parts = render(DEFAULT_FORMAT, sender="coder", text=text, room="general")
    assert len(parts) >= 3
    bodies = []
    for part in parts:
        visible, entities = parse_telegram_html(part.html)  # raises on any broken tag or entity
        assert utf16_length(visible) <= 4096
        assert visible.startswith("coder: ")
        assert entities[0] == {"type": "bold", "offset": 0, "length": 5}
        bodies.append(visible.removeprefix("coder: "))
    assert words_of(bodies) == text.split()


def test_sender_longer_than_a_message_falls_back_to_plain_text() -> None:
    parts = render(DEFAULT_FORMAT, sender="s" * 5000, text="hi", room="general")
    assert [p.plain for p in parts] == ["hi"]


@pytest.mark.parametrize("limit", [0, -3])
def test_limit_must_be_positive(limit: int) -> None:
    with pytest.raises(ValueError):
        split_text("x", limit)
