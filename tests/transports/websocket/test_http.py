"""Plain HTTP on the chat port: the page, its files, health, info, and nothing else."""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from chatbus.transports.websocket.http import PAGE_POLICY, STATIC_ROOT, route, text_response

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


# the routing on its own, without a server ------------------------------------
def request(path: str, method: str = "GET", **headers: str) -> Request:
    return Request(path, Headers([(name.replace("_", "-"), value) for name, value in headers.items()]), method)


async def answer(req: Request, *, running: bool = True, **options: Any) -> Response | None:
    options.setdefault("allowed_origins", ())
    options.setdefault("allowed_hosts", ("chat.example",))
    return await route(req, running=running, info=lambda: {"running": running, "port": 8081}, **options)


async def test_route_lets_allowed_websocket_handshakes_through_on_any_path() -> None:
    for path in ("/", "/ws", "/healthz", "/nope"):
        assert await answer(request(path, Upgrade="websocket", Host="chat.example:8081")) is None
    same_origin = request("/", Upgrade="websocket", Host="chat.example:8081", Origin="http://chat.example:8081")
    assert await answer(same_origin) is None
    listed = request("/", Upgrade="websocket", Host="chat.example:8081", Origin="https://app.example")
    assert await answer(listed, allowed_origins=["https://app.example"]) is None


async def test_route_refuses_a_handshake_from_another_origin(caplog: pytest.LogCaptureFixture) -> None:
    foreign = request("/", Upgrade="websocket", Host="chat.example:8081", Origin="https://evil.example")
    response = await answer(foreign, allowed_origins=["https://app.example"])
    assert response is not None and response.status_code == 403
    assert b"CHATBUS_WEBSOCKET__ALLOWED_ORIGINS" in response.body
    [record] = [r for r in caplog.records if r.name == "chatbus.transports.websocket"]
    assert "evil.example" in record.getMessage() and "https://app.example" in record.getMessage()


async def test_route_answers_health_by_whether_the_hub_runs() -> None:
    up = await answer(request("/healthz"))
    down = await answer(request("/healthz"), running=False)
    assert up is not None and (up.status_code, up.body) == (200, b"ok\n")
    assert down is not None and (down.status_code, down.body) == (503, b"stopping\n")


async def test_route_reports_info_as_json_and_heads_without_a_body() -> None:
    response = await answer(request("/ws-info?x=1"))
    assert response is not None and response.status_code == 200
    assert json.loads(response.body) == {"running": True, "port": 8081}
    head = await answer(request("/ws-info", "HEAD"))
    assert head is not None and head.status_code == 200 and head.body == b""
    assert head.headers["Content-Length"] == response.headers["Content-Length"]


async def test_route_refuses_other_methods_and_unknown_paths() -> None:
    post = await answer(request("/", "POST"))
    assert post is not None and post.status_code == 405 and post.headers["Allow"] == "GET, HEAD"
    missing = await answer(request("/favicon.ico"))
    assert missing is not None and (missing.status_code, missing.body) == (404, b"Not found.\n")


async def test_route_serves_the_page_and_files_from_its_static_folder(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<h1>chat</h1>")
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "app.js").write_text("export {};")
    (tmp_path.parent / "secret.txt").write_text("no")
    for path in ("/", "/index.html", "/static/index.html"):
        page = await answer(request(path), root=tmp_path)
        assert page is not None and page.status_code == 200 and page.body == b"<h1>chat</h1>"
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    script = await answer(request("/static/js/app.js"), root=tmp_path)
    assert script is not None and script.body == b"export {};"
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    for path in ("/static/../secret.txt", "/static/%2e%2e/secret.txt", "/secret.txt", "/static/"):
        refused = await answer(request(path), root=tmp_path)
        assert refused is not None and refused.status_code == 404, path


# security headers ---------------------------------------------------------------
def page_meta_policy() -> str:
    """The Content-Security-Policy of the bundled page's meta tag."""
    page = (STATIC_ROOT / "index.html").read_text()
    match = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert match is not None, "the page keeps its policy in a meta tag too (for a copy opened from disk)"
    return match.group(1)


def test_the_header_policy_is_the_pages_and_forbids_framing() -> None:
    assert PAGE_POLICY == page_meta_policy() + "; frame-ancestors 'none'"


async def test_every_answer_carries_the_security_headers() -> None:
    async with running(allowed_origins=["https://app.example"]) as server:
        port = server.port
        asked = [
            ("GET", "/", {}, 200),
            ("GET", "/static/js/main.js", {}, 200),
            ("GET", "/healthz", {}, 200),
            ("HEAD", "/ws-info", {}, 200),
            ("GET", "/readyz", {}, 200),
            ("GET", "/metrics", {}, 200),
            ("GET", "/nope", {}, 404),
            ("POST", "/", {}, 405),
            ("GET", "/", {"Upgrade": "websocket", "Origin": "https://evil.example"}, 403),
        ]
        for method, path, headers, expected in asked:
            status, answered, _ = await http_get(port, path, headers, method=method)
            assert status == expected, (method, path)
            assert answered["content-security-policy"] == PAGE_POLICY, path
            assert answered["x-frame-options"] == "DENY", path
            assert answered["referrer-policy"] == "no-referrer", path
            assert answered["x-content-type-options"] == "nosniff", path


async def test_a_misdirected_request_carries_them_too() -> None:
    response = await answer(request("/", Host="evil.example"))
    assert response is not None and response.status_code == 421
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"] == PAGE_POLICY


async def test_an_answer_may_replace_a_security_header_without_sending_it_twice() -> None:
    # /files answers, for one, carry a stricter policy of their own.
    response = text_response(HTTPStatus.OK, "x", **{"Content-Security-Policy": "default-src 'none'"})
    assert response.headers.get_all("Content-Security-Policy") == ["default-src 'none'"]
