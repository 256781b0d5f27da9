"""HTTP and Telegram HTML for the fake Bot API: request reading, JSON answers, the HTML parse mode."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from python_multipart.multipart import MultipartParser, parse_options_header

__all__ = ["ParseError", "Upload", "params", "parse_telegram_html", "read_request", "truthy", "utf16", "write"]


@dataclass
class Upload:
    """A file python-telegram-bot sent in a multipart request."""

    field: str
    filename: str
    content_type: str
    data: bytes


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


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


_HREF = re.compile(r'href="([^"]*)"')


def _entity(tag: str, offset: int, length: int, attrs: str) -> dict[str, Any]:
    """The entity a closed tag makes: a link to tg://user?id=N mentions user N."""
    entity: dict[str, Any] = {"type": _ALLOWED_TAGS[tag], "offset": offset, "length": length}
    href = _HREF.search(attrs or "")
    if tag == "a" and href is not None:
        url = href.group(1).replace("&amp;", "&")
        if url.startswith("tg://user?id="):
            entity.update(type="text_mention", user={"id": int(url.removeprefix("tg://user?id=")), "is_bot": False,
                                                     "first_name": "someone"})  # fmt: skip
        else:
            entity["url"] = url
    return entity


def parse_telegram_html(markup: str) -> tuple[str, list[dict[str, Any]]]:
    """Visible text and entities of ``markup``, by Telegram's HTML rules (strict:
    unknown tags, unclosed tags, a bare ``<`` or a broken ``&`` entity are errors)."""
    out: list[str] = []
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, int, str]] = []
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
                opened, start, attrs = stack.pop()
                if position > start:
                    entities.append(_entity(opened, start, position - start, attrs))
            else:
                stack.append((tag, position, match.group(3)))
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
            position += utf16(decoded)
            i = match.end()
            continue
        if char == ">":
            raise ParseError(f"Character '>' is reserved and must be escaped (byte offset {i})")
        out.append(char)
        position += utf16(char)
        i += 1
    if stack:
        raise ParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return "".join(out), entities


def truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))


def multipart(body: bytes, content_type: str) -> tuple[list[tuple[str, str]], dict[str, Upload]]:
    """The fields and files of a ``multipart/form-data`` body (python-telegram-bot's uploads)."""
    _, options = parse_options_header(content_type)
    fields: list[tuple[str, str]] = []
    files: dict[str, Upload] = {}
    headers: dict[bytes, bytes] = {}
    header: list[bytes] = [b"", b""]
    data = bytearray()

    def header_field(chunk: bytes, start: int, end: int) -> None:
        header[0] += chunk[start:end]

    def header_value(chunk: bytes, start: int, end: int) -> None:
        header[1] += chunk[start:end]

    def header_end() -> None:
        headers[header[0].lower()] = header[1]
        header[0], header[1] = b"", b""

    def part_data(chunk: bytes, start: int, end: int) -> None:
        data.extend(chunk[start:end])

    def part_end() -> None:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode()
        if b"filename" in disposition:
            kind = headers.get(b"content-type", b"application/octet-stream").decode()
            files[name] = Upload(name, disposition[b"filename"].decode(), kind, bytes(data))
        else:
            fields.append((name, data.decode("utf-8")))
        headers.clear()
        data.clear()

    parser = MultipartParser(options[b"boundary"], {
        "on_header_field": header_field, "on_header_value": header_value, "on_header_end": header_end,
        "on_part_data": part_data, "on_part_end": part_end})  # fmt: skip
    parser.write(body)
    parser.finalize()
    return fields, files


def params(query: str, body: bytes, content_type: str) -> dict[str, Any]:
    """The parameters of a Bot API call; uploaded files are :class:`Upload` values under their field."""
    params: dict[str, Any] = {}
    pairs = parse_qsl(query)
    if body:
        if "application/json" in content_type:
            params.update(json.loads(body))
        elif "multipart/form-data" in content_type:
            fields, files = multipart(body, content_type)
            pairs += fields
            params.update(files)
        else:
            pairs += parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    for key, value in pairs:
        # python-telegram-bot sends objects, lists, numbers and booleans JSON-encoded.
        try:
            params[key] = json.loads(value) if value[:1] in "[{" or value in ("true", "false") else value
        except json.JSONDecodeError:
            params[key] = value
    return params


async def read_request(reader: asyncio.StreamReader) -> tuple[str, bytes, dict[str, str]] | None:
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


async def write(
    writer: asyncio.StreamWriter, status: int, payload: dict[str, Any] | bytes, content_type: str = "application/json"
) -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
              409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
              503: "Service Unavailable"}.get(status, "Error")  # fmt: skip
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(data)}\r\n"
        f"Connection: keep-alive\r\n\r\n".encode()
        + data
    )
    await writer.drain()
