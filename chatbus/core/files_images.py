"""Is an "image" an image? Checked with Pillow before it is stored.

A file that claims an image type must open as one, be of a type that fits
the claim, and be no larger than the pixel limit: a few kilobytes of PNG can
claim a size whose pixels fill gigabytes once decoded (a decompression bomb),
so the size in the header is checked before anything is decoded, and
Pillow's own bomb warning is an error here. Runs on a worker thread.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .errors import FileRefused

__all__ = ["IMAGE_TYPES", "ImageInfo", "needs_check", "probe_image"]

#: What Pillow calls the formats it reads, as content types.
IMAGE_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # a JPEG with more pictures (phones' cameras)
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "ICO": "image/vnd.microsoft.icon",
    "AVIF": "image/avif",
    "HEIF": "image/heif",
}

#: Pillow's own limit, for everything in this process that opens images (thumbnails too):
#: a warning past it, an error past twice it. Checks here use the configured limit.
Image.MAX_IMAGE_PIXELS = 64_000_000

_ORIENTATION = 0x0112
#: EXIF orientations that turn the picture a quarter: it is shown with width and height swapped.
_TURNED = frozenset({5, 6, 7, 8})

#: Image types Pillow cannot read: taken (when allowed) without a check.
_NOT_RASTER = frozenset({"image/svg+xml"})


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the bytes of an image are: its real type and size in pixels."""

    content_type: str
    width: int
    height: int


def needs_check(content_type: str) -> bool:
    """Whether a file of ``content_type`` must prove to be an image."""
    return content_type.startswith("image/") and content_type not in _NOT_RASTER


def _not_an_image(claimed: str) -> FileRefused:
    return FileRefused(
        "INVALID_FILE",
        f"The file says it is {claimed} but is not a picture chatbus can read; "
        "check the file (it may be damaged) or send it as a document.",
    )


def probe_image(path: Path, claimed: str, max_pixels: int) -> ImageInfo:
    """Open ``path`` as an image and decode it; ``FileRefused`` (``INVALID_FILE``) when it
    is not one, is damaged, or has more than ``max_pixels`` pixels. Width and height are
    as the picture is shown (its EXIF orientation applied)."""
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels  # a larger limit was configured
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise FileRefused(
                        "INVALID_FILE",
                        f"The picture is {width} x {height} pixels; the limit is {max_pixels:,} pixels in all. "
                        "Make it smaller and send it again.",
                    )
                real = IMAGE_TYPES.get(image.format or "")
                if real is None:
                    raise _not_an_image(claimed)
                if real == "image/jpeg":  # decoded at an eighth of its size: every block is still read
                    image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
                image.load()
                if image.getexif().get(_ORIENTATION) in _TURNED:
                    width, height = height, width  # shown turned a quarter (a phone held upright)
    except FileRefused:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise FileRefused(
            "INVALID_FILE",
            f"The picture has more than {max_pixels:,} pixels; make it smaller and send it again.",
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, MemoryError):
        raise _not_an_image(claimed) from None
    return ImageInfo(real, width, height)
