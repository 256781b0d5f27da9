"""A small Telegram Bot API server for the tests, on 127.0.0.1.

It speaks plain HTTP/1.1 (keep-alive, ``Content-Length`` bodies, form or JSON
parameters) and the methods the transport uses: ``getMe`` (with privacy
mode), ``getUpdates`` (offsets confirm updates; long polls wait for the next
update; a second poll ends the first with 409 as Telegram does),
``getChat``, ``getChatMember``, ``deleteWebhook``, ``setWebhook`` and
``getWebhookInfo``, and the chat methods of ``fakemethods.py``
(``sendMessage``, ``editMessageText``, ``deleteMessage``,
``setMessageReaction``, with Telegram's rules and, when set, its per-chat
flood limit), and the files of ``fakemedia.py`` (people's photos, documents,
voice notes and videos in updates, ``getFile`` and downloads from
``/file/bot<token>/<path>``, the bot's ``sendPhoto``, ``sendDocument`` and
``sendMediaGroup`` uploads). With a webhook set, it posts updates to it like Telegram does:
several at once, each again until it is answered 200.

Hooks let a test inject updates (messages, media, topics, edits, reactions,
migrations), make the next calls of a method answer 429 with
``retry_after``, a 5xx, 401, a dropped connection or an answer that is not
what the Bot API promises, revoke the token, remove the bot from a chat,
turn a group into a supergroup, and take the whole server away and bring it
back on the same port.

Several bots' processes may share one fake (a cluster's nodes): each one's
``base_url`` may start with a name of its own (``via("a")``:
``http://127.0.0.1:<port>/a/bot``), recorded with each of its calls, with
when the call came in, so a test tells who called what, and when.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import httpx

from .fakehttp import params, parse_telegram_html, read_request, truthy, write
from .fakemedia import FakeFile, MediaMethods
from .fakemethods import ApiError, ChatMethods, FakeChat, Sent

__all__ = ["FakeBotAPI", "Fault", "Sent", "parse_telegram_html"]


@dataclass
class Fault:
    """How the next call of a method goes wrong."""

    status: int = 500
    description: str = "Internal Server Error"
    retry_after: int | None = None
    drop: bool = False  # close the connection without an answer
    delay: float = 0.0
    raw: bytes | None = None  # answer 200 with exactly these bytes (not what the Bot API promises)


@dataclass
class Call:
    """One request the server answered (or dropped)."""

    method: str
    params: dict[str, Any]
    status: int
    at: float  # when it was answered
    via: str = ""  # the name the caller's base_url starts with (``FakeBotAPI.via``)
    began: float = 0.0  # when it came in


class FakeBotAPI(ChatMethods, MediaMethods):
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
        self.privacy = False  # BotFather's privacy mode: the bot cannot read all group messages
        self.admin_of: set[int] = set()  # chats where the bot is an administrator
        self.clock = clock
        self.chats: dict[int, FakeChat] = {}
        self.sent: list[Sent] = []
        self.flood_limit: tuple[int, float] | None = None  # (messages, seconds) per chat, like Telegram's
        self.webhook_connections = 8  # updates posted to the webhook at once
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
        self._pushing: set[int] = set()
        self.webhook_answered: list[int] = []  # update ids the webhook answered 200, in order
        self._buckets: dict[int, tuple[float, float]] = {}  # chat -> (messages allowed now, when)
        self.files: dict[str, FakeFile] = {}  # file id -> a file people posted or the bot uploaded
        self.downloads: list[str] = []  # file paths the bot downloaded, in order
        self.download_gate: asyncio.Event | None = None  # when set here, downloads wait until it is set

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

    def via(self, name: str) -> str:
        """A ``base_url`` whose calls are recorded as ``name``'s (one of several processes)."""
        return f"http://127.0.0.1:{self.port}/{name}/bot"

    # hooks for tests -------------------------------------------------------------
    def add_chat(
        self, chat_id: int, title: str = "Team", *, type: str = "supergroup", username: str | None = None
    ) -> None:
        self.chats[chat_id] = FakeChat(chat_id, title, type, username)

    def fail(self, method: str, fault: Fault | None = None, *, times: int = 1, **kwargs: Any) -> None:
        """The next ``times`` calls of ``method`` go wrong as ``fault`` says."""
        chosen = fault or Fault(**kwargs)
        self._faults.setdefault(method, []).extend([chosen] * times)

    def faults_left(self, method: str) -> int:
        return len(self._faults.get(method, []))

    def kick(self, chat_id: int) -> None:
        """The bot is removed from the chat."""
        self.chats[chat_id].member = False

    def migrate(self, chat_id: int, new_id: int, *, announce: bool = False) -> None:
        """A group becomes a supergroup with a new id; ``announce``: with Telegram's two service
        messages, ``migrate_to_chat_id`` in the old group and ``migrate_from_chat_id`` in the new."""
        old = self.chats[chat_id]
        old.migrated_to = new_id
        self.chats[new_id] = FakeChat(new_id, old.title, "supergroup", old.username)
        if announce:
            admin = self.user(1, username="admin")
            self.service(chat_id, admin, migrate_to_chat_id=new_id)
            self.service(new_id, admin, migrate_from_chat_id=chat_id)

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

    def post(
        self,
        chat_id: int,
        text: str | None,
        *,
        user: dict[str, Any],
        entities: list[dict[str, Any]] | None = None,
        reply_to: int | None = None,
        kind: str = "message",
        topic: int | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Someone writes ``text`` in the chat (in forum topic ``topic``): the message becomes an update.
        Media come as ``extra`` (``photo=[...]``, ``caption=...``) with ``text=None``."""
        chat = self.chats[chat_id]
        message: dict[str, Any] = {
            "message_id": chat.new_message_id(),
            "date": int(time.time()),
            "chat": chat.as_dict(),
            "from": user,
            **extra,
        }
        if text is not None:
            message["text"] = text
        if entities:
            message["entities" if text is not None else "caption_entities"] = entities
        if topic is not None:
            message["message_thread_id"] = topic
            message["is_topic_message"] = True
            if reply_to is None:
                message["reply_to_message"] = chat.topics[topic]
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
        chat.posted[message["message_id"]] = message
        return message

    def service(self, chat_id: int, user: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """A service message (a migration, a topic created) in the chat, as an update."""
        chat = self.chats[chat_id]
        message = {"message_id": chat.new_message_id(), "date": int(time.time()), "chat": chat.as_dict(),
                   "from": user, **fields}  # fmt: skip
        self.push_update({"message": message})
        return message

    def add_topic(self, chat_id: int, name: str) -> int:
        """A forum topic is created in the chat; returns its id (that of its first message)."""
        chat = self.chats[chat_id]
        chat.is_forum = True
        created = self.service(chat_id, self.user(1, username="admin"),
                               forum_topic_created={"name": name, "icon_color": 7322096})  # fmt: skip
        created["message_thread_id"] = created["message_id"]
        created["is_topic_message"] = True
        chat.topics[created["message_id"]] = created
        return int(created["message_id"])

    def edit(self, chat_id: int, message_id: int, text: str, *, user: dict[str, Any], **extra: Any) -> None:
        """Someone edits their message: an ``edited_message`` update."""
        chat = self.chats[chat_id]
        original = dict(chat.posted.get(message_id) or {"message_id": message_id, "date": 0, "chat": chat.as_dict()})
        original.pop("text", None)
        original.update({"from": user, "edit_date": int(time.time()), **extra})
        if "caption" not in extra:
            original["text"] = text
        self.push_update({"edited_message": original})

    def react(self, chat_id: int, message_id: int, *, user: dict[str, Any], old: list[str], new: list[str]) -> None:
        """Someone changes their reactions to a message: a ``message_reaction`` update."""
        self.push_update({"message_reaction": {
            "chat": self.chats[chat_id].as_dict(), "message_id": message_id, "user": user, "date": int(time.time()),
            "old_reaction": [{"type": "emoji", "emoji": e} for e in old],
            "new_reaction": [{"type": "emoji", "emoji": e} for e in new]}})  # fmt: skip

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
                request = await read_request(reader)
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
        download = re.fullmatch(r"(?:/[\w-]+)?/file/bot([^/]+)/(.+)", url.path)
        if download is not None:
            return await self._download(unquote(download.group(1)), unquote(download.group(2)), writer)
        match = re.fullmatch(r"(?:/([\w-]+))?/bot([^/]+)/([A-Za-z]+)", url.path)
        arguments = params(url.query, body, headers.get("content-type", ""))
        if match is None:
            await write(writer, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return True
        via, token, method = match.groups()
        began = self.clock()
        status, payload = await self._dispatch(token, method, arguments)
        self.calls.append(Call(method, arguments, status, self.clock(), via or "", began))
        async with self._changed:
            self._changed.notify_all()
        if status == -1:
            writer.transport.abort()
            return False
        await write(writer, status, payload)
        return True

    async def _download(self, token: str, path: str, writer: asyncio.StreamWriter) -> bool:
        """A file download; its faults are those of the pseudo-method ``download`` (status 200: only late)."""
        if self.download_gate is not None:
            await self.download_gate.wait()
        queue = self._faults.get("download")
        fault = queue.pop(0) if queue else None
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.status == 200 and not fault.drop:
            fault = None
        status, data = (fault.status, fault.description.encode()) if fault is not None else self.download(token, path)
        self.calls.append(Call("download", {"path": path}, -1 if fault and fault.drop else status, self.clock()))
        async with self._changed:
            self._changed.notify_all()
        if fault is not None and fault.drop:
            writer.transport.abort()
            return False
        await write(writer, status, data, "application/octet-stream" if status == 200 else "application/json")
        return True

    async def _dispatch(self, token: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any] | bytes]:
        if token != self.token or self.revoked:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        queue = self._faults.get(method)
        if queue:
            fault = queue.pop(0)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.drop:
                return -1, {}
            if fault.raw is not None:
                return 200, fault.raw
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
        except ApiError as exc:
            answer = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.parameters:
                answer["parameters"] = exc.parameters
            return exc.status, answer
        return 200, {"ok": True, "result": result}

    # methods ---------------------------------------------------------------------------
    async def _api_getMe(self, params: dict[str, Any]) -> Any:
        return {**self.bot, "can_join_groups": True, "can_read_all_group_messages": not self.privacy,
                "supports_inline_queries": False}  # fmt: skip

    async def _api_getChatMember(self, params: dict[str, Any]) -> Any:
        chat = self._chat(params.get("chat_id"))
        user = int(params["user_id"])
        if user == self.bot["id"]:
            status = "administrator" if chat.id in self.admin_of else "member" if chat.member else "left"
        else:
            status = "member"
        member: dict[str, Any] = {"status": status, "user": self.bot if user == self.bot["id"] else self.user(user)}
        if status == "administrator":
            member.update({key: True for key in ("can_be_edited", "can_manage_chat", "can_delete_messages",
                           "can_manage_video_chats", "can_restrict_members", "can_promote_members", "can_change_info",
                           "can_invite_users", "is_anonymous", "can_post_stories", "can_edit_stories",
                           "can_delete_stories")})  # fmt: skip
        return member

    async def _api_getChat(self, params: dict[str, Any]) -> Any:
        chat = self._chat(params.get("chat_id"))
        data = {**chat.as_dict(), "accent_color_id": 0, "max_reaction_count": 11}
        if chat.is_forum:
            data["is_forum"] = True
        return data

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = None
        if truthy(params.get("drop_pending_updates")):
            self._confirm(self._next_update_id + 1)
        return True

    async def _api_setWebhook(self, params: dict[str, Any]) -> Any:
        if truthy(params.get("drop_pending_updates")):
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
            raise ApiError(
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
            raise ApiError(
                409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
            )
        return ready()

    # webhook delivery -------------------------------------------------------------------
    async def _push_webhook(self) -> None:
        """Post pending updates to the webhook, ``webhook_connections`` at once as Telegram does,
        each again (after a short wait) until it is answered 200; only then is it confirmed."""
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                while self.webhook is not None and self.updates:
                    workers = [self._push_some(client) for _ in range(self.webhook_connections)]
                    await asyncio.gather(*workers)
        finally:
            self._pusher = None

    async def _push_some(self, client: httpx.AsyncClient) -> None:
        while self.webhook is not None:
            update = next((u for u in self.updates if u["update_id"] not in self._pushing), None)
            if update is None:
                return
            update_id = update["update_id"]
            self._pushing.add(update_id)
            try:
                headers = {}
                if self.webhook.get("secret_token"):
                    headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
                try:
                    answer = await client.post(self.webhook["url"], json=update, headers=headers)
                except httpx.HTTPError:
                    answer = None
            finally:
                self._pushing.discard(update_id)
            if answer is not None and answer.status_code == 200:
                self.updates = [u for u in self.updates if u["update_id"] != update_id]
                self.webhook_answered.append(update_id)
                async with self._changed:
                    self._changed.notify_all()
            else:
                await asyncio.sleep(0.05)
