"""Removing metadata (EXIF with GPS position and camera, XMP, IPTC, comments) from images.

An author's node strips every JPEG, PNG, WebP and GIF before it is signed
(:func:`app.core.posts.authoring.compose`, the one path of the admin API, the
CLI and the web pages): once signed, a post cannot be changed, and a photo's
EXIF block often holds the place it was taken (``docs/protocol.md``, Image
metadata; ``docs/threats.md`` T65). Only what a picture needs to look right is
kept: its pixels (turned upright by the EXIF orientation first), ICC colour
profile, transparency, animation timing. An image that carries nothing else is
left byte for byte as it was, so a clean JPEG is not re-compressed. The kind is
decided by the magic bytes (:mod:`.media`), never by a declared name.
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING, Any

from ..base.errors import BadInput
from . import media

if TYPE_CHECKING:  # Pillow is imported when an image is stripped, not by every CLI command
    from PIL import Image

STRIPPED = frozenset({"JPG", "PNG", "WEBP", "GIF"})
# what Pillow reports in ``Image.info`` that only shapes the picture
_KEEP_INFO = frozenset({"dpi", "gamma", "transparency", "icc_profile", "srgb", "chromaticity",
                        "aspect", "duration", "loop", "disposal", "blend", "default_image",
                        "background", "version", "jfif", "jfif_version", "jfif_unit",
                        "jfif_density", "adobe", "adobe_transform", "progressive",
                        "progression", "dpi_unit", "interlace", "bbox", "background_color",
                        "timestamp", "extension"})
# JPEG segments that are not metadata: JFIF header, ICC profile, Adobe colour transform
_KEEP_JPEG_SEGMENTS = frozenset({"APP0", "APP2", "APP14"})
_SAVE_FORMAT = {"JPG": "JPEG", "PNG": "PNG", "WEBP": "WEBP", "GIF": "GIF"}


def _metadata(im: Image.Image) -> list[str]:
    """The names of the metadata ``im`` carries (empty: nothing to remove)."""
    found = {str(k) for k in im.info if k not in _KEEP_INFO}
    if im.format == "JPEG":
        applist: list[tuple[str, bytes]] = getattr(im, "applist", [])
        found |= {m for m, _ in applist if m not in _KEEP_JPEG_SEGMENTS}
    if im.getexif():
        found.add("exif")
    return sorted(found)


def _open(data: bytes, max_pixels: int, what: str) -> Image.Image:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            width, height = im.size
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise BadInput(f"{what} has too many pixels", field="media") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise BadInput(f"{what} starts like an image but does not decode; its metadata "
                       "cannot be removed", field="media") from None
    if width * height > max_pixels:
        raise BadInput(f"{what} has {width}x{height} pixels; at most max_image_pixels "
                       f"({max_pixels}) are accepted", field="media")
    return im


def _save_options(im: Image.Image, fmt: str, upright: bool) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if icc := im.info.get("icc_profile"):
        options["icc_profile"] = icc
    if fmt == "JPG":
        # "keep" reuses the original quantisation tables: no visible loss
        options["quality"] = "keep" if upright else 95
        if upright:
            options["subsampling"] = "keep"
    elif fmt == "WEBP":
        options.update(quality=90, method=4)
    elif "transparency" in im.info:
        options["transparency"] = im.info["transparency"]
    if getattr(im, "is_animated", False):
        options["save_all"] = True
        for key in ("duration", "loop", "disposal", "blend"):
            if key in im.info:
                options[key] = im.info[key]
    return options


def strip_metadata(data: bytes, *, max_pixels: int, what: str = "an image") -> bytes:
    """``data`` without its metadata if it is a JPEG, PNG, WebP or GIF (by magic bytes),
    else ``data`` unchanged; unchanged too if the image carries no metadata.

    The result decodes to the same picture (turned upright by the EXIF orientation) in
    the same format, without EXIF (GPS, camera), XMP, IPTC, Photoshop, text chunks or
    comments. Raises :class:`BadInput` if the image does not decode or has more than
    ``max_pixels`` pixels (``max_image_pixels``); ``what`` names it in the message.
    """
    fmt = media.detect(data)
    if fmt not in STRIPPED:
        return data
    from PIL import Image, ImageOps

    im = _open(data, max_pixels, what)
    if not _metadata(im):
        return data
    try:
        upright = im.getexif().get(0x0112, 1) in (0, 1)
        source = im if upright else ImageOps.exif_transpose(im)
        options = _save_options(im, fmt, upright)
        for key in [k for k in source.info if k not in _KEEP_INFO]:
            del source.info[key]
        out = io.BytesIO()
        source.save(out, format=_SAVE_FORMAT[fmt], **options)
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadInput(f"{what} could not be re-encoded without its metadata ({exc})",
                       field="media") from None
    result = out.getvalue()
    left = _metadata(Image.open(io.BytesIO(result)))
    if left:  # never sign a picture that still carries what the author meant to drop
        raise BadInput(f"{what} still carries {', '.join(left)} after stripping",
                       field="media")
    return result
