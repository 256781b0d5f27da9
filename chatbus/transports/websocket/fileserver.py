"""``/files`` on the chat port: uploads and downloads, served beside websockets.

websockets answers HTTP only before a handshake and only without a body
(see :mod:`.connection`). Requests for ``/files`` and below are therefore
claimed by the :class:`FileServer` as soon as their head has arrived and
served here, each on its own task, one request per connection:

==========================  ====================================================
``POST /files``             store one file (:mod:`.uploads`), ``201`` with JSON
``GET /files/<id>/<name>``  the file, streamed (:mod:`.downloads`); ``HEAD`` too
``…?thumb=1``               a small copy of a picture (:mod:`.thumbnails`)
==========================  ====================================================

A WebSocket handshake on these paths still goes to websockets (a handshake
on any path opens a chat connection). The checks are those of the rest of the
port (:mod:`.http`): the Host header names this server; an upload from a
browser page must come from the page's own origin or an allowed one (a form
on another site cannot post files into the chat); uploads say who sends them
(``Authorization: Bearer TOKEN``, or ``X-Chatbus-User: id`` where the chat
needs no token; an upload that says neither is from :data:`ANONYMOUS`), checked
by the hub's ``on_auth`` like a sign-in. Per client
address (the same as :mod:`.proxies` tells the guard): at most
``max_uploads_per_address`` uploads and ``max_downloads_per_address``
downloads at once; a failed upload sign-in counts as a failed sign-in of
:class:`~.guard.Guard`, and an address it has locked out gets ``429``. In
all, at most ``max_connections`` transfers run at once (``503`` beyond).

Every error is ``{"error": {"code": ..., "message": ...}}`` with words that
say what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Final

from chatbus.core.errors import AuthError, ChatbusError, FileRefused, for_people
from chatbus.core.message import Credentials, Identity

from .downloads import serve_file
from .exchange import CHUNK, Exchange, HttpError
from .frames import attachment_entry
from .guard import Guard
from .http import host_allowed, origin_allowed
from .proxies import client_address
from .settings import WebSocketSettings
from .uploads import receive

if TYPE_CHECKING:
    from chatbus.core.hub import Hub

__all__ = ["FileServer"]

log = logging.getLogger("chatbus.transports.websocket")

#: The uploader of a file sent without a token or X-Chatbus-User, checked by ``on_auth`` like any name:
#: accepted where anyone may sign in under any name (open mode), refused (401) where a token is needed.
ANONYMOUS: Final = "anonymous"
#: Longest request line looked at while deciding.
_LINE_LIMIT: Final = 8 * 1024
_HEAD_END: Final = (b"\r\n\r\n", b"\n\n")
_INTERNAL: Final = (
    "Internal server error; nothing was stored. Try again, and tell the chat's operator if it keeps happening."
)


def _is_files(target: bytes) -> bool:
    path = target.split(b"?", 1)[0].split(b"#", 1)[0]
    return path == b"/files" or path.startswith(b"/files/")


def _who(exchange: Exchange) -> str:
    """The uploader and address of a request, for the log."""
    where = exchange.client or str(exchange.peer)
    return f"{exchange.user} at {where}" if exchange.user else where


def _log_refused(exchange: Exchange, error: HttpError) -> None:
    """Every refusal is logged: an upload's as a warning (an operator looks for those), a download's as info."""
    level = logging.WARNING if exchange.method == "POST" else logging.INFO
    request = f"{exchange.method or '?'} {exchange.path[:200] or '?'}"
    log.log(
        level, "files: refused %s from %s: %d %s: %s", request, _who(exchange), error.status, error.code, error.message
    )


def _upgrade(head: bytes) -> bool:
    """Whether a request head asks for a WebSocket upgrade."""
    for line in head.split(b"\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"upgrade" and b"websocket" in value.lower():
            return True
    return False


class FileServer:
    """The :class:`~.connection.Diverter` of the WebSocket transport (see the module's docstring)."""

    def __init__(self, settings: WebSocketSettings, guard: Guard, hub: Callable[[], Hub | None]) -> None:
        self.settings = settings
        self.guard = guard
        self._hub = hub
        #: The same as websockets' ``open_timeout``: the time to send a request's head.
        self.head_timeout = settings.auth_timeout
        self._tasks: dict[asyncio.Task[None], Exchange] = {}
        self._uploads: Counter[str] = Counter()
        self._downloads: Counter[str] = Counter()
        self._stopping = False

    # the diverter ----------------------------------------------------------
    def claims(self, head: bytes) -> bool | None:
        """``/files`` requests that are not WebSocket handshakes, once their head is complete."""
        line_end = head.find(b"\n")
        if line_end < 0:
            return None if len(head) < _LINE_LIMIT else False
        parts = head[:line_end].split(b" ")
        if len(parts) != 3 or not _is_files(parts[1]):
            return False
        ends = [found for marker in _HEAD_END if (found := head.find(marker)) >= 0]
        if not ends:
            return None
        return not _upgrade(head[: min(ends)])

    def take(self, transport: asyncio.Transport, received: bytes) -> None:
        """Serve the request on ``transport``: a stream reader with flow control, a task of its own."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=CHUNK, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        reader.feed_data(received)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        exchange = Exchange(reader, writer, self.settings.file_idle_timeout)
        if self._stopping:
            exchange.abort()
            return
        task = loop.create_task(self._serve(exchange), name="chatbus-files-request")
        self._tasks[task] = exchange
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)

    async def stop(self) -> None:
        """Drop every transfer still going (nothing half-uploaded is kept) and wait for them to end."""
        self._stopping = True
        tasks = list(self._tasks)
        for task, exchange in list(self._tasks.items()):
            exchange.abort()
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # one request -----------------------------------------------------------
    async def _serve(self, exchange: Exchange) -> None:
        try:
            try:
                await exchange.request()
                await self._route(exchange)
            except HttpError as error:
                _log_refused(exchange, error)
                await exchange.fail(error)
            except FileRefused as refused:
                answer = HttpError(refused.status, refused.code, str(refused))
                _log_refused(exchange, answer)
                await exchange.fail(answer)
            except ChatbusError as exc:
                log.warning("files: %s %s: %s: %s", exchange.method, exchange.path[:200], type(exc).__name__, exc)
                await exchange.fail(HttpError(503, "UNAVAILABLE", for_people(exc)))
            except (ConnectionError, TimeoutError):
                if exchange.method == "POST" and not exchange.answered:
                    log.info(
                        "files: an upload from %s ended before its end (cancelled); nothing was kept", _who(exchange)
                    )
                return
            except Exception:
                log.exception("files: unexpected error on %s %s", exchange.method, exchange.path[:200])
                await exchange.fail(HttpError(500, "INTERNAL_ERROR", _INTERNAL))
        except (ConnectionError, TimeoutError):
            pass  # the client went away while being answered
        finally:
            await exchange.close()

    async def _route(self, exchange: Exchange) -> None:
        hub = self._hub()
        if hub is None or not hub.running or self._stopping:
            raise HttpError(503, "UNAVAILABLE", "The chat server is stopping; try again in a moment.")
        self._check_host(exchange)
        if len(self._tasks) > self.settings.max_connections:
            raise HttpError(
                503, "BUSY", "The chat is busy with other transfers; try again in a minute.", {"Retry-After": "60"}
            )
        address = client_address(
            exchange.peer, exchange.headers.get_all("X-Forwarded-For"), self.settings.trusted_proxies
        )
        exchange.client = address
        if exchange.path == "/files":
            if exchange.method != "POST":
                raise HttpError(405, "METHOD_NOT_ALLOWED", "Upload files with POST /files.", {"Allow": "POST"})
            await self._upload(exchange, hub, address)
            return
        if exchange.method not in ("GET", "HEAD"):
            raise HttpError(405, "METHOD_NOT_ALLOWED", "Files are read with GET (or HEAD).", {"Allow": "GET, HEAD"})
        with self._count(self._downloads, address, self.settings.max_downloads_per_address, "downloads"):
            await serve_file(exchange, hub.files)

    def _check_host(self, exchange: Exchange) -> None:
        host = exchange.header("Host")
        if host is None or host_allowed(host, self.settings.host_names()):
            return
        log.warning(
            "refused a files request for host %r; if that is this server's name, add it to allowed_hosts "
            "(CHATBUS_WEBSOCKET__ALLOWED_HOSTS)",
            host[:100],
        )
        raise HttpError(
            421,
            "MISDIRECTED",
            "This chat server does not answer to that name. If it should, its operator adds the name to "
            "allowed_hosts in the [websocket] settings (CHATBUS_WEBSOCKET__ALLOWED_HOSTS).",
        )

    @contextlib.contextmanager
    def _count(self, counter: Counter[str], address: str, limit: int, what: str) -> Iterator[None]:
        if counter[address] >= limit:
            raise HttpError(
                429,
                "RATE_LIMITED",
                f"Too many {what} from your address at once; wait for one to finish, then try again.",
                {"Retry-After": "1"},
            )
        counter[address] += 1
        try:
            yield
        finally:
            counter[address] -= 1
            if counter[address] <= 0:
                del counter[address]

    async def _upload(self, exchange: Exchange, hub: Hub, address: str) -> None:
        if not origin_allowed(exchange.headers, self.settings.allowed_origins):
            log.warning("refused an upload from origin %r", exchange.headers.get_all("Origin")[:1])
            raise HttpError(
                403,
                "FORBIDDEN",
                "Pages of this origin may not upload files here. The chat's operator can allow it with "
                "CHATBUS_WEBSOCKET__ALLOWED_ORIGINS.",
            )
        locked = self.guard.locked_for(address, hub.clock())
        if locked > 0:
            wait = math.ceil(locked)
            raise HttpError(
                429,
                "RATE_LIMITED",
                f"Too many failed sign-ins from your address; try again in {wait} s.",
                {"Retry-After": str(wait)},
            )
        identity = await self._identify(exchange, hub, address)
        exchange.user = identity.user_id
        with self._count(self._uploads, address, self.settings.max_uploads_per_address, "uploads"):
            attachment = await receive(exchange, hub.files, identity.user_id)
        log.info("files: %s uploaded %s (%d bytes) from %s", identity.user_id, attachment.id, attachment.size, address)
        await exchange.respond_json(201, attachment_entry(attachment), [("Location", attachment.url)])

    async def _identify(self, exchange: Exchange, hub: Hub, address: str) -> Identity:
        """Who uploads: the token's owner, or the id named where the chat needs no token."""
        authorization = exchange.header("Authorization")
        user = exchange.header("X-Chatbus-User")
        token: str | None = None
        if authorization is not None:
            scheme, _, value = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise HttpError(
                    401,
                    "AUTH_FAILED",
                    "Send your token as Authorization: Bearer TOKEN.",
                    {"WWW-Authenticate": "Bearer"},
                )
            token = value.strip()
        if authorization is None and user is None:
            user = ANONYMOUS  # PROTOCOL.md asks nothing of an upload where the chat needs no token
        try:
            return await hub.authenticate(Credentials(user_id=user, token=token, transport="websocket"))
        except AuthError as exc:
            self.guard.auth_failed(address, hub.clock)
            words = str(exc)
            if authorization is None and user == ANONYMOUS:
                words = (
                    "Say who is uploading: send Authorization: Bearer TOKEN with your token, or "
                    "X-Chatbus-User: your-id where the chat needs no token."
                )
            raise HttpError(401, "AUTH_FAILED", words, {"WWW-Authenticate": "Bearer"}) from None
