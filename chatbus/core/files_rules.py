"""What files chatbus takes: the ``[files]`` settings, safe names, allowed types.

Pure functions and the settings model; the files themselves are handled by
:mod:`chatbus.core.files`, images are checked by :mod:`chatbus.core.files_images`.
"""

from __future__ import annotations

import fnmatch
import mimetypes
import unicodedata
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from .errors import FileRefused
from .sections import PluginSettings
from .settings import split_names

__all__ = [
    "DEFAULT_ALLOWED_TYPES",
    "GIB",
    "MIB",
    "FilesSettings",
    "check_name",
    "clean_name",
    "content_type_for",
    "human_size",
    "type_allowed",
    "type_refusal",
]

MIB = 1024 * 1024
GIB = 1024 * MIB

#: The types taken when ``allowed_types`` is not set; ``*`` matches any subtype.
DEFAULT_ALLOWED_TYPES: tuple[str, ...] = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/zip",
    "application/json",
    "audio/*",
    "video/*",
)

#: Longest file name kept, in characters.
MAX_NAME = 255

#: Types Python's ``mimetypes`` may not know on every system.
_EXTRA_TYPES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".csv": "text/csv",
    ".json": "application/json",
    ".webp": "image/webp",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".m4a": "audio/mp4",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".txt": "text/plain",
    ".log": "text/plain",
}


def _split(value: Any) -> Any:
    return split_names(value) if isinstance(value, str) else value


class FilesSettings(PluginSettings):
    """``[files]``: where files are kept and which are taken."""

    #: Where files are kept; default: beside the database, ``<db folder>/<db name>-files/``
    #: (a temporary folder, removed at stop, for an in-memory database).
    dir: Path | None = None
    #: Largest file taken, in bytes.
    max_file_bytes: int = Field(100 * MIB, ge=1)
    #: Most bytes kept in all, in bytes; an upload past it is refused (``STORAGE_FULL``).
    max_total_bytes: int = Field(10 * GIB, ge=1)
    #: Content types taken, exact (``image/png``) or patterns (``audio/*``).
    allowed_types: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_ALLOWED_TYPES))
    #: Most files one message may carry.
    max_per_message: int = Field(10, ge=1, le=100)
    #: Deleting a message removes its files too (unless another message has them).
    delete_with_message: bool = False
    #: Seconds after which an upload no message refers to is removed.
    orphan_after: float = Field(3600.0, gt=0)
    #: Largest image taken, in pixels (width times height): a bigger one is refused
    #: as a decompression bomb, whatever its size in bytes.
    max_image_pixels: int = Field(64_000_000, ge=1)

    _split = field_validator("allowed_types", mode="before")(classmethod(lambda cls, v: _split(v)))

    @field_validator("allowed_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        cleaned = [kind.strip().lower() for kind in value if kind.strip()]
        for kind in cleaned:
            if "/" not in kind:
                raise ValueError(f"{kind!r} is not a content type; write it like image/png or audio/*")
        return cleaned


def human_size(size: int) -> str:
    """``12 bytes``, ``3.4 KiB``, ``100 MiB``, ``10 GiB``."""
    if size < 1024:
        return f"{size} byte{'s' if size != 1 else ''}"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}".replace(".0 ", " ")
    raise AssertionError("unreachable")


def _bad_char(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def check_name(name: object) -> str:
    """``name`` when it is a safe file name, else ``FileRefused`` (``INVALID_FILE``):
    no path parts, no control characters, not empty, at most 255 characters."""
    if not isinstance(name, str) or not name.strip():
        raise FileRefused("INVALID_FILE", "The file has no name; give it one and upload it again.")
    if "/" in name or "\\" in name:
        raise FileRefused(
            "INVALID_FILE", "A file name cannot contain / or \\ (no folders); rename the file and upload it again."
        )
    if name.strip() in (".", ".."):
        raise FileRefused("INVALID_FILE", "A file cannot be named . or .. (those name folders); rename it.")
    if any(_bad_char(ch) for ch in name):
        raise FileRefused(
            "INVALID_FILE",
            "The file name contains control characters or invisible formatting (such as a direction mark); "
            "rename the file and upload it again.",
        )
    if len(name) > MAX_NAME:
        raise FileRefused(
            "INVALID_FILE", f"The file name is {len(name)} characters long; the limit is {MAX_NAME}. Shorten it."
        )
    return name.strip()


def clean_name(name: object, fallback: str = "file") -> str:
    """A safe name made from ``name`` (for files named by another system, such as
    Telegram): the last path part, control characters dropped, cut to 255 characters."""
    text = str(name) if name is not None else ""
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if not _bad_char(ch)).strip()
    if text in ("", ".", ".."):
        return fallback
    if len(text) > MAX_NAME:
        _stem, dot, ext = text.rpartition(".")
        keep = ext if dot and 0 < len(ext) <= 16 else ""
        text = text[: MAX_NAME - len(keep) - 1] + "." + keep if keep else text[:MAX_NAME]
    return text


def content_type_for(declared: object, name: str) -> str:
    """The bare, lower-case content type of a file: the declared one without
    parameters, else one guessed from the name, else ``application/octet-stream``."""
    if isinstance(declared, str):
        bare = declared.split(";", 1)[0].strip().lower()
        if bare and "/" in bare and bare != "application/octet-stream":
            return bare
    suffix = Path(name).suffix.lower()
    guessed = _EXTRA_TYPES.get(suffix) or mimetypes.guess_type(name, strict=False)[0]
    return guessed or "application/octet-stream"


def type_allowed(content_type: str, allowed: list[str] | tuple[str, ...]) -> bool:
    """Whether ``content_type`` matches one of ``allowed`` (exact types or patterns such as ``audio/*``)."""
    return any(fnmatch.fnmatchcase(content_type, pattern) for pattern in allowed)


def type_refusal(content_type: str, name: str, allowed: list[str] | tuple[str, ...]) -> str:
    """Why a file of ``content_type`` is refused, in words that say what to do. A file whose type
    nobody could tell (``application/octet-stream``: none was sent and the name has no known
    extension, such as ``README``) is most often one the chat takes under a better name."""
    listed = ", ".join(allowed)
    if content_type == "application/octet-stream":
        return (
            f"chatbus cannot tell what kind of file {name} is (no type was sent and its name does not say). "
            f"If it is one of the kinds taken here, give its name an extension (.txt, .pdf, .png, ...) and "
            f"upload it again; allowed: {listed}."
        )
    return f"Files of type {content_type} are not accepted here; allowed: {listed}."
