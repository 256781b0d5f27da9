"""Browser tests of the web chat page: a real chatbus server and Debian's Chromium.

The server is a real hub with the WebSocket transport and a SQLite database in
the test's tmp dir, running on its own thread and event loop so that the
synchronous Playwright API can drive the browser from the test. Chromium is
launched once per test module; each test opens its own browser contexts (separate
cookies and localStorage, like separate people).

Without ``/usr/bin/chromium`` the tests are skipped, unless ``CI=true``: then a
missing browser is a failure.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest

from chatbus.core.hub import Hub
from chatbus.core.settings import Settings
from chatbus.transports.websocket import WebSocketTransport
from tests.support import require_program

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
#: Longest wait for anything the page should show (milliseconds).
WAIT_MS = 10_000

T = TypeVar("T")


class ChatServer:
    """A running chatbus (hub + WebSocket transport) on 127.0.0.1 on a thread of its own.

    ``restart()`` stops it and starts a new hub on the same port and database,
    as an operator restarting ``chatbus serve`` would.
    """

    def __init__(self, db: Path, *, settings: dict[str, Any] | None = None) -> None:
        self.db = db
        self.options = dict(settings or {})
        self.port = 0
        self.hub: Hub | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="chatbus-test-server", daemon=True)
        self._thread.start()

    # running code on the server's loop -------------------------------------------
    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 15.0) -> T:
        """Run ``coro`` on the server's event loop and return its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def run(self, function: Callable[[], T]) -> T:
        """Run a plain function on the server's loop (for hub methods that are not coroutines)."""

        async def wrapper() -> T:
            return function()

        return self.call(wrapper())

    # lifecycle ---------------------------------------------------------------------
    def settings(self, **extra: Any) -> Settings:
        values: dict[str, Any] = {"db": str(self.db), **self.options, **extra}
        return Settings.isolated(**values)

    def start(self) -> None:
        async def start() -> tuple[Hub, int]:
            transport = WebSocketTransport(host="127.0.0.1", port=self.port)
            hub = Hub(self.settings(), transports=[transport], load_entrypoints=False)
            await hub.start()
            return hub, transport.port

        self.hub, self.port = self.call(start())

    def stop(self) -> None:
        hub, self.hub = self.hub, None
        if hub is not None:
            self.call(hub.stop(timeout=5.0))

    def restart(self) -> None:
        self.stop()
        self.start()

    def offline(self, work: Callable[[Hub], Coroutine[Any, Any, None]]) -> None:
        """While the server is down: open the same database with no transport and run ``work``."""

        async def run() -> None:
            hub = Hub(self.settings(), transports=[], load_entrypoints=False)
            async with hub:
                await work(hub)

        self.call(run())

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()

    @property
    def url(self) -> str:
        """The address of the chat page."""
        return f"http://127.0.0.1:{self.port}/"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright.

    One browser per test module: Playwright's synchronous API keeps an event
    loop running on the main thread while it is open, which would get in the
    way of the asyncio tests that run after these.
    """
    require_program(CHROMIUM, "chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def server_options() -> dict[str, Any]:
    """Extra settings for the ``server`` fixture; override with parametrize or in a module.

    The rate limit is raised so that tests can type faster than people do;
    the rate-limit test sets its own.
    """
    return {"rate_limit": {"burst": 200, "per_second": 100.0, "per_hour": 10_000}}


@pytest.fixture
def server(tmp_path: Path, server_options: dict[str, Any]) -> Iterator[ChatServer]:
    """A running chatbus with its SQLite database in the test's tmp dir."""
    chat = ChatServer(tmp_path / "chat.db", settings=server_options)
    try:
        chat.start()
        yield chat
    finally:
        chat.close()


class Pages:
    """Opens pages as separate people (one browser context each) and closes them all."""

    def __init__(self, browser: Any, server: ChatServer) -> None:
        self.browser = browser
        self.server = server
        self.contexts: list[Any] = []
        self.errors: list[str] = []

    def open(self, *, width: int = 1200, height: int = 800, scheme: str = "light", **options: Any) -> Any:
        """A fresh browser context (a new person) with the chat page loaded."""
        context = self.browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme, **options)
        context.set_default_timeout(WAIT_MS)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"{error}"))
        page.on("dialog", lambda dialog: self.errors.append(f"dialog opened: {dialog.message}"))
        page.goto(self.server.url)
        return page

    def join(self, user_id: str, role: str = "", token: str = "", **options: Any) -> Any:
        """A page that has joined the chat as ``user_id``."""
        page = self.open(**options)
        join(page, user_id, role, token)
        return page

    def close(self) -> None:
        """Close every browser context opened by this test."""
        for context in self.contexts:
            context.close()


def join(page: Any, user_id: str, role: str = "", token: str = "") -> None:
    """Fill in the join form and wait until the chat is shown and connected."""
    page.get_by_label("Your user id").fill(user_id)
    if role:
        page.get_by_label("Your role").fill(role)
    if token:
        page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Join").click()
    wait_connected(page)


def wait_connected(page: Any) -> None:
    """Wait until the chat view is shown and the connection indicator says connected."""
    page.wait_for_selector("#chat-view:not([hidden])")
    page.wait_for_selector('#connection[data-state="ready"]')


def send(page: Any, text: str) -> None:
    """Type ``text`` in the message box and press Enter."""
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def message_items(page: Any, text: str | None = None) -> Any:
    """The messages shown, or those whose text is exactly ``text``."""
    items = page.locator("#messages li.msg")
    if text is None:
        return items
    return items.filter(has=page.locator(".msg-text", has_text=re.compile(f"^{re.escape(text)}$")))


def shown_texts(page: Any) -> list[str]:
    """The text of every message shown, top to bottom."""
    texts: list[str] = page.locator("#messages li.msg .msg-text").all_text_contents()
    return texts


def wait_until(page: Any, expression: str, *, arg: Any = None, timeout_ms: int = WAIT_MS) -> Any:
    """Poll a JavaScript function in the page until it returns something truthy.

    (Playwright's ``wait_for_function`` evaluates strings in a way the page's
    Content-Security-Policy forbids; ``evaluate`` is not subject to it.)
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        value = page.evaluate(expression, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_ms} ms waiting for {expression}")
        page.wait_for_timeout(50)


def screenshot(page: Any, name: str) -> Path:
    """Save a screenshot under test-artifacts/web/ for people to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


@pytest.fixture
def pages(browser: Any, server: ChatServer) -> Iterator[Pages]:
    """Pages on ``server``; fails the test when any of them reported a script error."""
    opened = Pages(browser, server)
    try:
        yield opened
    finally:
        opened.close()
    assert not opened.errors, f"the page reported errors: {opened.errors}"


def message_id(page: Any, text: str) -> int:
    """The server's id of the message shown with exactly ``text``."""
    value = message_items(page, text).get_attribute("data-id")
    assert value is not None, f"no message {text!r} is shown"
    return int(value)


def running_hub(server: ChatServer) -> Hub:
    """The hub of a running ``server``, to act as other people and agents do."""
    assert server.hub is not None, "the server is not running"
    return server.hub
