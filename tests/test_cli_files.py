"""``chatbus send --file``: files uploaded to a running ``chatbus serve`` and attached."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from websockets.sync.client import connect

from tests.support import ChatbusProcess, chatbus_env, free_port, run_chatbus

TIMEOUT = 10.0


def serve(tmp_path: Path, **env: str) -> tuple[ChatbusProcess, str]:
    extra = {"CHATBUS_FILES__MAX_FILE_BYTES": "20000", **env}
    server = ChatbusProcess("serve", "--port", "0", "--db", "chat.db", env=chatbus_env(extra), cwd=tmp_path)
    line = server.stderr.wait_for("open the web chat at", timeout=30)
    return server, line.rsplit(" ", 1)[-1].rstrip("/")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    process, url = serve(tmp_path)
    with process:
        yield url
        assert process.terminate() == 0


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def replayed(url: str, user: str = "dave", **auth: Any) -> list[dict[str, Any]]:
    """The messages a client that signs in now is given (``missed`` after ``lastSeenId: 0``),
    checked to be what it is given when it asks for ``history``."""
    with connect(url.replace("http", "ws", 1) + "/", open_timeout=TIMEOUT) as ws:
        ws.send(json.dumps({"type": "auth", "data": {"userId": user, "lastSeenId": 0, **auth}}))
        missed = [frame["data"] for frame in expect(ws, "auth_response")["missed"]]
        ws.send(json.dumps({"type": "history", "data": {"limit": 50}}))
        history = [frame["data"] for frame in expect(ws, "history")["messages"]]
    assert [m["attachments"] for m in history] == [m["attachments"] for m in missed]
    return missed


def expect(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        frame = json.loads(ws.recv(timeout=TIMEOUT))
        if frame["type"] == "error":
            raise AssertionError(frame)
        if frame["type"] == kind:
            return frame["data"]  # type: ignore[no-any-return]


def download(url: str, path: str) -> bytes:
    with urllib.request.urlopen(url + path, timeout=TIMEOUT) as answer:
        return answer.read()  # type: ignore[no-any-return]


def test_send_uploads_each_file_and_attaches_them(tmp_path: Path, server: str) -> None:
    (tmp_path / "notes.txt").write_text("all green\n")
    (tmp_path / "chart.png").write_bytes(png(30, 20))
    sent = run_chatbus(
        "send", "the build report", "--user", "ci-bot", "--file", "notes.txt", "--file", "chart.png",
        "--url", server, cwd=tmp_path,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == "sent message 1 to #general with 2 files"
    alone = run_chatbus("send", "--user", "ci-bot", "--file", "notes.txt", "--file", "./notes.txt", "--url", server,
                        cwd=tmp_path)  # fmt: skip
    assert alone.stdout.strip() == "sent message 2 to #general with 1 file", alone.stderr
    first, second = replayed(server)
    assert first["text"] == "the build report" and first["sender"] == "ci-bot"
    notes, chart = first["attachments"]
    assert (notes["name"], notes["size"], notes["contentType"]) == ("notes.txt", 10, "text/plain")
    assert (chart["name"], chart["contentType"], chart["width"], chart["height"]) == ("chart.png", "image/png", 30, 20)
    assert download(server, notes["url"]) == b"all green\n"
    assert download(server, chart["url"]) == (tmp_path / "chart.png").read_bytes()
    assert second["text"] == "" and [a["id"] for a in second["attachments"]] == [notes["id"]]
    (tmp_path / 'résumé "final".md').write_text("# CV\n")
    named = run_chatbus("send", "--user", "ci-bot", "--file", 'résumé "final".md', "--url", server, cwd=tmp_path)
    assert named.returncode == 0, named.stderr
    assert [a["name"] for a in replayed(server)[2]["attachments"]] == ['résumé "final".md']  # as written


def test_what_the_server_refuses_is_one_clear_line_and_nothing_is_sent(tmp_path: Path, server: str) -> None:
    (tmp_path / "big.txt").write_bytes(b"x" * 3_000_000)  # the server answers before it has all of it
    (tmp_path / "tool.exe").write_bytes(b"MZ" + b"\0" * 100)
    (tmp_path / "fine.txt").write_text("fine")
    cases = {
        "big.txt": "big.txt is too big for the server (2.9 MiB): The file is larger than 19.5 KiB, the limit",
        "tool.exe": "the server does not take files like tool.exe",
        "missing.txt": "there is no file missing.txt; check the --file path",
        ".": ". is not a file (a directory?); give --file a file",
    }
    for name, words in cases.items():
        result = run_chatbus(
            "send", "see attached", "--user", "ci", "--file", "fine.txt", "--file", name, "--url", server,
            cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 1, result.stdout
        assert result.stderr.startswith(f"chatbus: error: {words}"), result.stderr
        assert "Traceback" not in result.stderr
    empty = run_chatbus("send", "--user", "ci", "--url", server, cwd=tmp_path)
    assert empty.returncode == 1 and "nothing to send" in empty.stderr
    # No token was given: the name is what to check, not a token.
    named = run_chatbus("send", "--user", "bad name", "--file", "fine.txt", "--url", server, cwd=tmp_path)
    assert named.returncode == 1 and "User ids are" in named.stderr, named.stderr
    assert named.stderr.rstrip().endswith("; check --user, or give --token where the chat needs one"), named.stderr
    assert replayed(server) == []


def test_send_file_with_a_token(tmp_path: Path) -> None:
    tokens = json.dumps({"s3cret-ci": {"userId": "ci", "role": "bot"}, "s3cret-dave": {"userId": "dave"}})
    process, url = serve(tmp_path, CHATBUS_AUTH__MODE="token", CHATBUS_AUTH__TOKENS=tokens)
    (tmp_path / "log.txt").write_text("deployed 1.2.3")
    with process:
        wrong = run_chatbus("send", "log", "--user", "ci", "--token", "guess", "--file", "log.txt", "--url", url,
                            cwd=tmp_path)  # fmt: skip
        assert wrong.returncode == 1
        assert re.match(r"chatbus: error: the server refused the upload of log\.txt.*; check --token", wrong.stderr)
        assert ".;" not in wrong.stderr  # one sentence, not a full stop and a semicolon
        none = run_chatbus("send", "log", "--user", "ci", "--file", "log.txt", "--url", url, cwd=tmp_path)
        assert none.returncode == 1 and "give --token where the chat needs one" in none.stderr
        sent = run_chatbus("send", "log", "--user", "ci", "--token", "s3cret-ci", "--file", "log.txt", "--url", url,
                           cwd=tmp_path)  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        (message,) = replayed(url, token="s3cret-dave")
        assert message["sender"] == "ci" and [a["name"] for a in message["attachments"]] == ["log.txt"]
        assert process.terminate() == 0
    with sqlite3.connect(tmp_path / "chat.db") as raw:
        assert raw.execute("SELECT COUNT(*) FROM messages").fetchone() == (1,)


def test_send_file_without_a_server_is_one_clear_line(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "a.txt").write_text("a")
    result = run_chatbus(
        "send", "--user", "ci", "--file", "a.txt", "--url", f"http://127.0.0.1:{port}", "--timeout", "3", cwd=tmp_path
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"chatbus: error: could not upload a.txt to http://127.0.0.1:{port} (Connection refused); "
        "is chatbus serve running there?"
    )


def test_send_file_over_https_trusts_only_the_given_authority(tmp_path: Path) -> None:
    from tests.certificates import make_certificates

    certs = make_certificates(tmp_path / "tls")
    (tmp_path / "chatbus.toml").write_text(f'[websocket]\ncertfile = "{certs.cert}"\nkeyfile = "{certs.key}"\n')
    (tmp_path / "notes.txt").write_text("over tls")
    server = ChatbusProcess("serve", "--port", "0", "--db", "chat.db", cwd=tmp_path)
    with server:
        line = server.stderr.wait_for("open the web chat at", timeout=30)
        url = line.rsplit(" ", 1)[-1].rstrip("/")
        assert url.startswith("https://")
        untrusted = run_chatbus("send", "--user", "ci", "--file", "notes.txt", "--url", url, cwd=tmp_path)
        assert untrusted.returncode == 1
        assert untrusted.stderr.startswith(f"chatbus: error: the certificate of {url} is not trusted")
        sent = run_chatbus("send", "--user", "ci", "--file", "notes.txt", "--url", url, "--cafile", str(certs.ca),
                           cwd=tmp_path)  # fmt: skip
        assert (sent.returncode, sent.stdout.strip()) == (0, "sent message 1 to #general with 1 file"), sent.stderr
        assert server.terminate() == 0


def test_send_file_to_a_server_that_never_answers_gives_up_after_the_timeout(tmp_path: Path) -> None:
    import socket

    (tmp_path / "a.txt").write_text("a")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        result = run_chatbus("send", "--user", "ci", "--file", "a.txt", "--url", url, "--timeout", "1", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"chatbus: error: could not upload a.txt to {url} (no answer within 1 s); is chatbus serve running there?"
    )


def test_a_file_that_changes_while_it_is_sent_is_never_sent_other_than_announced(tmp_path: Path) -> None:
    from chatbus.cli.uploads import LocalFile, _chunks
    from chatbus.core.errors import ChatbusError

    path = tmp_path / "growing.log"
    path.write_bytes(b"0123456789")
    assert b"".join(_chunks(LocalFile(path, path.name, 4, "text/plain"))) == b"0123"  # grew: what was announced
    with pytest.raises(ChatbusError, match="got shorter while it was being sent"):
        list(_chunks(LocalFile(path, path.name, 20, "text/plain")))
