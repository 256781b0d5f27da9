"""The synchronous ``CommunicationManager`` of the earlier system, over a hub.

Code written for the earlier Telegram/WebSocket system moves over unchanged::

    from chatbus.compat import CommunicationManager

    comm = CommunicationManager()            # COMMUNICATION_TRANSPORT, default websocket
    comm.add_message_handler(on_message)     # on_message(message) -> None
    comm.start_polling()                     # returns once the chat is up
    comm.send_message("hello", sender_name="alice")
    ...
    comm.stop_polling()

The hub runs on a thread of its own with its own event loop, configured like
``chatbus serve`` (``chatbus.toml``, ``CHATBUS_*`` and the earlier variable
names). Handlers receive a :class:`CompatMessage` for every message a person
sends, on any transport (not for messages from agents or the system, so a
handler that answers never hears itself). Each handler runs on a thread of
its own, off the event loop, one message after another: a handler that is
slow only delays itself, and one that raises is logged and called again for
the next message. ``async def`` handlers work too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import mimetypes
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Self

from .core.errors import ChatbusError, FileRefused, InvalidMessage, NotFound, TransportError
from .core.hookspecs import hookimpl
from .core.hub import Hub
from .core.loader import TRANSPORT_GROUP, iter_entry_points
from .core.message import SYSTEM_SENDER, Attachment, Message, valid_name
from .core.settings import Settings, expand_transports

__all__ = ["CommunicationManager", "CompatMessage", "MessageHandler"]

log = logging.getLogger("chatbus.compat")

DEFAULT_TRANSPORT = "websocket"
_START_TIMEOUT = 30.0
_SEND_TIMEOUT = 10.0
_STOP_TIMEOUT = 15.0
_READ_TIMEOUT = 60.0


@dataclass(frozen=True)
class CompatMessage:
    """A message as the earlier system's handlers received it.

    ``message_id`` is the chatbus id (use it as ``reply_to``); ``command`` is
    the command name without its slash (``"status"`` for ``/status alice``)
    and ``command_args`` its arguments. ``room``, ``sender_role``,
    ``transport`` and ``attachments`` (the files sent with it, as
    :class:`chatbus.Attachment`; read one with
    :meth:`CommunicationManager.read_file`) are extras the earlier system did
    not have.
    """

    message_id: int
    text: str
    sender: str
    timestamp: datetime
    mentions: list[str] = field(default_factory=list)
    is_command: bool = False
    command: str | None = None
    command_args: list[str] = field(default_factory=list)
    reply_to: int | None = None
    room: str = "general"
    sender_role: str = "user"
    transport: str | None = None
    attachments: list[Attachment] = field(default_factory=list)

    @classmethod
    def from_message(cls, message: Message) -> CompatMessage:
        return cls(
            message_id=message.id,
            text=message.text,
            sender=message.sender,
            timestamp=message.timestamp,
            mentions=list(message.mentions),
            is_command=message.is_command,
            command=message.command,
            command_args=list(message.command_args),
            reply_to=message.reply_to,
            room=message.room,
            sender_role=message.sender_role,
            transport=message.transport,
            attachments=list(message.attachments),
        )


MessageHandler = Callable[[CompatMessage], Any]


def installed_transports() -> list[str]:
    """The transport names installed (entry points of ``chatbus.transports``)."""
    return sorted(ep.name for ep in iter_entry_points(TRANSPORT_GROUP))


def _transport_names(transport_type: str) -> list[str]:
    """``websocket``, ``telegram``, ``both`` or ``a,b`` as a list of installed transports."""
    installed = installed_transports()
    names = expand_transports([part.strip().lower() for part in transport_type.split(",") if part.strip()])
    unknown = [name for name in names if name not in installed]
    if unknown:
        choices = ", ".join([*installed, "both"])
        raise ValueError(f"unknown transport type {transport_type!r}: choose one of {choices}")
    if not names:
        raise ValueError(f"no transport type given: choose one of {', '.join([*installed, 'both'])}")
    return names


class _Bridge:
    """The plugin that hands people's messages to the handlers' threads."""

    def __init__(self, manager: CommunicationManager) -> None:
        self._manager = manager

    @hookimpl
    def on_message(self, message: Message) -> None:
        if message.kind == "human":
            self._manager._dispatch(CompatMessage.from_message(message))


class _Handler:
    """One handler and the thread its calls run on, in order."""

    def __init__(self, fn: MessageHandler) -> None:
        self.fn = fn
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"chatbus-handler-{getattr(fn, '__name__', 'handler')}"
        )

    def submit(self, message: CompatMessage) -> None:
        try:
            self.executor.submit(self._call, message)
        except RuntimeError:  # shut down meanwhile
            pass

    def _call(self, message: CompatMessage) -> None:
        try:
            result = self.fn(message)
            if inspect.isawaitable(result):
                asyncio.run(_await(result))
        except Exception:
            log.exception("message handler %r failed on message %d", self.fn, message.message_id)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


async def _await(awaitable: Any) -> Any:
    return await awaitable


class CommunicationManager:
    """The earlier system's synchronous chat interface, backed by a chatbus hub.

    ``transport_type`` is ``"websocket"``, ``"telegram"`` or ``"both"``
    (default: the ``COMMUNICATION_TRANSPORT`` variable, else ``websocket``);
    a name that is not installed raises ``ValueError``. ``settings`` replaces
    the configuration that would be read from files and the environment
    (its ``transports`` is set from ``transport_type``).
    """

    def __init__(self, transport_type: str | None = None, *, settings: Settings | None = None) -> None:
        chosen = transport_type if transport_type is not None else os.environ.get("COMMUNICATION_TRANSPORT", "")
        chosen = chosen.strip() or DEFAULT_TRANSPORT
        self._transport_names = _transport_names(chosen)
        self._transport_type = chosen
        self._settings = settings
        self._handlers: list[_Handler] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._hub: Hub | None = None

    # the earlier interface -------------------------------------------------------
    def add_message_handler(self, handler: MessageHandler) -> None:
        """Call ``handler(message)`` for every message a person sends from now on."""
        if not callable(handler):
            raise TypeError("a message handler must be callable: handler(message)")
        with self._lock:
            self._handlers.append(_Handler(handler))

    def start_polling(self) -> None:
        """Start the chat on its own thread; returns once it runs (again a no-op).

        Raises the ``ChatbusError`` that kept it from starting (a port in use,
        a bad setting), with a message that says what to change.
        """
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            ready = threading.Event()
            failure: list[BaseException] = []
            self._thread = threading.Thread(target=self._serve, args=(ready, failure), name="chatbus-hub", daemon=True)
            self._thread.start()
        if not ready.wait(_START_TIMEOUT):
            self.stop_polling()
            raise TransportError(f"chatbus did not start within {_START_TIMEOUT:.0f} seconds")
        if failure:
            self._thread.join(_STOP_TIMEOUT)
            raise failure[0]

    def stop_polling(self) -> None:
        """Stop the chat and wait for it; handlers still queued are dropped."""
        with self._lock:
            thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop has already closed
                pass
        if thread is not threading.current_thread():
            thread.join(_STOP_TIMEOUT)
            if thread.is_alive():
                log.warning("chatbus did not stop within %.0f seconds", _STOP_TIMEOUT)
        with self._lock:
            if self._thread is thread:
                self._thread = None
            handlers, self._handlers = self._handlers, [_Handler(h.fn) for h in self._handlers]
        for handler in handlers:
            handler.close()

    def send_message(
        self,
        text: str,
        sender_name: str = SYSTEM_SENDER,
        reply_to: int | str | None = None,
        files: Sequence[str | os.PathLike[str]] | None = None,
    ) -> bool:
        """Post ``text`` as ``sender_name`` (an agent, or ``system``) to every
        transport, with the files at the paths ``files`` attached (stored
        first; the text may then be empty).

        Safe from any thread. Returns ``False`` only when the chat is not
        running; raises ``ValueError`` for an empty text without files, a bad
        sender name, a ``reply_to`` that is not a message id or a file the
        chat refuses (too big, a type not allowed), ``FileNotFoundError`` for
        a path that is not a readable file.
        """
        paths = _file_paths(files)
        if not isinstance(text, str) or (not text.strip() and not paths):
            raise ValueError("the message text is empty")
        if not valid_name(sender_name):
            raise ValueError("sender_name must be 1-64 letters, digits, '_', '-' or '.'")
        reply = _message_id(reply_to)
        hub, loop = self._hub, self._loop
        if hub is None or loop is None or not hub.running:
            return False
        # Storing files takes a while on a slow disk: a second more for every 5 MB.
        timeout = _SEND_TIMEOUT + sum(path.stat().st_size for path in paths) / 5_000_000
        coro = _post(hub, text, sender_name, reply, paths)
        if self._on_loop_thread():
            task = loop.create_task(coro)
            task.add_done_callback(_log_send_failure)
            return True
        try:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:  # the loop closed meanwhile
            coro.close()
            return False
        try:
            future.result(timeout)
        except TransportError:
            return False
        except (InvalidMessage, FileRefused, NotFound) as exc:
            raise ValueError(str(exc)) from None
        except concurrent.futures.TimeoutError:
            log.warning("a message could not be posted within %.0f seconds", timeout)
            future.cancel()
            return False
        except ChatbusError as exc:
            log.error("could not post a message: %s", exc)
            return False
        return True

    def read_file(self, attachment: Attachment | str) -> bytes:
        """The bytes of a file a message carries (an ``Attachment`` or its id).

        Safe from any thread but the chat's own; raises ``FileNotFoundError``
        when there is no such file and ``TransportError`` when the chat is not
        running.
        """
        file_id = attachment.id if isinstance(attachment, Attachment) else attachment
        hub, loop = self._hub, self._loop
        if hub is None or loop is None or not hub.running:
            raise TransportError("chatbus is not running; call start_polling() first")
        if self._on_loop_thread():
            raise RuntimeError("read_file blocks; on the chat's own loop use `await hub.files.open(file_id)`")
        future = asyncio.run_coroutine_threadsafe(_read(hub, file_id), loop)
        try:
            return future.result(_READ_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TransportError(f"the file {file_id} could not be read within {_READ_TIMEOUT:.0f} seconds") from None

    def is_connected(self) -> bool:
        """True while the chat runs and at least one transport is connected."""
        hub = self._hub
        if hub is None or not hub.running:
            return False
        return any(transport.is_connected() for transport in hub.transports.values())

    def get_transport_type(self) -> str:
        """The transport type as chosen: ``websocket``, ``telegram`` or ``both``."""
        return self._transport_type

    # extras ------------------------------------------------------------------------
    @property
    def hub(self) -> Hub | None:
        """The running hub (for code that outgrows the facade), or None."""
        return self._hub

    def __enter__(self) -> Self:
        self.start_polling()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_polling()

    # the hub's thread ------------------------------------------------------------------
    def _on_loop_thread(self) -> bool:
        thread = self._thread
        return thread is not None and thread is threading.current_thread()

    def _dispatch(self, message: CompatMessage) -> None:
        with self._lock:
            handlers = list(self._handlers)
        for handler in handlers:
            handler.submit(message)

    def _make_settings(self) -> Settings:
        if self._settings is not None:
            return self._settings.model_copy(update={"transports": list(self._transport_names)})
        return Settings.load(transports=list(self._transport_names))

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        try:
            asyncio.run(self._main(ready, failure))
        except BaseException as exc:  # handed to start_polling
            if not ready.is_set():
                failure.append(exc)
                ready.set()
            else:
                log.exception("chatbus stopped unexpectedly")

    async def _main(self, ready: threading.Event, failure: list[BaseException]) -> None:
        stop = asyncio.Event()
        try:
            hub = Hub(self._make_settings(), plugins=[_Bridge(self)])
            await hub.start()
        except BaseException as exc:  # noqa: BLE001 - handed to start_polling
            failure.append(exc)
            ready.set()
            return
        with self._lock:
            self._loop, self._stop, self._hub = asyncio.get_running_loop(), stop, hub
        ready.set()
        try:
            await stop.wait()
        finally:
            with self._lock:
                self._hub = None
            await hub.stop()
            with self._lock:
                self._loop, self._stop = None, None


def _file_paths(files: Sequence[str | os.PathLike[str]] | None) -> list[Path]:
    """The paths of ``files``, each checked to be a readable file before anything is sent."""
    if files is None:
        return []
    if isinstance(files, (str, os.PathLike)):
        raise TypeError("files must be a list of paths: files=[path]")
    paths = [Path(os.fspath(given)).expanduser() for given in files]
    for path in paths:
        if path.is_dir():
            raise FileNotFoundError(f"{path} is a directory, not a file to attach")
        if not path.is_file():
            raise FileNotFoundError(f"there is no file {path} to attach")
        if not os.access(path, os.R_OK):
            raise PermissionError(f"{path} cannot be read, so it cannot be attached")
    return paths


async def _post(hub: Hub, text: str, sender: str, reply_to: int | None, paths: Sequence[Path]) -> Message:
    """Store the files (as ``sender``) and post the message with them attached."""
    if not paths:
        return await hub.send(text, sender=sender, reply_to=reply_to)
    ids = []
    for path in paths:
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        stored = await hub.files.save_path(path, name=path.name, content_type=content_type, uploader=sender)
        ids.append(stored.id)
    return await hub.send(text, sender=sender, reply_to=reply_to, attachments=ids)


async def _read(hub: Hub, file_id: str) -> bytes:
    stored = await hub.files.open(file_id)
    if stored is None:
        raise FileNotFoundError(f"there is no file {file_id} in the chat")
    return await stored.read_all()


def _message_id(value: int | str | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise ValueError("reply_to must be a message id (a positive whole number)")


def _log_send_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("could not post a message: %s", task.exception())
