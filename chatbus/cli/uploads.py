"""``chatbus send --file``: uploading files to a running server's ``POST /files``.

Each file is streamed from disk as a ``multipart/form-data`` body (field
``file``) with a known length, so a large file never sits in memory. A server
that refuses early (``413`` for a file over its limit) may close the
connection before the whole body is sent; its answer is still read and shown.
"""

from __future__ import annotations

import http.client
import json
import mimetypes
import os
import ssl
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..core.errors import ChatbusError
from ..core.files_rules import human_size

__all__ = ["LocalFile", "check_files", "upload"]

_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file named on the command line, checked to be there and readable."""

    path: Path
    name: str
    size: int
    content_type: str


def check_files(paths: list[str]) -> list[LocalFile]:
    """Every ``--file``, checked before anything is sent: a typo fails before a half-sent message."""
    checked = []
    for given in paths:
        path = Path(given).expanduser()
        try:
            info = path.stat()
        except FileNotFoundError:
            raise ChatbusError(f"there is no file {given}; check the --file path") from None
        except OSError as exc:
            raise ChatbusError(f"cannot read {given} ({(exc.strerror or 'error').lower()})") from None
        if not stat.S_ISREG(info.st_mode):
            raise ChatbusError(f"{given} is not a file (a directory?); give --file a file")
        if not os.access(path, os.R_OK):
            raise ChatbusError(f"cannot read {given} (permission denied)")
        guessed, _ = mimetypes.guess_type(path.name)
        checked.append(LocalFile(path, path.name, info.st_size, guessed or "application/octet-stream"))
    return checked


def _field_name(name: str) -> str:
    """A file name inside a quoted multipart header: quotes escaped, so the server reads the name as written."""
    return name.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "%0D").replace("\n", "%0A")


def _connection(url: str, timeout: float, context: ssl.SSLContext | None) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    if parts.scheme == "https":
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    return http.client.HTTPConnection(host, port, timeout=timeout)


def _body(file: LocalFile, boundary: str) -> tuple[bytes, bytes]:
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{_field_name(file.name)}"\r\n'
        f"Content-Type: {file.content_type}\r\n\r\n"
    ).encode()
    return head, f"\r\n--{boundary}--\r\n".encode()


def _chunks(file: LocalFile) -> Iterator[bytes]:
    """The file's bytes, exactly as many as announced (``Content-Length``)."""
    left = file.size
    try:
        with file.path.open("rb") as source:
            while left > 0:
                chunk = source.read(min(_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk
    except OSError as exc:
        raise ChatbusError(f"cannot read {file.path} ({(exc.strerror or 'error').lower()})") from None
    if left:
        raise ChatbusError(f"{file.path} got shorter while it was being sent; send it again once it is written")


def _post(conn: http.client.HTTPConnection, file: LocalFile, headers: dict[str, str]) -> tuple[int, bytes]:
    """Send the file and return the status and body of the answer, even an early one."""
    boundary = f"chatbus-{uuid.uuid4().hex}"
    head, tail = _body(file, boundary)
    conn.putrequest("POST", "/files")
    for name, value in {
        **headers,
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + file.size + len(tail)),
        "Accept": "application/json",
    }.items():
        conn.putheader(name, value)
    conn.endheaders()
    try:
        conn.send(head)
        for chunk in _chunks(file):
            conn.send(chunk)
        conn.send(tail)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server stopped reading: it has answered already (413), read below
    answer = conn.getresponse()
    return answer.status, answer.read()


def _refusal(file: LocalFile, status: int, body: bytes, url: str, *, token: bool) -> ChatbusError:
    """The server's refusal of ``file``, in words that say what to do."""
    try:
        error = json.loads(body.decode("utf-8")).get("error") or {}
        words = str(error.get("message") or "").strip()
    except (ValueError, AttributeError):
        words = ""
    said = f": {words}" if words else ""
    if status == 413:
        return ChatbusError(f"{file.path} is too big for the server ({human_size(file.size)}){said}")
    if status == 415:
        return ChatbusError(f"the server does not take files like {file.path} ({file.content_type}){said}")
    if status == 401:
        hint = "check --token" if token else "check --user, or give --token where the chat needs one"
        return ChatbusError(
            f"the server refused the upload of {file.path}{said.rstrip('.') or ': no valid token'}; {hint}"
        )
    if status in (404, 405):
        return ChatbusError(f"{url} takes no file uploads ({status}); is it a chatbus server with files?")
    return ChatbusError(f"the server refused {file.path} ({status}){said}")


def upload(
    url: str, file: LocalFile, *, user: str, token: str | None, timeout: float, context: ssl.SSLContext | None
) -> dict[str, Any]:
    """Store ``file`` on the server at ``url`` (http or https); its JSON answer (``id``, ``name``, ...)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {"X-Chatbus-User": user}
    conn = _connection(url, timeout, context)
    try:
        status, body = _post(conn, file, headers)
    except ssl.SSLError:
        raise
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {timeout:g} s"
        raise ChatbusError(
            f"could not upload {file.path} to {url} ({reason}); is chatbus serve running there?"
        ) from None
    finally:
        conn.close()
    if status != 201:
        raise _refusal(file, status, body, url, token=bool(token))
    try:
        answer = json.loads(body.decode("utf-8"))
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
        raise ChatbusError(f"{url}/files did not answer with a file id; is that a chatbus server?")
    return answer
