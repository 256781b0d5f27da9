"""A replacement mention parser: names are case-insensitive (``@Alice`` is
``alice``) and a message that starts with ``name:`` or ``name,`` addresses
that name, the way people write in many chats ("alice: can you look?").
Commands are parsed as the built-in parser does.
"""

from __future__ import annotations

import re

from chatbus import Parsed, hookimpl
from chatbus.plugins.mentions import parse_command, parse_mentions

_ADDRESSED = re.compile(r"\s*([A-Za-z0-9_][A-Za-z0-9_.\-]{0,63})[:,]\s")


@hookimpl
def parse_message(text: str) -> Parsed:
    names = [name.lower() for name in parse_mentions(text)]
    addressed = _ADDRESSED.match(text)
    if addressed:
        names.insert(0, addressed.group(1).lower())
    command, args = parse_command(text)
    return Parsed(tuple(dict.fromkeys(names)), command, args)
