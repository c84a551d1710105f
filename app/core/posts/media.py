"""Media formats: recognising bytes by their magic numbers.

Diwan never trusts a declared media type on its own: a ``_PNG`` attribute
must start like a PNG, and a ``_BIN`` attribute is shown as whatever its first
bytes say it is. Only the leading bytes are looked at; nothing is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

IMAGE, AUDIO, VIDEO, PDF, OTHER = "image", "audio", "video", "pdf", "other"
KINDS = (IMAGE, AUDIO, VIDEO, PDF, OTHER)
OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True)
class Format:
    """A media format: its attribute type name, kind and HTTP Content-Type."""

    name: str
    kind: str
    content_type: str


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("JPG", IMAGE, "image/jpeg"),
    Format("PNG", IMAGE, "image/png"),
    Format("GIF", IMAGE, "image/gif"),
    Format("WEBP", IMAGE, "image/webp"),
    Format("MP3", AUDIO, "audio/mpeg"),
    Format("OGG", AUDIO, "audio/ogg"),
    Format("WAV", AUDIO, "audio/wav"),
    Format("MP4", VIDEO, "video/mp4"),
    Format("WEBM", VIDEO, "video/webm"),
    Format("PDF", PDF, "application/pdf"),
)}


def _is_mp3(data: bytes) -> bool:
    if data.startswith(b"ID3"):
        return True
    # an MPEG audio frame header: 11 sync bits, layer III, not a reserved version
    return len(data) >= 2 and data[0] == 0xFF and (data[1] & 0xE0) == 0xE0 \
        and (data[1] & 0x06) == 0x02 and (data[1] & 0x18) != 0x08


def detect(data: bytes) -> str | None:
    """The format name (a key of :data:`FORMATS`) ``data`` starts like, or None."""
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"RIFF") and head[8:12] in (b"WEBP", b"WAVE"):
        return "WEBP" if head[8:12] == b"WEBP" else "WAV"
    if head.startswith(b"OggS"):
        return "OGG"
    if head[4:8] == b"ftyp":
        return "MP4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "WEBM"
    if head.startswith(b"%PDF-"):
        return "PDF"
    if _is_mp3(head):
        return "MP3"
    return None


def kind_of(data: bytes) -> str:
    """``image``, ``audio``, ``video``, ``pdf`` or ``other``, from the magic bytes."""
    name = detect(data)
    return FORMATS[name].kind if name else OTHER


def content_type_of(data: bytes) -> str:
    """The HTTP Content-Type of the format ``data`` starts like, else
    ``application/octet-stream``."""
    name = detect(data)
    return FORMATS[name].content_type if name else OCTET_STREAM
