"""The chatbus command as a user runs it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import chatbus
from tests.support import chatbus_env, free_port, run_chatbus


def test_version() -> None:
    result = run_chatbus("version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"chatbus {chatbus.__version__}"


def test_plugins_lists_builtins_and_transports_with_hooks() -> None:
    result = run_chatbus("plugins", "--json")
    assert result.returncode == 0, result.stderr
    found = {(entry["kind"], entry["name"]): entry for entry in json.loads(result.stdout)}
    assert found[("plugin", "ratelimit")]["hooks"] == ["rate_limit"]
    assert found[("plugin", "mentions")]["hooks"] == ["parse_message"]
    assert "on_auth" in found[("plugin", "auth")]["hooks"]
    assert found[("plugin", "auth")]["distribution"] == "chatbus"
    assert ("transport", "websocket") in found


def test_a_bad_setting_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    result = run_chatbus("serve", env=chatbus_env({"CHATBUS_MAX_TEXT_LENGTH": "lots"}), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "max_text_length (CHATBUS_MAX_TEXT_LENGTH)" in lines[0]


def test_a_missing_config_file_is_one_line(tmp_path: Path) -> None:
    result = run_chatbus("serve", "--config", "nope.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "chatbus: error: config file nope.toml not found: give the path of a readable TOML file"
    )


def test_an_unusable_database_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("x")
    result = run_chatbus("serve", "--db", "not-a-folder/chat.db", "--port", "0", cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot open the database not-a-folder/chat.db" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_command_line_flags_are_a_usage_error() -> None:
    result = run_chatbus("serve", "--colour", "blue")
    assert result.returncode == 2
    assert "unrecognized arguments: --colour" in result.stderr


def test_agents_roster_from_the_command_line(tmp_path: Path) -> None:
    db = str(tmp_path / "chat.db")
    missing = run_chatbus("agents", "list", "--db", db)
    assert missing.returncode == 1 and "there is no database at" in missing.stderr
    assert not Path(db).exists()  # nothing was created silently
    hired = run_chatbus(
        "agents", "hire", "alice", "developer", "--command", 'opencode run "{task}"', "--db", db, "--create"
    )
    assert hired.returncode == 0, hired.stderr
    assert hired.stdout.startswith("hired alice (developer)")
    again = run_chatbus("agents", "hire", "alice", "lead developer", "--db", db)
    assert again.stdout.startswith("updated alice (lead developer)")
    again = run_chatbus("agents", "hire", "alice", "developer", "--command", 'opencode run "{task}"', "--db", db)
    listed = run_chatbus("agents", "list", "--json", "--db", db)
    roster = json.loads(listed.stdout)
    assert roster == [
        {
            "name": "alice",
            "role": "developer",
            "status": "idle",
            "currentTask": None,
            "progress": None,
            "command": ["opencode", "run", "{task}"],
            "model": None,
            "stdin": False,
            "allow": None,
        }
    ]
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT name FROM agents").fetchall() == [("alice",)]
    fired = run_chatbus("agents", "fire", "alice", "--db", db)
    assert fired.returncode == 0
    again = run_chatbus("agents", "fire", "alice", "--db", db)
    assert again.returncode == 1 and "no agent called 'alice'" in again.stderr


def test_serve_logs_where_it_listens_and_stops_on_sigterm_with_status_0(tmp_path: Path) -> None:
    from tests.support import ChatbusProcess

    with ChatbusProcess("serve", "--port", "0", "--db", str(tmp_path / "chat.db"), cwd=tmp_path) as server:
        line = server.stderr.wait_for("listening on", timeout=30)
        assert "open the web chat at http://127.0.0.1:" in line
        assert server.terminate() == 0
    assert not any("Traceback" in line for line in server.stderr.drain())


def test_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_chatbus("serve", "--port", str(port), "--db", str(tmp_path / "chat.db"), cwd=tmp_path)
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port" in result.stderr
    assert "Traceback" not in result.stderr


def test_send_posts_a_message_to_a_running_server(tmp_path: Path) -> None:
    from tests.support import ChatbusProcess

    with ChatbusProcess("serve", "--port", "0", "--db", str(tmp_path / "chat.db"), cwd=tmp_path) as server:
        line = server.stderr.wait_for("open the web chat at", timeout=30)
        url = line.rsplit(" ", 1)[-1]
        sent = run_chatbus("send", "deploy finished @alice", "--user", "ci-bot", "--url", url)
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.strip() == "sent message 1 to #general"
        reply = run_chatbus("send", "thanks", "--user", "alice", "--reply-to", "1", "--url", url)
        assert reply.stdout.strip() == "sent message 2 to #general"
        refused = run_chatbus("send", "   ", "--user", "alice", "--url", url)
        assert refused.returncode == 1
        assert "the server refused: Message text is empty" in refused.stderr
        nowhere = run_chatbus("send", "an answer", "--user", "alice", "--reply-to", "99", "--url", url)
        assert nowhere.returncode == 1
        assert "the server refused: There is no message 99 to reply to" in nowhere.stderr
        assert server.terminate() == 0
    with sqlite3.connect(tmp_path / "chat.db") as raw:
        rows = raw.execute("SELECT id, sender, text, mentions, reply_to FROM messages ORDER BY id").fetchall()
    assert rows == [(1, "ci-bot", "deploy finished @alice", '["alice"]', None), (2, "alice", "thanks", "[]", 1)]


def test_send_without_a_server_is_one_clear_line() -> None:
    port = free_port()
    result = run_chatbus("send", "hello", "--user", "alice", "--url", f"http://127.0.0.1:{port}", "--timeout", "3")
    assert result.returncode == 1
    assert "is chatbus serve running there?" in result.stderr
    assert "Traceback" not in result.stderr


def test_json_log_lines_when_asked(tmp_path: Path) -> None:
    from tests.support import ChatbusProcess

    env = chatbus_env({"CHATBUS_LOG_FORMAT": "json", "CHATBUS_LOG_LEVEL": "info"})
    with ChatbusProcess("serve", "--port", "0", "--db", str(tmp_path / "chat.db"), env=env, cwd=tmp_path) as server:
        line = server.stderr.wait_for("open the web chat at", timeout=30)
        assert server.terminate() == 0
    entry = json.loads(line)
    assert entry["level"] == "INFO" and entry["logger"] == "chatbus.transports.websocket"
    assert "open the web chat at http://127.0.0.1:" in entry["message"]
    for other in server.stderr.drain():
        json.loads(other)  # every line is one JSON object


def test_status_shows_liveness_readiness_and_each_transport(tmp_path: Path) -> None:
    from tests.support import ChatbusProcess

    with ChatbusProcess("serve", "--port", "0", "--db", str(tmp_path / "chat.db"), cwd=tmp_path) as server:
        line = server.stderr.wait_for("open the web chat at", timeout=30)
        url = line.rsplit(" ", 1)[-1]
        shown = run_chatbus("status", "--url", url)
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert "/healthz: 200 ok" in lines and "/readyz: 200 ready" in lines
        assert any(row.startswith("websocket") and "healthy" in row for row in lines)
        answer = json.loads(run_chatbus("status", "--url", url, "--json").stdout)
        assert answer["healthz"] == {"status": 200, "answer": "ok"}
        assert answer["readyz"] == {"status": 200, "answer": "ready"}
        assert server.terminate() == 0


def test_hiring_into_another_database_than_the_running_servers_warns(tmp_path: Path) -> None:
    from tests.support import ChatbusProcess

    port = free_port()
    with ChatbusProcess("serve", "--port", str(port), "--db", str(tmp_path / "served.db"), cwd=tmp_path) as server:
        server.stderr.wait_for("open the web chat at", timeout=30)
        env = chatbus_env({"CHATBUS_WEBSOCKET__PORT": str(port)})
        same = run_chatbus("agents", "hire", "alice", "developer", "--db", "served.db", env=env, cwd=tmp_path)
        assert same.returncode == 0 and "warning" not in same.stderr
        other = run_chatbus("agents", "hire", "bob", "tester", "--db", "other.db", "--create", env=env, cwd=tmp_path)
        assert other.returncode == 0
        assert f"warning: the chatbus server at http://127.0.0.1:{port} uses another database" in other.stderr
        assert server.terminate() == 0


def test_serve_on_a_redis_nobody_answers_says_which_and_stops(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    env = {**chatbus_env(), "CHATBUS_ENGINE__URL": f"redis://127.0.0.1:{port}/0", "CHATBUS_DB": str(tmp_path / "c.db")}
    result = run_chatbus("serve", "--port", "0", env=env, timeout=30)
    assert result.returncode != 0
    assert f"Redis at redis://127.0.0.1:{port}/0 cannot be reached" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "c.db").exists()  # the SQLite file is not used when the chat runs on Redis
