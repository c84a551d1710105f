"""The one registry of post attribute types, used by validation, rendering and the API.

An attribute key is ``NAME_TYPE``: the part after the last ``_`` is its type
(the whole key when it has no ``_``). :data:`TYPES` holds every type Diwan
knows with its description, its validator and, for media, its kind and
Content-Type. Keys of unknown types are kept and passed on untouched
(forward compatibility) and shown as text; their value must still be a JSON
string, number or boolean. Bytes are unpadded base64url (``encoding.b64d``).
"""

from __future__ import annotations

import datetime
import re
import unicodedata
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..base.encoding import b64d
from ..base.errors import BadInput, BadPost, Reason
from ..base.names import FINGERPRINT_RE, SHA1_RE
from . import media

KEY_RE = re.compile(r"[A-Z0-9]+(?:_[A-Z0-9]+)*")
POST_SHAPE_RE = re.compile(r"[A-Za-z0-9_-]+\.[0-9a-f]{64}\.[A-Za-z0-9_-]{86}")
BIRTHDATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
PHONE_RE = re.compile(r"[^\x00-\x1f\x7f]{0,63}[0-9][^\x00-\x1f\x7f]{0,63}")
EMAIL_RE = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,190}")
TEXT_PLAIN = "text/plain; charset=utf-8"
# Every _TIME value lies in the years 1-9999 UTC: the range every part of the node
# (Python's datetime, the CLI, the index, a browser) can show as a date.
TIME_MIN = -62135596800   # 0001-01-01T00:00:00Z
TIME_MAX = 253402300799   # 9999-12-31T23:59:59Z


@dataclass
class Context:
    """What validating a value may need beyond the value itself.

    ``verify_nested(raw, depth)`` fully verifies a reshared post (the ingest
    pipeline); without it a ``_POST`` value is only checked for shape.
    """

    max_url_length: int = 2048
    depth: int = 0
    max_depth: int = 4
    verify_nested: Callable[[str, int], object] | None = None


Check = Callable[[str, Any, Context], None]


@dataclass(frozen=True)
class AttrType:
    """One attribute type: the row of the table in ``docs/protocol.md``."""

    name: str
    value: str             # what the JSON value is, in words
    description: str
    check: Check
    media: bool = False    # the value is base64url bytes served as media
    kind: str | None = None          # fixed media kind (None: detected from the bytes)
    content_type: str | None = None  # fixed Content-Type (None: detected or text)
    profile: bool = False  # a profile field


def _bad(key: str, message: str, reason: str = Reason.BAD_ATTRIBUTE) -> BadPost:
    return BadPost(f"{key}: {message}", reason=reason, field=key)


def _string(key: str, value: Any, ctx: Context) -> None:
    if not isinstance(value, str):
        raise _bad(key, "must be a string")


def _time(key: str, value: Any, ctx: Context) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad(key, "must be an integer (unix seconds)")
    if not TIME_MIN <= value <= TIME_MAX:
        raise _bad(key, f"must lie between {TIME_MIN} (0001-01-01) and {TIME_MAX} "
                   "(9999-12-31T23:59:59Z) unix seconds")


def _url(key: str, value: Any, ctx: Context) -> None:
    _string(key, value, ctx)
    if len(value) > ctx.max_url_length:
        raise _bad(key, f"a URL may be at most {ctx.max_url_length} characters")
    if not value.isprintable() or " " in value:
        raise _bad(key, "a URL may not contain spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(value)
        host, _port = parts.hostname, parts.port
    except ValueError:
        raise _bad(key, "is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise _bad(key, "must be an http:// or https:// URL with a host")


def _bytes(key: str, value: Any) -> bytes:
    if not isinstance(value, str):
        raise _bad(key, "must be a string of unpadded base64url bytes", Reason.BAD_MEDIA)
    try:
        data = b64d(value, what=key)
    except BadInput as exc:
        raise _bad(key, exc.message.removeprefix(key + " "), Reason.BAD_MEDIA) from None
    if not data:
        raise _bad(key, "media may not be empty", Reason.BAD_MEDIA)
    return data


def _bin(key: str, value: Any, ctx: Context) -> None:
    _bytes(key, value)


def _format(name: str) -> Check:
    def check(key: str, value: Any, ctx: Context) -> None:
        found = media.detect(_bytes(key, value))
        if found != name:
            what = f"looks like {found}" if found else "has unrecognised magic bytes"
            raise _bad(key, f"declared {name} but the data {what}", Reason.BAD_MEDIA)
    return check


def _picture(key: str, value: Any, ctx: Context) -> None:
    if media.kind_of(_bytes(key, value)) != media.IMAGE:
        raise _bad(key, "a profile picture must be a JPG, PNG, GIF or WEBP image",
                   Reason.BAD_MEDIA)


def _post(key: str, value: Any, ctx: Context) -> None:
    if not isinstance(value, str) or not POST_SHAPE_RE.fullmatch(value):
        raise _bad(key, "must be a whole post P1.FP.SIG", Reason.BAD_RESHARE)
    if ctx.depth + 1 > ctx.max_depth:
        raise _bad(key, f"reshares may nest at most {ctx.max_depth} deep", Reason.TOO_DEEP)
    if ctx.verify_nested is None:
        return
    try:
        ctx.verify_nested(value, ctx.depth + 1)
    except BadPost as exc:
        if exc.reason in (Reason.TOO_DEEP, Reason.BLOCKED):
            raise _bad(key, exc.message, exc.reason) from exc
        raise _bad(key, f"the reshared post was rejected ({exc.reason}): {exc.message}",
                   Reason.BAD_RESHARE) from exc


def _pattern(regex: re.Pattern[str], what: str) -> Check:
    def check(key: str, value: Any, ctx: Context) -> None:
        if not isinstance(value, str) or not regex.fullmatch(value):
            raise _bad(key, f"must be {what}")
    return check


def _phone(key: str, value: Any, ctx: Context) -> None:
    _pattern(PHONE_RE, "a phone number of at most 64 characters with a digit")(key, value, ctx)
    if len(value) > 64:
        raise _bad(key, "a phone number may be at most 64 characters")


def _birthdate(key: str, value: Any, ctx: Context) -> None:
    _pattern(BIRTHDATE_RE, "a date YYYY-MM-DD")(key, value, ctx)
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        raise _bad(key, f"{value} is not a real date") from None


def _unknown(key: str, value: Any, ctx: Context) -> None:
    if value is None or not isinstance(value, str | int | float | bool):
        raise _bad(key, "an attribute of an unknown type must be a string, number or boolean")


def _media_type(f: media.Format) -> AttrType:
    return AttrType(f.name, "base64url bytes", f"{f.kind}: {f.name} bytes; the magic bytes "
                    "must agree", _format(f.name), True, f.kind, f.content_type)


TYPES: dict[str, AttrType] = {t.name: t for t in (
    AttrType("TEXT", "string", "text; TEXT alone is the post body", _string),
    AttrType("TIME", "integer", "unix seconds from 0001-01-01 to 9999-12-31 UTC; "
             "CREATED_TIME is required", _time),
    AttrType("URL", "string", "an http(s) link", _url),
    AttrType("BIN", "base64url bytes", "any media; its kind is detected from the magic bytes",
             _bin, True),
    *(_media_type(f) for f in media.FORMATS.values()),
    AttrType("POST", "string", "a whole post P1.FP.SIG: a reshare, verified recursively",
             _post),
    AttrType("FINGERPRINT", "string", "64-hex fingerprint: addressed to that identity",
             _pattern(FINGERPRINT_RE, "a 64-hex lowercase fingerprint")),
    AttrType("POSTSHA", "string", "40-hex SHA-1: a reply to that post",
             _pattern(SHA1_RE, "a 40-hex lowercase post SHA-1")),
    AttrType("DELETES", "string", "40-hex SHA-1: a deletion record; the author's own post it "
             "deletes", _pattern(SHA1_RE, "a 40-hex lowercase post SHA-1")),
    AttrType("SUPERSEDES", "string", "40-hex SHA-1: an edit; the author's own post this "
             "version replaces", _pattern(SHA1_RE, "a 40-hex lowercase post SHA-1")),
    AttrType("PARENTSHA", "string", "40-hex SHA-1: in a deletion record, a parent of the "
             "deleted comment", _pattern(SHA1_RE, "a 40-hex lowercase post SHA-1")),
    AttrType("PROFILENAME", "string", "profile: the name shown", _string, profile=True),
    AttrType("BIRTHDATE", "string", "profile: date of birth YYYY-MM-DD", _birthdate,
             profile=True),
    AttrType("WORKPLACE", "string", "profile: workplace", _string, profile=True),
    AttrType("PHONE", "string", "profile: phone number (at most 64 characters, with a digit)",
             _phone, profile=True),
    AttrType("EMAIL", "string", "profile: e-mail address",
             _pattern(EMAIL_RE, "an e-mail address name@domain"), profile=True),
    AttrType("PROFILEPICTURE", "base64url bytes", "profile: picture (JPG, PNG, GIF, WEBP)",
             _picture, True, media.IMAGE, profile=True),
)}
PROFILE_TYPES = frozenset(t.name for t in TYPES.values() if t.profile)


def type_of(key: str) -> str:
    """The type of an attribute key: what follows its last ``_``."""
    return key.rpartition("_")[2]


def check_keys(attrs: Mapping[str, Any]) -> None:
    """Check every attribute name against ``KEY_RE`` (``docs/protocol.md``, Attribute keys
    and types); raises :class:`BadPost` (``bad_key``) at the first bad one."""
    for key in attrs:
        if not KEY_RE.fullmatch(key):
            raise BadPost(f"attribute name {key[:80]!r} must be upper-case letters and digits "
                          "in parts joined by single '_' (like IMAGE_PNG)",
                          reason=Reason.BAD_KEY, field="attributes")


def check_values(attrs: Mapping[str, Any], ctx: Context | None = None) -> None:
    """Validate every attribute value against its type, in key order (``docs/protocol.md``,
    Attribute keys and types).

    Raises :class:`BadPost` at the first problem, ``reason`` ``bad_attribute``,
    ``bad_media``, ``bad_reshare``, ``too_deep`` or (from ``ctx.verify_nested``)
    ``blocked``.
    """
    ctx = ctx or Context()
    for key in sorted(attrs):
        attr_type = TYPES.get(type_of(key))
        (attr_type.check if attr_type else _unknown)(key, attrs[key], ctx)


def validate_attributes(attrs: Mapping[str, Any], ctx: Context | None = None) -> None:
    """Key names, then values; raises :class:`BadPost` with the first problem
    (:func:`check_keys`, then :func:`check_values`)."""
    check_keys(attrs)
    check_values(attrs, ctx)


# --- media -----------------------------------------------------------------------

def is_media(key: str) -> bool:
    """True if ``key``'s type holds base64url media bytes (``_BIN``, ``_PNG``, ...)."""
    attr_type = TYPES.get(type_of(key))
    return bool(attr_type and attr_type.media)


def content_type(key: str, data: bytes) -> str:
    """The Content-Type to serve attribute ``key`` holding ``data`` with."""
    attr_type = TYPES.get(type_of(key))
    if attr_type is None or not attr_type.media:
        return TEXT_PLAIN
    return attr_type.content_type or media.content_type_of(data)


def media_bytes(key: str, value: Any) -> bytes:
    """The bytes of a (validated) media attribute; :class:`BadInput` if ``key`` is not a
    media type, the value not a string, or not base64url."""
    if not is_media(key) or not isinstance(value, str):
        raise BadInput(f"{key} is not a media attribute", field="attribute")
    return b64d(value, what=key)


def time_iso(value: int) -> str:
    """The ISO-8601 UTC form ``YYYY-MM-DDTHH:MM:SSZ`` of unix seconds ``value``.

    Defined for every time the validator accepts (:data:`TIME_MIN` to :data:`TIME_MAX`,
    years 1-9999, protocol "Times"); the year is always four digits. Raises
    :class:`ValueError` outside that range.
    """
    if not TIME_MIN <= value <= TIME_MAX:
        raise ValueError(f"time {value} outside {TIME_MIN}..{TIME_MAX}")
    moment = _EPOCH_1 + datetime.timedelta(seconds=value - TIME_MIN)
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z")


_EPOCH_1 = datetime.datetime(1, 1, 1, tzinfo=datetime.UTC)


def describe(key: str, value: Any) -> dict[str, Any]:
    """A JSON-able view of one attribute: ``{"type", "known"}`` plus, for media, ``media``
    (kind), ``format``, ``content_type`` and ``size`` (bytes), else ``value``; a ``_TIME``
    whose value is a valid time also gets ``iso``, its :func:`time_iso` date string
    (protocol "Times").

    Raises :class:`BadInput` if a media value is not base64url (never for a verified post).
    """
    attr_type = TYPES.get(type_of(key))
    view: dict[str, Any] = {"type": type_of(key), "known": attr_type is not None}
    if attr_type is not None and attr_type.media and isinstance(value, str):
        data = b64d(value, what=key)
        view.update(media=media.kind_of(data), format=media.detect(data),
                    content_type=content_type(key, data), size=len(data))
    else:
        view["value"] = value
        if (type_of(key) == "TIME" and isinstance(value, int) and not isinstance(value, bool)
                and TIME_MIN <= value <= TIME_MAX):
            view["iso"] = time_iso(value)
    return view


# --- reactions -------------------------------------------------------------------

_EMOJI_JOINERS = {0x200D, 0xFE0E, 0xFE0F, 0x20E3}
_EMOJI_EXTRA = {0xA9, 0xAE, 0x203C, 0x2049, 0x2122, 0x2139, 0x24C2, 0x3030, 0x303D, 0x3297, 0x3299}
_KEYCAP_BASES = set("0123456789#*")


def _emoji_char(chars: str, i: int) -> bool:
    ch = chars[i]
    cp = ord(ch)
    if cp in _EMOJI_JOINERS or cp in _EMOJI_EXTRA:
        return True
    if 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F:  # skin tones, flag tags
        return True
    if ch in _KEYCAP_BASES:  # 1️⃣: a digit, # or * counts only as the base of a keycap
        return chars[i + 1:i + 2] == "\u20e3" or chars[i + 1:i + 3] == "\ufe0f\u20e3"
    if cp < 0x2000:
        return False
    category = unicodedata.category(ch)
    arrows = 0x2190 <= cp <= 0x21FF or 0x2B00 <= cp <= 0x2BFF
    return category == "So" or (category == "Sm" and arrows)


def is_emoji_only(text: str) -> bool:
    """True if ``text`` holds at least one emoji and nothing but emoji and white space."""
    chars = "".join(text.split())
    return bool(chars) and all(_emoji_char(chars, i) for i in range(len(chars)))
