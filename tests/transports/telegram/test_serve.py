"""``chatbus serve`` with both transports, ``chatbus status``, and start-up errors, as a user runs them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from tests.support import ChatbusProcess, chatbus_env, free_port, run_chatbus

from .conftest import CHAT
from .fakebot import FakeBotAPI
from .test_bridge import WebClient, chat_message
from .test_files import picture

START = 30.0


def telegram_env(api: FakeBotAPI, **extra: str) -> dict[str, str]:
    return chatbus_env(
        {
            "CHATBUS_TELEGRAM__BASE_URL": api.base_url,
            "CHATBUS_TELEGRAM__RETRY_INITIAL_DELAY": "0.05",
            "CHATBUS_TELEGRAM__RETRY_MAX_DELAY": "0.2",
            "CHATBUS_TELEGRAM__POLL_TIMEOUT": "2",
            **extra,
        }
    )


async def status(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    result = await asyncio.to_thread(run_chatbus, "status", *args, env=env, cwd=cwd, timeout=30)
    return result.returncode, result.stdout + result.stderr


async def test_serve_websocket_and_telegram_together_and_check_their_health(api: FakeBotAPI, tmp_path: Path) -> None:
    db = str(tmp_path / "chat.db")
    port = free_port()
    env = telegram_env(api, CHATBUS_TELEGRAM__TOKEN=api.token, CHATBUS_TELEGRAM__CHAT_IDS=str(CHAT))
    hired = await asyncio.to_thread(
        run_chatbus, "agents", "hire", "coder", "developer", "--db", db, "--create", env=env, cwd=tmp_path
    )
    assert hired.returncode == 0, hired.stderr
    args = ("serve", "--transport", "websocket", "--transport", "telegram", "--port", str(port), "--db", db)
    with ChatbusProcess(*args, env=env, cwd=tmp_path) as server:
        await asyncio.to_thread(server.stderr.wait_for, "hub running with transports: websocket, telegram", START)
        ana = await WebClient.join(port, "ana")
        try:
            await ana.say("from the browser")
            [sent] = await api.wait_sent(1)
            assert sent.text == "ana: from the browser" and sent.bold() == ["ana"]

            api.post(CHAT, "@coder hello", user=api.user(42, username="alice"))
            frame = await ana.wait_for(chat_message("@coder hello"))
            assert (frame["data"]["sender"], frame["data"]["transport"]) == ("tg:42", "telegram")
            answer = await ana.wait_for(lambda f: f["type"] == "agent_response" and f["data"]["sender"] == "coder")
            await api.wait_for(lambda: any(s.text == "coder: " + answer["data"]["text"] for s in api.sent))

            code, out = await status("--url", f"http://127.0.0.1:{port}", env=env, cwd=tmp_path)
            assert code == 0, out
            lines = {line.split()[0]: line for line in out.splitlines()[1:]}
            assert "healthy" in lines["telegram"].split() and "healthy" in lines["websocket"].split()

            # The bot is removed from the group: Telegram turns unhealthy, the web chat goes on.
            api.kick(CHAT)
            await ana.say("is the bot still there?")
            await api.wait_for(lambda: any(c.status == 403 for c in api.calls_of("sendMessage")))
            # Without --url the address comes from the websocket settings.
            code, out = await status(env={**env, "CHATBUS_WEBSOCKET__PORT": str(port)}, cwd=tmp_path)
            assert code == 1, out
            telegram_line = next(line for line in out.splitlines() if line.startswith("telegram"))
            assert "UNHEALTHY" in telegram_line and "kicked" in telegram_line
            await ana.say("still chatting")
            await ana.wait_for(chat_message("still chatting"))
        finally:
            await ana.close()
        assert await asyncio.to_thread(server.terminate) == 0


async def test_communication_transport_both_with_the_earlier_variable_names(api: FakeBotAPI, tmp_path: Path) -> None:
    port = free_port()
    env = telegram_env(
        api,
        COMMUNICATION_TRANSPORT="both",
        TELEGRAM_BOT_TOKEN=api.token,
        TELEGRAM_CHAT_ID=str(CHAT),
        WEBSOCKET_PORT=str(port),
    )
    with ChatbusProcess("serve", "--db", str(tmp_path / "chat.db"), env=env, cwd=tmp_path) as server:
        await asyncio.to_thread(server.stderr.wait_for, "hub running with transports: websocket, telegram", START)
        ana = await WebClient.join(port, "ana")
        try:
            api.post(CHAT, "old habits", user=api.user(42, username="alice"))
            await ana.wait_for(chat_message("old habits"))
            await ana.say("new page")
            [sent] = await api.wait_sent(1)
            assert sent.text == "ana: new page"
        finally:
            await ana.close()
        assert await asyncio.to_thread(server.terminate) == 0
    assert api.token not in "\n".join(server.stderr.lines)


async def test_a_bad_token_stops_serve_with_one_line_saying_what_to_do(api: FakeBotAPI, tmp_path: Path) -> None:
    env = telegram_env(api, TELEGRAM_BOT_TOKEN="1:revoked-secret", TELEGRAM_CHAT_ID=str(CHAT))
    result = await asyncio.to_thread(
        run_chatbus, "serve", "--transport", "telegram", "--db", str(tmp_path / "chat.db"), env=env, cwd=tmp_path
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors[-1].startswith("chatbus: error: Telegram rejected the bot token")
    assert "@BotFather" in errors[-1]
    assert "Traceback" not in result.stderr
    assert "revoked-secret" not in result.stderr


async def test_status_explains_when_no_server_answers(tmp_path: Path) -> None:
    port = free_port()
    code, out = await status("--url", f"127.0.0.1:{port}", env=chatbus_env(), cwd=tmp_path)
    assert code == 1
    assert f"no chatbus server answers at http://127.0.0.1:{port}/ws-info" in out
    assert "chatbus serve" in out


async def test_serve_relays_people_edits_reactions_and_says_what_the_bot_cannot_see(
    api: FakeBotAPI, tmp_path: Path
) -> None:
    api.privacy = True
    port = free_port()
    env = telegram_env(api, CHATBUS_TELEGRAM__TOKEN=api.token, CHATBUS_TELEGRAM__CHAT_IDS=str(CHAT))
    args = ("serve", "--transport", "websocket", "--transport", "telegram", "--port", str(port))
    with ChatbusProcess(*args, "--db", str(tmp_path / "chat.db"), env=env, cwd=tmp_path) as server:
        await asyncio.to_thread(server.stderr.wait_for, "hub running with transports: websocket, telegram", START)
        ana = await WebClient.join(port, "ana")
        grace = api.user(42, first_name="Grace")  # no username
        try:
            posted = api.post(CHAT, "hello from grace", user=grace)
            frame = await ana.wait_for(chat_message("hello from grace"))
            assert frame["data"]["sender"] == "tg:42"
            grace_id = frame["data"]["id"]

            # ana mentions her the way the page completes it: Telegram notifies her.
            await ana.say("@tg:42 welcome!")
            mine = await ana.wait_for(chat_message("@tg:42 welcome!"))
            [sent] = await api.wait_sent(1)
            assert (sent.text, sent.mentioned()) == ("ana: Grace welcome!", [42])

            # Grace fixes her message and reacts to ana's; the web sees both.
            api.edit(CHAT, posted["message_id"], "hello from Grace", user=grace)
            edited = await ana.wait_for(lambda f: f["type"] == "message_edited")
            assert (edited["data"]["id"], edited["data"]["text"]) == (grace_id, "hello from Grace")
            api.react(CHAT, sent.message_id, user=grace, old=[], new=["❤"])
            reaction = await ana.wait_for(lambda f: f["type"] == "reaction")
            assert (reaction["data"]["id"], reaction["data"]["userId"]) == (mine["data"]["id"], "tg:42")

            # ana edits her message and reacts to Grace's; Telegram shows both.
            await ana.ws.send(json.dumps({"type": "edit", "data": {"id": mine["data"]["id"], "text": "welcome back"}}))
            await api.wait_for(lambda: sent.text == "ana: welcome back")
            await ana.ws.send(json.dumps({"type": "react", "data": {"id": grace_id, "emoji": "👍", "on": True}}))
            await api.wait_for(
                lambda: api.chats[CHAT].reactions.get(posted["message_id"], {}).get(api.bot["id"]) == ["👍"]
            )

            # Privacy mode: healthy, and chatbus status says what to do about it.
            code, out = await status("--url", f"http://127.0.0.1:{port}", env=env, cwd=tmp_path)
            assert code == 0, out
            telegram_line = next(line for line in out.splitlines() if line.startswith("telegram"))
            assert "privacy mode is on" in telegram_line and "/setprivacy" in telegram_line
        finally:
            await ana.close()
        assert await asyncio.to_thread(server.terminate) == 0
    assert any("privacy mode is on" in line for line in server.stderr.lines)


async def test_serve_carries_files_both_ways_and_keeps_them_beside_the_database(
    api: FakeBotAPI, tmp_path: Path
) -> None:
    """``chatbus serve`` as a user runs it: a picture uploaded on the web side reaches Telegram as a
    photo, a document from Telegram downloads from the server, and the files are kept in the folder
    beside the database."""
    db = tmp_path / "chat.db"
    port = free_port()
    env = telegram_env(api, CHATBUS_TELEGRAM__TOKEN=api.token, CHATBUS_TELEGRAM__CHAT_IDS=str(CHAT))
    args = ("serve", "--transport", "websocket", "--transport", "telegram", "--port", str(port), "--db", str(db))
    with ChatbusProcess(*args, env=env, cwd=tmp_path) as server:
        await asyncio.to_thread(server.stderr.wait_for, "hub running with transports: websocket, telegram", START)
        ana = await WebClient.join(port, "ana")
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                image = picture(70, 50, "PNG")
                uploaded = await http.post("/files", files={"file": ("plan.png", image, "image/png")},
                                           headers={"X-Chatbus-User": "ana"})  # fmt: skip
                assert uploaded.status_code == 201, uploaded.text
                await ana.say("the plan", attachments=[uploaded.json()["id"]])
                [sent] = await api.wait_sent(1)
                assert (sent.kind, sent.text, sent.files[0].data) == ("photo", "ana: the plan", image)

                api.post(CHAT, None, user=api.user(42, username="alice"), **document_update(api))
                frame = await ana.wait_for(chat_message("minutes of today"))
                [attachment] = frame["data"]["attachments"]
                download = await http.get(attachment["url"])
                assert download.content == b"%PDF-1.4 minutes"
                assert api.token not in json.dumps(ana.frames)
        finally:
            await ana.close()
        assert await asyncio.to_thread(server.terminate) == 0
    kept = [path for path in (tmp_path / "chat-files").rglob("*") if path.is_file()]
    assert sorted(path.read_bytes() for path in kept) == sorted([image, b"%PDF-1.4 minutes"])


def document_update(api: FakeBotAPI) -> dict[str, object]:
    """The fields of a message carrying a document kept by the fake Bot API."""
    stored = api.add_file(b"%PDF-1.4 minutes", suffix=".pdf")
    return {"caption": "minutes of today", "document": {"file_id": stored.file_id, "file_unique_id": stored.unique_id,
            "file_size": stored.size, "file_name": "minutes.pdf", "mime_type": "application/pdf"}}  # fmt: skip
