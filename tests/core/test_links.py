"""Linking a Telegram account to a web identity: asked for, told privately, used once, undone."""

from __future__ import annotations

import re
from pathlib import Path

from chatbus import Credentials, Hub, Identity, Message, Settings
from chatbus.core.links import CODE_LIFETIME
from chatbus.testing import FakeClock, MemoryTransport

TG = Credentials(user_id="tg:101", transport="telegram", extra={"verified": True, "display_name": "Ana P"})


def hub_at(db: str, clock: FakeClock) -> Hub:
    return Hub(Settings.isolated(db=db), transports=[MemoryTransport()], load_entrypoints=False, clock=clock)


async def say(hub: Hub, identity: Identity, text: str) -> Message:
    memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
    sent = await hub.receive(identity, text, transport="memory")
    await memory.wait_for(lambda m: m.id == sent.id)
    await hub.settle()
    return sent


def answer_to(hub: Hub, message: Message) -> str:
    memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
    return next(m.text for m in memory.delivered if m.reply_to == message.id)


async def test_a_telegram_account_is_linked_with_a_code_told_only_to_the_web_person(tmp_path: Path) -> None:
    clock = FakeClock()
    hub = hub_at(str(tmp_path / "chat.db"), clock)
    async with hub:
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        ann = await hub.authenticate(Credentials(user_id="ann"))
        asked = await say(hub, ann, "/link")
        [notice] = memory.notices
        assert notice.user_id == "ann"
        code = re.search(r"/link (\d{3}-\d{3})", notice.text)
        assert code is not None and "within 10 minutes" in notice.text
        assert not any(m.reply_to == asked.id for m in memory.delivered)  # nothing said in public
        assert code.group(1) not in " ".join(m.text for m in memory.delivered)

        telegram = await hub.authenticate(TG)
        assert telegram.user_id == "tg:101"
        used = await say(hub, telegram, f"/link {code.group(1)}")
        assert (
            answer_to(hub, used)
            == "This account is now linked to ann: its messages are posted as ann. /unlink undoes it."
        )
        linked = await hub.authenticate(TG)
        assert (linked.user_id, linked.kind) == ("ann", "human")
        again = await say(
            hub,
            await hub.authenticate(Credentials(user_id="tg:202", extra={"verified": True})),
            f"/link {code.group(1)}",
        )
        assert "wrong or has expired" in answer_to(hub, again)  # a code works once

    restarted = hub_at(str(tmp_path / "chat.db"), clock)
    async with restarted:
        assert (await restarted.authenticate(TG)).user_id == "ann"  # the link is kept
        unlinked = await say(restarted, await restarted.authenticate(TG), "/unlink")
        assert answer_to(restarted, unlinked) == "Unlinked tg:101 from ann."
        assert (await restarted.authenticate(TG)).user_id == "tg:101"


async def test_an_expired_code_links_nothing_and_codes_go_one_way() -> None:
    clock = FakeClock()
    hub = hub_at(":memory:", clock)
    async with hub:
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        await say(hub, await hub.authenticate(Credentials(user_id="ann")), "/link")
        code = re.search(r"/link (\d{3}-\d{3})", memory.notices[-1].text)
        assert code is not None
        clock.advance(CODE_LIFETIME + 1)
        telegram = await hub.authenticate(TG)
        late = await say(hub, telegram, f"/link {code.group(1)}")
        assert "wrong or has expired" in answer_to(hub, late)
        assert (await hub.authenticate(TG)).user_id == "tg:101"
        # The codes are asked for on the web and used from the other transport, never the other way round.
        from_telegram = await say(hub, telegram, "/link")
        assert "where you signed in with your own name" in answer_to(hub, from_telegram)
        from_web = await say(hub, await hub.authenticate(Credentials(user_id="bob")), "/link 123-456")
        assert "not from the web chat" in answer_to(hub, from_web)


async def test_a_code_said_in_the_web_chat_is_void_since_everyone_saw_it() -> None:
    hub = hub_at(":memory:", FakeClock())
    async with hub:
        memory: MemoryTransport = hub.transports["memory"]  # type: ignore[assignment]
        ann = await hub.authenticate(Credentials(user_id="ann"))
        await say(hub, ann, "/link")
        code = re.search(r"/link (\d{3}-\d{3})", memory.notices[-1].text)
        assert code is not None
        # Ann pastes it in the web chat by mistake: the whole chat (and the Telegram group) now has it.
        pasted = await say(hub, ann, f"/link {code.group(1)}")
        assert "That code is now void, as everyone here saw it; ask for a new one with /link." in answer_to(hub, pasted)
        # Someone in the Telegram group tries it: it links nothing, so nobody can post as ann with it.
        taken = await say(hub, await hub.authenticate(TG), f"/link {code.group(1)}")
        assert "wrong or has expired" in answer_to(hub, taken)
        assert (await hub.authenticate(TG)).user_id == "tg:101"
