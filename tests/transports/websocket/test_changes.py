"""edit, delete and react over a real WebSocket, as PROTOCOL.md describes them."""

from __future__ import annotations

from chatbus import Credentials, Settings
from chatbus.core.message import Identity

from .helpers import running


async def test_the_sender_edits_and_every_client_gets_message_edited() -> None:
    async with running() as server:
        ann, bob = await server.client("ann"), await server.client("bob")
        await ann.say("deploy to stagin @bob", id="c1")
        sent = await bob.expect("message")
        await ann.expect("message")
        await ann.send("edit", {"id": sent["id"], "text": "deploy to staging @bob"})
        for client in (ann, bob):
            edited = await client.expect("message_edited")
            assert edited["id"] == sent["id"] and edited["text"] == "deploy to staging @bob"
            assert edited["mentions"] == ["bob"] and edited["editedBy"] == "ann" and edited["streaming"] is False
            assert edited["editedAt"].endswith("+00:00")
        await bob.send("edit", {"id": sent["id"], "text": "hijacked"})
        refused = await bob.error()
        assert refused["code"] == "FORBIDDEN"
        assert refused["message"] == f"Only ann (or a manager) may edit message {sent['id']}."
        await bob.send("edit", {"id": 999, "text": "nothing there"})
        assert (await bob.error())["code"] == "NOT_FOUND"
        await bob.send("edit", {"id": sent["id"]})
        assert (await bob.error())["code"] == "INVALID_MESSAGE"


async def test_a_manager_may_delete_and_history_shows_the_tombstone() -> None:
    async with running() as server:
        ann, meg = await server.client("ann"), await server.client("meg", role="manager")
        await ann.say("a password, oops")
        sent = await meg.expect("message")
        await ann.expect("message")  # the echo
        await meg.send("delete", {"id": sent["id"]})
        gone = await ann.expect("message_deleted")
        assert (gone["id"], gone["deletedBy"]) == (sent["id"], "meg") and gone["deletedAt"].endswith("+00:00")
        await ann.send("history", {})
        [kept] = (await ann.expect("history"))["messages"]
        assert kept["data"]["id"] == sent["id"]
        assert (kept["data"]["text"], kept["data"]["deleted"], kept["data"]["deletedBy"]) == ("", True, "meg")
        await ann.send("delete", {"id": sent["id"]})
        assert (await ann.error())["code"] == "NOT_FOUND"


async def test_reactions_with_counts_and_resume_carries_the_current_state() -> None:
    async with running() as server:
        ann, bob = await server.client("ann"), await server.client("bob")
        await ann.say("shipped!")
        sent = await bob.expect("message")
        await ann.expect("message")  # the echo
        await bob.send("react", {"id": sent["id"], "emoji": "🎉", "on": True})
        added = await ann.expect("reaction")
        assert added == {
            "id": sent["id"],
            "emoji": "🎉",
            "userId": "bob",
            "on": True,
            "counts": {"🎉": 1},
            "room": "general",
        }
        assert (await bob.expect("reaction"))["userId"] == "bob"  # the reactor hears of it too
        await ann.send("react", {"id": sent["id"], "emoji": "🎉"})  # on defaults to true
        assert (await bob.expect("reaction"))["counts"] == {"🎉": 2}
        await ann.send("edit", {"id": sent["id"], "text": "shipped! (v2)"})
        await bob.expect("message_edited")
        await bob.send("react", {"id": sent["id"], "emoji": "two words"})
        assert (await bob.error())["code"] == "INVALID_MESSAGE"
        await bob.send("react", {"id": sent["id"], "emoji": "👍", "on": "yes"})
        assert (await bob.error())["code"] == "INVALID_MESSAGE"
        back = await server.client("carol", lastSeenId=0)
        [frame] = back.auth["missed"]
        assert frame["data"]["text"] == "shipped! (v2)" and frame["data"]["editedBy"] == "ann"
        assert frame["data"]["reactions"] == {"🎉": ["bob", "ann"]}


async def test_an_answer_being_written_is_streamed_as_edits_and_ends() -> None:
    async with running() as server:
        ann = await server.client("ann")
        await server.hub.hire("alice", "developer")
        alice = Identity("alice", "developer", "agent")
        answer = await server.hub.send("The plan", sender="alice", streaming=True)
        first = await ann.expect("agent_response")
        assert (first["id"], first["streaming"]) == (answer.id, True)
        await server.hub.edit(alice, answer.id, "The plan: tests first", streaming=True)
        await server.hub.edit(alice, answer.id, "The plan: tests first, then code.")
        grown = await ann.expect("message_edited")
        done = await ann.expect("message_edited")
        assert (grown["text"], grown["streaming"]) == ("The plan: tests first", True)
        assert (done["text"], done["streaming"]) == ("The plan: tests first, then code.", False)


async def test_a_notice_reaches_one_person_only_and_frames_name_who_and_where() -> None:
    async with running(settings=Settings.isolated(db=":memory:")) as server:
        ann, ann_too, bob = await server.client("ann"), await server.client("ann"), await server.client("bob")
        assert ann.auth["rooms"] == ["general"]
        await ann.say("/link")
        skip = frozenset({"presence", "message"})
        notices = [await client.expect("notice", skip=skip) for client in (ann, ann_too)]
        # No Telegram here: the note does not send ann to a Telegram chat that does not exist.
        assert all(
            n["text"].startswith("To post from another transport's account as ann, send /link ") for n in notices
        )
        await bob.say("still here")
        frames = await bob.chat(2)  # ann's /link, then bob's own; a notice would fail it
        assert [f["data"]["text"] for f in frames] == ["/link", "still here"]
        assert frames[1]["data"]["displayName"] == "bob" and frames[1]["data"]["transport"] == "websocket"


async def test_in_token_mode_links_are_offered_to_token_sign_ins_only() -> None:
    settings = Settings.isolated(db=":memory:", auth={"mode": "token", "tokens": {"s3cret": {"userId": "ann"}}})
    async with running(settings=settings) as server:
        # Without the token nobody signs in as ann, so nobody else can ask for her code.
        stranger = await server.client()
        await stranger.send("auth", {"userId": "ann"})
        assert (await stranger.error())["code"] == "AUTH_FAILED"
        ann = await server.client("ann", token="s3cret")
        await ann.say("/link")
        notice = await ann.expect("notice", skip=frozenset({"presence", "message"}))
        code = notice["text"].split("/link ")[1].split()[0]
        # The Telegram side redeems it and from then on posts as ann.
        grace = Credentials(user_id="tg:42", transport="telegram", extra={"verified": True, "display_name": "Grace"})
        await server.hub.receive(await server.hub.authenticate(grace), f"/link {code}", transport="telegram")
        await server.hub.settle()
        assert (await server.hub.authenticate(grace)).user_id == "ann"
        # A name another transport vouches for is not a token sign-in: no code for it.
        vouched = await server.hub.authenticate(Credentials(user_id="bea", transport="irc", extra={"verified": True}))
        assert vouched.vouched_by == "irc"
        server.hub.roster.arrive(vouched, "irc")
        asked = await server.hub.receive(vouched, "/link", transport="irc")
        await server.hub.settle()
        answer = next(m for m in (await server.hub.history(limit=10))[0] if m.reply_to == asked.id)
        assert answer.text.startswith("Link codes are only given to people who signed in to chatbus themselves")
        assert "irc vouches for" in answer.text


async def test_an_edit_that_changes_nothing_is_answered_and_nobody_else_is_told() -> None:
    async with running() as server:
        ann, bob = await server.client("ann"), await server.client("bob")
        await ann.say("ship it")
        sent = await bob.expect("message")
        await ann.expect("message")
        await ann.send("edit", {"id": sent["id"], "text": "ship it"})
        same = await ann.error()
        assert same["code"] == "INVALID_MESSAGE"
        assert same["message"] == f"Message {sent['id']} already says that; nothing was changed."
        await ann.send("edit", {"id": sent["id"], "text": "ship it now"})
        assert (await bob.expect("message_edited"))["text"] == "ship it now"
