"""A small Telegram Bot API server for the tests, on 127.0.0.1.

It speaks plain HTTP/1.1 (keep-alive, ``Content-Length`` bodies, form or JSON
parameters) and the methods the transport uses: ``getMe``, ``getUpdates``
(offsets confirm updates; long polls wait for the next update; a second poll
ends the first with 409 as Telegram does), ``sendMessage`` (with Telegram's
HTML rules, its 4096-character limit, replies and whitespace trimming),
``getChat``, ``deleteWebhook``, ``setWebhook`` and ``getWebhookInfo``; with a
webhook set, it posts updates to it like Telegram does.

Hooks let a test inject updates, make the next calls of a method answer 429
with ``retry_after``, a 5xx, 401 or a dropped connection, revoke the token,
remove the bot from a chat, turn a group into a supergroup, and take the
whole server away and bring it back on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import httpx

__all__ = ["FakeBotAPI", "Fault", "Sent", "parse_telegram_html"]

_ALLOWED_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
    "span": "spoiler", "a": "text_link", "code": "code", "pre": "pre", "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}  # fmt: skip
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*)?)>")
_ENTITY = re.compile(r"&(#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z]+);")


class ParseError(ValueError):
    """The text is not valid Telegram HTML."""


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_telegram_html(markup: str) -> tuple[str, list[dict[str, Any]]]:
    """Visible text and entities of ``markup``, by Telegram's HTML rules (strict:
    unknown tags, unclosed tags, a bare ``<`` or a broken ``&`` entity are errors)."""
    out: list[str] = []
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, int]] = []
    position = 0
    i = 0
    while i < len(markup):
        char = markup[i]
        if char == "<":
            match = _TAG.match(markup, i)
            if match is None:
                raise ParseError(f"Unsupported start tag at byte offset {i}")
            closing, tag = match.group(1), match.group(2).lower()
            if tag not in _ALLOWED_TAGS:
                raise ParseError(f'Unsupported start tag "{tag}" at byte offset {i}')
            if closing:
                if not stack or stack[-1][0] != tag:
                    raise ParseError(
                        f'Unmatched end tag at byte offset {i}, expected "</{stack[-1][0] if stack else ""}>"'
                    )
                opened, start = stack.pop()
                if position > start:
                    entities.append({"type": _ALLOWED_TAGS[opened], "offset": start, "length": position - start})
            else:
                stack.append((tag, position))
            i = match.end()
            continue
        if char == "&":
            match = _ENTITY.match(markup, i)
            if match is None:
                raise ParseError(f"Character '&' is reserved and must be escaped (byte offset {i})")
            name = match.group(1)
            if name.startswith("#x"):
                decoded = chr(int(name.removeprefix("#x"), 16))
            elif name.startswith("#"):
                decoded = chr(int(name[1:]))
            elif name in _NAMED_ENTITIES:
                decoded = _NAMED_ENTITIES[name]
            else:
                raise ParseError(f'Unsupported HTML entity "&{name};"')
            out.append(decoded)
            position += _utf16(decoded)
            i = match.end()
            continue
        if char == ">":
            raise ParseError(f"Character '>' is reserved and must be escaped (byte offset {i})")
        out.append(char)
        position += _utf16(char)
        i += 1
    if stack:
        raise ParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return "".join(out), entities


@dataclass
class Fault:
    """How the next call of a method goes wrong."""

    status: int = 500
    description: str = "Internal Server Error"
    retry_after: int | None = None
    drop: bool = False  # close the connection without an answer
    delay: float = 0.0


@dataclass
class Sent:
    """A message the bot sent, as the chat shows it."""

    chat_id: int
    message_id: int
    text: str  # visible text, trimmed like Telegram trims it
    markup: str  # what the bot posted
    parse_mode: str | None
    entities: list[dict[str, Any]]
    reply_to: int | None
    at: float

    def bold(self) -> list[str]:
        """The bold stretches of the visible text."""
        return [_slice16(self.text, e["offset"], e["length"]) for e in self.entities if e["type"] == "bold"]


def _slice16(text: str, offset: int, length: int) -> str:
    raw = text.encode("utf-16-le")
    return raw[offset * 2 : (offset + length) * 2].decode("utf-16-le")


@dataclass
class Call:
    """One request the server answered (or dropped)."""

    method: str
    params: dict[str, Any]
    status: int
    at: float


@dataclass
class _Chat:
    id: int
    title: str
    type: str = "supergroup"
    username: str | None = None
    member: bool = True
    migrated_to: int | None = None
    next_message_id: int = 1
    message_ids: set[int] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type, "title": self.title}
        if self.username:
            data["username"] = self.username
        return data


class FakeBotAPI:
    """The fake server. ``async with FakeBotAPI() as api:`` then use ``api.base_url``."""

    def __init__(
        self,
        *,
        token: str = "123456:TEST-token_abc",
        bot_id: int = 123456,
        bot_username: str = "chatbus_relay_bot",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        self.bot = {"id": bot_id, "is_bot": True, "first_name": "chatbus relay", "username": bot_username}
        self.clock = clock
        self.chats: dict[int, _Chat] = {}
        self.sent: list[Sent] = []
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []  # not yet confirmed
        self.confirmed_up_to = 0  # highest update id confirmed by an offset
        self.webhook: dict[str, Any] | None = None
        self.revoked = False
        self.port = 0
        self.polls_waiting = 0  # long polls waiting for an update right now
        self._next_update_id = 1000
        self._faults: dict[str, list[Fault]] = {}
        self._changed = asyncio.Condition()
        self._poll_generation = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._pusher: asyncio.Task[None] | None = None

    # lifecycle -----------------------------------------------------------------
    async def start(self) -> FakeBotAPI:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """The Bot API goes away: the port refuses connections, open requests are cut."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._pusher is not None:
            self._pusher.cancel()
            await asyncio.gather(self._pusher, return_exceptions=True)
            self._pusher = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """What python-telegram-bot calls ``base_url``: the token is appended to it."""
        return f"http://127.0.0.1:{self.port}/bot"

    # hooks for tests -------------------------------------------------------------
    def add_chat(
        self, chat_id: int, title: str = "Team", *, type: str = "supergroup", username: str | None = None
    ) -> None:
        self.chats[chat_id] = _Chat(chat_id, title, type, username)

    def fail(self, method: str, fault: Fault | None = None, *, times: int = 1, **kwargs: Any) -> None:
        """The next ``times`` calls of ``method`` go wrong as ``fault`` says."""
        chosen = fault or Fault(**kwargs)
        self._faults.setdefault(method, []).extend([chosen] * times)

    def faults_left(self, method: str) -> int:
        return len(self._faults.get(method, []))

    def kick(self, chat_id: int) -> None:
        """The bot is removed from the chat."""
        self.chats[chat_id].member = False

    def migrate(self, chat_id: int, new_id: int) -> None:
        """A group becomes a supergroup with a new id."""
        old = self.chats[chat_id]
        old.migrated_to = new_id
        self.chats[new_id] = _Chat(new_id, old.title, "supergroup", old.username)

    @staticmethod
    def user(
        user_id: int,
        *,
        username: str | None = None,
        first_name: str = "User",
        last_name: str | None = None,
        is_bot: bool = False,
    ) -> dict[str, Any]:
        data: dict[str, Any] = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
        if username:
            data["username"] = username
        if last_name:
            data["last_name"] = last_name
        return data

    def _new_message_id(self, chat: _Chat) -> int:
        message_id = chat.next_message_id
        chat.next_message_id += 1
        chat.message_ids.add(message_id)
        return message_id

    def post(
        self,
        chat_id: int,
        text: str,
        *,
        user: dict[str, Any],
        entities: list[dict[str, Any]] | None = None,
        reply_to: int | None = None,
        kind: str = "message",
        **extra: Any,
    ) -> dict[str, Any]:
        """Someone writes ``text`` in the chat: the message becomes an update."""
        chat = self.chats[chat_id]
        message: dict[str, Any] = {
            "message_id": self._new_message_id(chat),
            "date": int(time.time()),
            "chat": chat.as_dict(),
            "from": user,
            "text": text,
            **extra,
        }
        if entities:
            message["entities"] = entities
        if reply_to is not None:
            original = next((s for s in self.sent if s.chat_id == chat_id and s.message_id == reply_to), None)
            message["reply_to_message"] = {
                "message_id": reply_to,
                "date": int(time.time()),
                "chat": chat.as_dict(),
                "from": self.bot if original is not None else user,
                "text": original.text if original is not None else "...",
            }
        self.push_update({kind: message})
        return message

    def push_update(self, body: dict[str, Any]) -> int:
        """Add a raw update (``{"message": {...}}``); returns its update id."""
        self._next_update_id += 1
        update = {"update_id": self._next_update_id, **body}
        self.updates.append(update)
        self._wake()
        return self._next_update_id

    def _wake(self) -> None:
        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        asyncio.get_running_loop().create_task(notify())
        if self.webhook is not None and self._pusher is None:
            self._pusher = asyncio.get_running_loop().create_task(self._push_webhook())

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds (checked whenever the server's state changes)."""

        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(wait(), timeout)

    async def wait_sent(self, count: int, timeout: float = 10.0) -> list[Sent]:
        """Wait until at least ``count`` messages were sent; returns them all."""
        await self.wait_for(lambda: len(self.sent) >= count, timeout)
        return list(self.sent)

    def calls_of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    # HTTP ----------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                method_path, body, headers = request
                keep_open = await self._respond(method_path, body, headers, writer)
                if not keep_open:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            return  # the server is going away; the connection was aborted
        finally:
            self._connections.discard(task)
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _respond(self, path: str, body: bytes, headers: dict[str, str], writer: asyncio.StreamWriter) -> bool:
        url = urlsplit(path)
        match = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", url.path)
        params = _params(url.query, body, headers.get("content-type", ""))
        if match is None:
            await _write(writer, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return True
        token, method = match.groups()
        status, payload = await self._dispatch(token, method, params)
        self.calls.append(Call(method, params, status, self.clock()))
        async with self._changed:
            self._changed.notify_all()
        if status == -1:
            writer.transport.abort()
            return False
        await _write(writer, status, payload)
        return True

    async def _dispatch(self, token: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if token != self.token or self.revoked:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        queue = self._faults.get(method)
        if queue:
            fault = queue.pop(0)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.drop:
                return -1, {}
            answer: dict[str, Any] = {"ok": False, "error_code": fault.status, "description": fault.description}
            if fault.retry_after is not None:
                answer["parameters"] = {"retry_after": fault.retry_after}
                answer["description"] = f"Too Many Requests: retry after {fault.retry_after}"
            return fault.status, answer
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
        try:
            result = await handler(params)
        except _ApiError as exc:
            answer = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.parameters:
                answer["parameters"] = exc.parameters
            return exc.status, answer
        return 200, {"ok": True, "result": result}

    # methods ---------------------------------------------------------------------------
    async def _api_getMe(self, params: dict[str, Any]) -> Any:
        return self.bot

    async def _api_getChat(self, params: dict[str, Any]) -> Any:
        chat = self._chat(params.get("chat_id"))
        return {**chat.as_dict(), "accent_color_id": 0, "max_reaction_count": 11}

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = None
        if _truthy(params.get("drop_pending_updates")):
            self._confirm(self._next_update_id + 1)
        return True

    async def _api_setWebhook(self, params: dict[str, Any]) -> Any:
        if _truthy(params.get("drop_pending_updates")):
            self._confirm(self._next_update_id + 1)
        self.webhook = {"url": params["url"], "secret_token": params.get("secret_token")}
        self._poll_generation += 1  # a running long poll ends with a conflict
        async with self._changed:
            self._changed.notify_all()
        if self.updates and self._pusher is None:
            self._pusher = asyncio.get_running_loop().create_task(self._push_webhook())
        return True

    async def _api_getWebhookInfo(self, params: dict[str, Any]) -> Any:
        return {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.updates),
        }

    def _confirm(self, offset: int) -> None:
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        self.confirmed_up_to = max(self.confirmed_up_to, offset - 1)

    async def _api_getUpdates(self, params: dict[str, Any]) -> Any:
        if self.webhook is not None:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            )
        offset = params.get("offset")
        if offset is not None:
            self._confirm(int(offset))
            async with self._changed:
                self._changed.notify_all()
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        allowed = params.get("allowed_updates")
        self._poll_generation += 1
        generation = self._poll_generation

        def ready() -> list[dict[str, Any]]:
            return [u for u in self.updates if allowed is None or any(k in u for k in allowed)][:limit]

        if not ready() and timeout > 0:
            async with self._changed:
                self.polls_waiting += 1
                self._changed.notify_all()
                try:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._changed.wait_for(lambda: bool(ready()) or self._poll_generation != generation),
                            timeout,
                        )
                finally:
                    self.polls_waiting -= 1
        if self._poll_generation != generation:
            raise _ApiError(
                409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
            )
        return ready()

    async def _api_sendMessage(self, params: dict[str, Any]) -> Any:
        chat = self._chat(params.get("chat_id"))
        if chat.migrated_to is not None:
            raise _ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": chat.migrated_to},
            )
        if not chat.member:
            raise _ApiError(403, "Forbidden: bot was kicked from the supergroup chat")
        markup = str(params.get("text", ""))
        parse_mode = params.get("parse_mode")
        entities: list[dict[str, Any]] = []
        if parse_mode is None:
            visible = markup
        elif str(parse_mode).upper() == "HTML":
            try:
                visible, entities = parse_telegram_html(markup)
            except ParseError as exc:
                raise _ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        else:
            raise _ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode}")
        if _utf16(visible) > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        stripped = visible.strip()
        if not stripped:
            raise _ApiError(400, "Bad Request: message text is empty")
        lead = _utf16(visible[: len(visible) - len(visible.lstrip())])
        entities = [{**e, "offset": e["offset"] - lead} for e in entities]
        reply_to = None
        reply = params.get("reply_parameters")
        if reply is None and params.get("reply_to_message_id") is not None:
            reply = {"message_id": params["reply_to_message_id"]}
        if reply:
            reply_to = int(reply["message_id"])
            if reply_to not in chat.message_ids:
                if not reply.get("allow_sending_without_reply"):
                    raise _ApiError(400, "Bad Request: message to be replied not found")
                reply_to = None
        message_id = self._new_message_id(chat)
        self.sent.append(Sent(chat.id, message_id, stripped, markup, parse_mode, entities, reply_to, self.clock()))
        result: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat.as_dict(),
            "from": self.bot,
            "text": stripped,
        }
        if entities:
            result["entities"] = entities
        return result

    def _chat(self, chat_id: Any) -> _Chat:
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            for chat in self.chats.values():
                if chat.username and chat.username.lower() == chat_id[1:].lower():
                    return chat
            raise _ApiError(400, "Bad Request: chat not found")
        try:
            return self.chats[int(chat_id)]
        except (KeyError, TypeError, ValueError):
            raise _ApiError(400, "Bad Request: chat not found") from None

    # webhook delivery -------------------------------------------------------------------
    async def _push_webhook(self) -> None:
        """Post pending updates to the webhook in order, retrying until it answers 200."""
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                while self.webhook is not None and self.updates:
                    update = self.updates[0]
                    headers = {}
                    if self.webhook.get("secret_token"):
                        headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
                    try:
                        answer = await client.post(self.webhook["url"], json=update, headers=headers)
                    except httpx.HTTPError:
                        await asyncio.sleep(0.05)
                        continue
                    if answer.status_code == 200:
                        self._confirm(update["update_id"] + 1)
                        async with self._changed:
                            self._changed.notify_all()
                    else:
                        await asyncio.sleep(0.05)
        finally:
            self._pusher = None


class _ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))


def _params(query: str, body: bytes, content_type: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    pairs = parse_qsl(query)
    if body:
        if "application/json" in content_type:
            params.update(json.loads(body))
        else:
            pairs += parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    for key, value in pairs:
        # python-telegram-bot sends objects, lists, numbers and booleans JSON-encoded.
        try:
            params[key] = json.loads(value) if value[:1] in "[{" or value in ("true", "false") else value
        except json.JSONDecodeError:
            params[key] = value
    return params


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, bytes, dict[str, str]] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 2:
        return None
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    body = await reader.readexactly(length) if length else b""
    return parts[1], body, headers


async def _write(writer: asyncio.StreamWriter, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
              409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
              503: "Service Unavailable"}.get(status, "Error")  # fmt: skip
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        f"Connection: keep-alive\r\n\r\n".encode()
        + data
    )
    await writer.drain()
