"""The console transport, tested with chatbus's test kit."""

from __future__ import annotations

import asyncio
import io
import os

from chatbus_console import ConsoleTransport

from chatbus.testing import MemoryTransport, make_hub


async def wait_for_output(output: io.StringIO, words: str) -> str:
    for _ in range(200):
        if words in output.getvalue():
            return output.getvalue()
        await asyncio.sleep(0.01)
    raise AssertionError(f"{words!r} never printed; got {output.getvalue()!r}")


async def test_typed_lines_reach_the_chat_and_the_chat_is_printed() -> None:
    read_end, write_end = os.pipe()
    stdin = os.fdopen(read_end, "r")
    stdout = io.StringIO()
    console = ConsoleTransport({"user": "ops-desk", "role": "manager"}, stdin=stdin, stdout=stdout)
    web = MemoryTransport("web")
    async with make_hub(transports=[console, web]) as hub:
        await wait_for_output(stdout, "you are ops-desk")
        os.write(write_end, b"deploy is done @alice\n")
        from_console = await web.wait_for(lambda m: m.text == "deploy is done @alice")
        assert (from_console.sender, from_console.sender_role) == ("ops-desk", "manager")
        assert from_console.mentions == ("alice",)
        assert from_console.transport == "console"

        await web.say("alice", "thanks!")
        assert "alice: thanks!" in await wait_for_output(stdout, "alice: thanks!")
        assert hub.is_online("ops-desk")
    os.close(write_end)
    stdin.close()


async def test_a_refusal_is_printed_for_the_person_at_the_terminal() -> None:
    read_end, write_end = os.pipe()
    stdin = os.fdopen(read_end, "r")
    stdout = io.StringIO()
    console = ConsoleTransport({"user": "ops-desk"}, stdin=stdin, stdout=stdout)
    async with make_hub(transports=[console]):
        await wait_for_output(stdout, "you are ops-desk")
        os.write(write_end, b"".join(f"line {i}\n".encode() for i in range(7)))
        printed = await wait_for_output(stdout, "! You are sending messages too fast")
        assert "ops-desk: line 4" in printed
    os.close(write_end)
    stdin.close()
