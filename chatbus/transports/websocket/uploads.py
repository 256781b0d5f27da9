"""``POST /files``: one file from a ``multipart/form-data`` body, streamed to the files folder.

The body is parsed as it arrives by python-multipart's streaming parser; the
bytes of the field ``file`` go straight into ``hub.files.spool()`` and are
checked and kept by ``hub.files.save`` (size, type, what an image really is,
pixels). Nothing is kept unless the whole upload was right; every refusal
names what was wrong and what to do. Refusals that can be told before the
file's bytes arrive are given at once, before reading them: a
``Content-Length`` over the limit (``413``), a type that is not taken
(``415``), a name that is not a file's own name (``400``).

File names are refused, never repaired: a name with a folder part (``/`` or
``\\``), a control or invisible formatting character (a right-to-left
override that makes ``txt.exe`` read ``exe.txt``), ``.`` or ``..``, or more
than 255 characters is a ``400`` that asks for the file to be renamed; a
server that silently changed names would show people a name the sender
never chose. One exception is python-multipart's: the full Windows path that
old Internet Explorers sent (``C:\\Users\\me\\photo.png``) is read as the
name it ends with (``photo.png``).
"""

from __future__ import annotations

from typing import Final

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from chatbus.core.errors import FileRefused
from chatbus.core.files import Files, Spool
from chatbus.core.files_rules import check_name, content_type_for, human_size, type_allowed, type_refusal
from chatbus.core.message import Attachment

from .exchange import Exchange, HttpError

__all__ = ["receive"]

#: Bytes a form may have besides the file (boundaries, part headers, small fields).
FORM_OVERHEAD: Final = 64 * 1024
_FORM: Final = "Send the file as multipart/form-data in a field named file (one file per request)."


def _invalid(message: str) -> HttpError:
    return HttpError(400, "INVALID_FILE", message)


def _boundary(exchange: Exchange) -> bytes:
    declared = exchange.header("Content-Type")
    if declared is None:
        raise HttpError(400, "INVALID_REQUEST", _FORM)
    kind, options = parse_options_header(declared)
    boundary = options.get(b"boundary", b"")
    if kind != b"multipart/form-data" or not boundary or len(boundary) > 200:
        raise HttpError(400, "INVALID_REQUEST", _FORM)
    return boundary


def _check_length(exchange: Exchange, max_bytes: int) -> None:
    length = exchange.header("Content-Length")
    if length is not None and length.isdigit() and int(length) > max_bytes + FORM_OVERHEAD:
        raise HttpError(
            413, "FILE_TOO_BIG", f"The file is larger than {human_size(max_bytes)}, the limit; send a smaller one."
        )


def _file_name(options: dict[bytes, bytes]) -> str | None:
    """The file name of a part as browsers write it: UTF-8, with ``"``, CR and LF written as
    ``%22``, ``%0D``, ``%0A`` (``filename*`` is not used in forms, RFC 7578)."""
    plain = options.get(b"filename")
    if plain is None:
        return None
    try:
        text = plain.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("The file name is not valid UTF-8; rename the file and upload it again.") from None
    return text.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")


class _Form:
    """The parser's callbacks: which part is the file, and where its bytes go."""

    def __init__(self, boundary: bytes, spool: Spool, allowed: list[str]) -> None:
        self.spool = spool
        self.allowed = allowed
        self.name: str | None = None
        self.content_type: str | None = None
        self.finished = False
        self._in_file = False
        self._file_done = False
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._other = 0
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    def write(self, chunk: bytes) -> None:
        try:
            self.parser.write(chunk)
        except MultipartParseError:
            raise HttpError(400, "INVALID_REQUEST", "The form is not valid multipart/form-data. " + _FORM) from None

    def _part_begin(self) -> None:
        self._headers, self._field, self._value = {}, b"", b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        field = options.get(b"name")
        name = _file_name(options)
        if disposition != b"form-data" or field is None:
            raise HttpError(400, "INVALID_REQUEST", "A part of the form has no field name. " + _FORM)
        if field != b"file":
            if name is not None:
                shown = field.decode("utf-8", "replace")[:60]
                raise HttpError(400, "INVALID_REQUEST", f"The file came in the field {shown!r}. " + _FORM)
            return  # a plain field beside the file: read and dropped
        if self._file_done or self._in_file:
            raise HttpError(400, "INVALID_REQUEST", "The form has more than one file. " + _FORM)
        if name is None:
            raise HttpError(400, "INVALID_REQUEST", "The field file holds no file (no filename). " + _FORM)
        self._begin_file(name)

    def _begin_file(self, name: str) -> None:
        try:
            self.name = check_name(name)
        except FileRefused as refused:
            raise _invalid(str(refused)) from None
        declared = self._headers.get(b"content-type", b"").decode("latin-1")
        kind = content_type_for(declared, self.name)
        if not type_allowed(kind, self.allowed):
            raise HttpError(415, "FILE_TYPE", type_refusal(kind, self.name, self.allowed))
        self.content_type = kind
        self._in_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.spool.write(data[start:end])
            return
        self._other += end - start
        if self._other > FORM_OVERHEAD:
            raise HttpError(400, "INVALID_REQUEST", "The form's other fields are too large. " + _FORM)

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file, self._file_done = False, True

    def _end(self) -> None:
        self.finished = True


async def receive(exchange: Exchange, files: Files, uploader: str | None) -> Attachment:
    """Read the upload of ``exchange`` into the files folder; the file kept (``FileRefused`` or
    :class:`~.exchange.HttpError` when nothing was)."""
    boundary = _boundary(exchange)
    settings = files.settings
    _check_length(exchange, settings.max_file_bytes)
    async with files.spool() as spool:
        form = _Form(boundary, spool, settings.allowed_types)
        async for chunk in exchange.body():
            form.write(chunk)
        form.parser.finalize()
        if not form.finished:
            raise HttpError(
                400,
                "INVALID_REQUEST",
                "The upload ended before the end of the form; the file may be cut short. Send it again.",
            )
        if form.name is None:
            raise HttpError(400, "INVALID_REQUEST", "The form has no field named file. " + _FORM)
        return await files.save(spool, form.name, form.content_type, uploader)
