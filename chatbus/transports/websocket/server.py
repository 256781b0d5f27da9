"""The WebSocket transport: PROTOCOL.md version 1 on one port, with HTTP beside it.

One websockets asyncio server answers plain HTTP (the web page, ``/healthz``,
``/ws-info``) and opens a chat connection for a WebSocket handshake on any
path; ``/files`` is served beside it by the :class:`~.fileserver.FileServer`. Each connection
runs one task that reads its frames in order (:mod:`~.session`) and answers them here:
signing in, messages, typing and history go to the hub. The hub's deliveries reach every
signed-in connection through the :class:`~.broadcast.Broadcaster`, which never waits on one client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from chatbus.core.errors import (
    AuthError,
    ChatbusError,
    ConfigError,
    Forbidden,
    InvalidMessage,
    NotFound,
    RateLimited,
    TransportError,
    for_people,
)
from chatbus.core.message import Credentials, Identity
from chatbus.core.transport import BaseTransport, Health, TransportSettings

from . import http as routes
from .broadcast import Broadcaster
from .changes import CHANGES, ChangeHandler
from .closing import Closing, close_all
from .connection import ChatConnection, diverting, offered_extensions
from .fileserver import FileServer
from .frames import (
    Roster,
    auth_response,
    encode,
    encode_with_list,
    error_frame,
    newest_within,
    pong_frame,
)
from .guard import Guard, Outcome, refused_sign_in
from .outgoing import Outgoing
from .proxies import client_of
from .resume import replay, resumed
from .session import converse
from .settings import WebSocketSettings
from .tls import server_context
from .wire import ERROR_CODES, ProtocolViolation, decode_frame, parse_auth, parse_history, parse_message, parse_typing

if TYPE_CHECKING:
    from chatbus.core.hub import Hub

    from .wire import AuthFrame

__all__ = ["WebSocketTransport"]

log = logging.getLogger("chatbus.transports.websocket")

_INTERNAL = "Internal server error; nothing was changed. Try again, and tell the chat's operator if it keeps happening."


Handler = Callable[[ChatConnection, dict[str, Any]], Awaitable[None]]


class WebSocketTransport(Outgoing, BaseTransport):
    """Serves the chat over WebSocket, and the web page over HTTP, on one port.

    ``WebSocketTransport(port=0)`` picks a free port; :attr:`port` and
    :attr:`url` say which once started.
    """

    name = "websocket"
    settings_model: ClassVar[type[TransportSettings]] = WebSocketSettings
    settings: WebSocketSettings

    def __init__(self, settings: WebSocketSettings | Mapping[str, Any] | None = None, /, **options: Any) -> None:
        if options:
            base = settings.model_dump() if isinstance(settings, WebSocketSettings) else dict(settings or {})
            settings = {**base, **options}
        super().__init__(settings)
        self._server: Server | None = None
        self._connections: set[ChatConnection] = set()
        self._fan_out = Broadcaster(self.settings)
        self._guard = Guard(self.settings)
        self._files = FileServer(self.settings, self._guard, lambda: self.hub)
        self._roster = Roster(self.settings.presence_limit)
        self._port: int | None = None
        #: Set by :meth:`stop_accepting`: how :meth:`stop` will close the clients.
        self._closing: Closing | None = None
        self._handlers: dict[str, Handler] = {
            "auth": self._on_auth,
            "message": self._on_message,
            "typing": self._on_typing,
            **{kind: partial(self._on_change, change) for kind, change in CHANGES.items()},
            "history": self._on_history,
        }

    # addresses -----------------------------------------------------------
    def listens_publicly(self) -> bool:
        """True when the bind address is not loopback (anyone on the network can connect)."""
        return self.settings.listens_publicly()

    @property
    def port(self) -> int:
        """The port listened on (the configured one until started)."""
        return self._port if self._port is not None else self.settings.port

    @property
    def url(self) -> str:
        """``ws://host:port/`` of the running server (``wss://`` with TLS)."""
        host = self.settings.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{'wss' if self.settings.tls else 'ws'}://{host}:{self.port}/"

    # lifecycle -----------------------------------------------------------
    async def start(self, hub: Hub) -> None:
        """Listen; an address that cannot be used is a ``TransportError`` saying what to do."""
        await super().start(hub)
        # Everything up to here is stored and will never be delivered; resumes
        # compare against it.
        self._fan_out.last_delivered = hub.store.last_id
        self._fan_out.measure(hub.metrics, self.name)
        s = self.settings
        try:
            self._server = await self._listen()
        except ConfigError:  # the TLS certificate or key
            await super().stop()
            raise
        except OSError as exc:
            await super().stop()
            raise TransportError(s.bind_failure(exc)) from exc
        sockets = self._server.sockets
        self._port = sockets[0].getsockname()[1] if sockets else s.port
        log.info("listening on %s; open the web chat at %s", self.url, "http" + self.url[2:])

    async def _listen(self) -> Server:
        s = self.settings
        self._files = FileServer(s, self._guard, lambda: self.hub)  # a new one for each start
        # With TLS, the handshake must also finish within auth_timeout (websockets' open_timeout).
        return await serve(
            self._handle,
            s.host,
            s.port,
            process_request=self._process_request,
            create_connection=diverting(self._files),
            compression=None,  # the extensions below say what is accepted
            extensions=offered_extensions(s.compression),
            max_size=s.max_frame_bytes,
            ping_interval=s.ping_interval,
            ping_timeout=s.ping_timeout,
            close_timeout=s.close_timeout,
            open_timeout=s.auth_timeout,
            server_header="chatbus",
            ssl=server_context(s) if s.tls else None,
        )

    async def stop_accepting(self, *, restart_in: float | None = None) -> None:
        """Take no new connection or message (the first step of stopping, see
        :mod:`.closing`); ``restart_in`` makes :meth:`stop` close with 1012 and
        ``service restart; reconnect in N s`` instead of 1001."""
        server = self._server
        if server is None or self._closing is not None:
            return
        self._closing = Closing.after(restart_in)
        server.close(close_connections=False)
        await asyncio.sleep(0)  # the library closes the listening socket in a task: let it run now
        log.info("no longer accepting connections or messages on %s", self.url)

    async def stop(self) -> None:
        """Close every connection, each after the messages stored so far, and stop listening."""
        server = self._server
        if server is None:
            return
        await self.stop_accepting()
        closing = self._closing or Closing.after(None)
        last_id = self.hub.store.last_id if self.hub is not None else 0
        await self._files.stop()  # before close_all: asyncio's server waits for these sockets too (3.12+)
        closed = await close_all(server, self._fan_out, last_id, closing, self.settings.close_timeout)
        self._server, self._closing = None, None
        await super().stop()
        log.info("closed %d connection(s) with %d (%s); stopped", closed, closing.code, closing.reason)

    def is_connected(self) -> bool:
        return self._server is not None and self._server.is_serving()

    def health(self) -> Health:
        if self.is_connected():
            return Health(True, f"listening on {self.url}")
        return Health(False, "not running")

    def status(self) -> dict[str, Any]:
        figures = super().status()
        figures.update(
            connections=len(self._connections),
            users=len(self.connected_users()),
            url=self.url if self.is_connected() else None,
            largest_backlog=max((c.unsent for c in self._connections), default=0),
        )
        return figures

    def connected_users(self) -> set[str]:
        """Ids of the people signed in on this transport now."""
        return {c.identity.user_id for c in self._fan_out.live if c.identity is not None}

    # HTTP ----------------------------------------------------------------
    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Let allowed WebSocket handshakes through; answer everything else (see :func:`.http.route`)."""
        hub = self.hub
        return await routes.route(
            request,
            allowed_hosts=self.settings.host_names(),
            allowed_origins=self.settings.allowed_origins,
            running=bool(hub is not None and hub.running),
            info=self.info,
            readiness=hub.ready if hub is not None else None,
            metrics=hub.metrics.exposition if hub is not None and hub.metrics.on_chat_port else None,
        )

    def info(self) -> dict[str, Any]:
        """``/ws-info``: transports running, address, people on every transport, connections here, the epoch."""
        hub = self.hub
        health = hub.transport_status() if hub is not None else {}
        running = [name for name, status in health.items() if status.get("healthy")]
        return {
            "transports": running,
            "host": self.settings.host,
            "port": self.port,
            "connected_users": hub.people_online if hub is not None else 0,
            "connections": len(self._connections),
            "running": bool(hub is not None and hub.running),
            "epoch": hub.store.epoch if hub is not None else None,
            "engine": hub.cluster.describe() if hub is not None else None,
            "health": health,
        }

    # one connection ------------------------------------------------------
    async def _handle(self, connection: ServerConnection) -> None:
        """Run one chat connection from handshake to close."""
        assert isinstance(connection, ChatConnection)
        hub = self.hub
        if hub is None:
            return
        connection.client_address = client_of(connection, self.settings.trusted_proxies)
        refusal = self._guard.admit(connection, len(self._connections), hub.clock())
        if refusal is not None:
            await connection.close_within(refusal.code, refusal.reason, self.settings.close_timeout)
            hub.metrics.closes.labels(self.name, str(int(refusal.code))).inc()
            return
        self._connections.add(connection)
        try:
            await converse(connection, self.settings, self._dispatch, self._guard, hub.clock)
        finally:
            self._guard.left(connection)
            self._connections.discard(connection)
            self._fan_out.live.discard(connection)
            # The code chatbus chose when it closed first (a client cut off or turned away
            # may never answer it: 1006 would hide why); still open here means the library
            # closes it normally as this handler returns.
            chosen = connection.close_chosen()
            code = chosen.code if chosen is not None else connection.close_code or CloseCode.NORMAL_CLOSURE
            hub.metrics.closes.labels(self.name, str(int(code))).inc()
            if connection.joined and connection.identity is not None:
                connection.joined = False
                await hub.disconnect(connection.identity, self.name)

    async def _dispatch(self, connection: ChatConnection, raw: bytes) -> Outcome:
        """Handle one frame; every refusal is one ``error`` frame and one log line
        (a few per kind and 10 s, see :class:`.guard.Guard`). Returns the frame's type, or the error code it got."""
        try:
            kind, data = decode_frame(raw)
            if kind == "ping":
                await self._reply(connection, pong_frame())
                return kind
            if connection.identity is None and kind != "auth":
                raise ProtocolViolation(
                    "NOT_AUTHENTICATED",
                    'Sign in first: send {"type": "auth", "data": {"userId": "your-name"}}.',
                )
            handler = self._handlers.get(kind)
            if handler is None:
                raise ProtocolViolation(
                    "UNKNOWN_TYPE",
                    "Unknown frame type; this server understands auth, message, ping, typing, history, "
                    "edit, delete and react.",
                )
            await handler(connection, data)
            return kind
        except ProtocolViolation as exc:
            return await self._refuse(connection, exc.code, str(exc))
        except RateLimited as exc:
            return await self._refuse(connection, exc.code, str(exc), retry_after=exc.retry_after)
        except (InvalidMessage, AuthError, Forbidden, NotFound) as exc:
            code = await self._refuse(connection, exc.code, str(exc))
            return refused_sign_in(data) if isinstance(exc, AuthError) else code
        except ConnectionClosed:
            raise
        except ChatbusError as exc:
            # Not the sender's fault (storage failed, the hub is stopping); the
            # message is written for people, and whoever raised it logged the cause.
            log.warning("session %s: %s: %s", connection.who, type(exc).__name__, exc)
            await self._send_error(connection, "INTERNAL_ERROR", for_people(exc), getattr(exc, "retry_after", None))
        except Exception:
            log.exception("session %s: unexpected error while handling a frame", connection.who)
            await self._send_error(connection, "INTERNAL_ERROR", _INTERNAL)
        return "INTERNAL_ERROR"

    async def _refuse(
        self, connection: ChatConnection, code: str, message: str, retry_after: float | None = None
    ) -> str:
        if code not in ERROR_CODES:  # a plugin's own error class: keep the wire vocabulary closed
            code = "INVALID_MESSAGE"
        self._guard.repeats.warning(log, f"refused {code}", "session %s: %s: %s", connection.who, code, message)
        await self._send_error(connection, code, message, retry_after)
        return code

    async def _send_error(
        self, connection: ChatConnection, code: str, message: str, retry_after: float | None = None
    ) -> None:
        if self.hub is not None:
            self.hub.metrics.errors.labels(code).inc()
        await self._reply(connection, error_frame(code, message, retry_after=retry_after))

    async def _reply(self, connection: ChatConnection, frame: Mapping[str, Any]) -> None:
        """Send a frame to this connection only, waiting for room in its buffer."""
        await connection.send(encode(frame), text=True)

    # frames --------------------------------------------------------------
    async def _on_auth(self, connection: ChatConnection, data: dict[str, Any]) -> None:
        hub = self._running_hub()
        if connection.identity is not None:
            raise ProtocolViolation(
                "INVALID_MESSAGE",
                f"This connection is already signed in as {connection.identity.user_id}; "
                "open a new connection to sign in as someone else.",
            )
        frame = parse_auth(data)
        credentials = Credentials(user_id=frame.user_id, role=frame.role, token=frame.token, transport=self.name)
        identity = await hub.authenticate(credentials)
        await self._join(hub, connection, identity, frame)

    async def _join(self, hub: Hub, connection: ChatConnection, identity: Identity, frame: AuthFrame) -> None:
        """Sign the connection in without a gap or a duplicate.

        The connection starts receiving live frames (held back) before the
        store is read, so nothing delivered meanwhile is missed; after
        ``auth_response`` the held frames go out, minus those already in
        ``missed`` (see :mod:`.resume` for what that holds).
        """
        connection.identity = identity
        self._fan_out.hold(connection)
        await hub.connect(identity, self.name)
        connection.joined = True
        try:
            missed = await replay(hub, frame, self.settings)
            rooms = await hub.rooms()
        except Exception:
            # The store did not answer: not signed in after all (never half), and told so.
            connection.identity, connection.joined, connection.pending = None, False, None
            self._fan_out.live.discard(connection)
            await hub.disconnect(identity, self.name)
            raise
        log.info("session %s: signed in from %s%s", connection.who, connection.client_address, resumed(missed, frame))
        agents, users = self._roster.lists(hub)
        answer = auth_response(
            identity,
            connection.session_id,
            agents,
            users,
            epoch=hub.store.epoch,
            missed=missed.frames if missed is not None else None,
            missed_has_more=missed is not None and missed.more,
            missed_reset=missed is not None and missed.reset,
            rooms=rooms,
            files={
                "maxPerMessage": hub.files.settings.max_per_message,
                "maxFileBytes": hub.files.settings.max_file_bytes,
            },
        )
        await connection.send(answer, text=True)
        # ``missed`` may hold messages that are stored but not yet handed to
        # this transport; keep holding live frames until they have been, so
        # none of them is sent twice.
        floor = missed.floor if missed is not None else 0
        if floor > self._fan_out.last_delivered:
            await self._fan_out.delivered_through(floor)
        self._fan_out.release(connection, floor)

    async def _on_message(self, connection: ChatConnection, data: dict[str, Any]) -> None:
        hub = self._running_hub()
        if self._closing is not None:
            raise TransportError(self._closing.refusal)
        assert connection.identity is not None
        frame = parse_message(data)
        before = hub.store.last_id
        # Client ``mentions`` are advisory: the server parses the text, so only people named in it are mentioned.
        message = await hub.receive(
            connection.identity,
            frame.text,
            room=frame.room,
            reply_to=frame.reply_to,
            transport=self.name,
            client_id=frame.client_id,
            attachments=frame.attachments,
        )
        if message.id <= before:  # resent with the same clientId: stored once, and its sender learns its id again
            await self.echo(connection, message)

    async def _on_change(self, change: ChangeHandler, connection: ChatConnection, data: dict[str, Any]) -> None:
        """``edit``, ``delete`` or ``react`` (see :mod:`.changes`)."""
        hub = self._running_hub()
        assert connection.identity is not None
        await change(hub, connection.identity, data)

    async def _on_typing(self, connection: ChatConnection, data: dict[str, Any]) -> None:
        hub = self._running_hub()
        assert connection.identity is not None
        room = parse_typing(data).room
        now = hub.clock()
        if now - connection.last_typing < self.settings.typing_interval:
            return  # relayed recently; a typist does not need to be heard twice a second
        connection.last_typing = now
        hub.typing(connection.identity, room, self.name)

    async def _on_history(self, connection: ChatConnection, data: dict[str, Any]) -> None:
        hub = self._running_hub()
        frame = parse_history(data)
        messages, has_more = await hub.history(frame.room, frame.before, frame.limit)
        frames, left_out = newest_within(messages, self.settings.replay_max_bytes)
        answer = encode_with_list("history", {"hasMore": has_more or left_out > 0}, "messages", frames)
        await connection.send(answer, text=True)

    def _running_hub(self) -> Hub:
        hub = self.hub
        if hub is None:
            raise ChatbusError("The chat server is shutting down; reconnect in a moment.")
        return hub
