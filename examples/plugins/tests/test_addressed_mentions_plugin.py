"""The addressed-mentions parser, tested with chatbus's test kit."""

from __future__ import annotations

import pytest
from chatbus_example_plugins import addressed_mentions

from chatbus import Hub
from chatbus.testing import MemoryTransport


@pytest.fixture
def chatbus_plugins() -> list[object]:
    return [addressed_mentions]


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("alice: can you look at the build?", ("alice",)),
        ("Bob, please review @Carol's change", ("bob", "carol")),
        ("hey @ALICE and @alice", ("alice",)),
        ("nothing addressed here", ()),
    ],
)
async def test_mentions(chatbus_transport: MemoryTransport, text: str, mentions: tuple[str, ...]) -> None:
    message = await chatbus_transport.say("dave", text)
    assert message.mentions == mentions


async def test_commands_still_work(chatbus_hub: Hub) -> None:
    message = await chatbus_hub.send('/hire zoe "QA lead"')
    assert (message.command, message.command_args) == ("hire", ("zoe", "QA lead"))
