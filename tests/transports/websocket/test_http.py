"""Plain HTTP on the chat port: the page, its files, health, info, and nothing else."""

from __future__ import annotations

import json

import pytest

from chatbus.transports.websocket.http import STATIC_ROOT

from .helpers import Client, http_get, running


async def test_root_serves_the_bundled_chat_page() -> None:
    async with running() as server:
        status, headers, body = await http_get(server.port, "/")
        assert status == 200
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert body == (STATIC_ROOT / "index.html").read_bytes()
        assert int(headers["content-length"]) == len(body)
        # A query string does not change the page.
        status, _, again = await http_get(server.port, "/?room=dev")
        assert status == 200 and again == body


async def test_static_files_are_served_with_their_content_type() -> None:
    files = sorted(p for p in STATIC_ROOT.rglob("*") if p.is_file() and not p.name.startswith("."))
    assert files, "the package ships its web page"
    expected = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    async with running() as server:
        for path in files:
            relative = path.relative_to(STATIC_ROOT).as_posix()
            status, headers, body = await http_get(server.port, f"/static/{relative}")
            assert status == 200, relative
            assert body == path.read_bytes()
            if path.suffix in expected:
                assert headers["content-type"].startswith(expected[path.suffix]), (relative, headers)
            assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/static/../server.py",
        "/static/%2e%2e/server.py",
        "/static/..%2fserver.py",
        "/static/..%5cserver.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/",
        "/static/does-not-exist.js",
        "/static/.hidden",
        "/../../etc/passwd",
        "/nope",
        "/server.py",
    ],
)
async def test_nothing_outside_the_static_folder_is_served(path: str) -> None:
    async with running() as server:
        status, _, body = await http_get(server.port, path)
        assert status == 404, body
        assert b"import" not in body and b"root:" not in body


async def test_healthz_says_ok_while_running() -> None:
    async with running() as server:
        status, headers, body = await http_get(server.port, "/healthz")
        assert (status, body) == (200, b"ok\n")
        assert headers["content-type"].startswith("text/plain")


async def test_ws_info_reports_transports_address_and_users() -> None:
    async with running() as server:
        alice = await server.client("alice")
        status, headers, body = await http_get(server.port, "/ws-info")
        assert status == 200 and headers["content-type"] == "application/json"
        info = json.loads(body)
        assert info["transports"] == ["websocket"]
        assert info["host"] == "127.0.0.1" and info["port"] == server.port
        assert info["connected_users"] == 1
        assert info["running"] is True
        assert info["health"]["websocket"]["healthy"] is True
        assert info["health"]["websocket"]["connections"] == 1
        await alice.close()


async def test_other_methods_are_not_allowed() -> None:
    async with running() as server:
        status, headers, _ = await http_get(server.port, "/", method="DELETE")
        assert status == 405 and "GET" in headers["allow"]
        status, headers, body = await http_get(server.port, "/healthz", method="HEAD")
        assert status == 200 and body == b"" and headers["content-length"] == "3"


async def test_a_websocket_handshake_on_any_path_opens_a_chat_connection() -> None:
    async with running() as server:
        for path in ("", "/", "/ws", "/healthz", "/chat/room?x=1"):
            client = await Client.open(f"ws://127.0.0.1:{server.port}{path}")
            auth = await client.sign_in("alice")
            assert auth["success"] is True
            await client.close()
