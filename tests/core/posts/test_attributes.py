"""app/core/attributes.py and media.py: the one registry of attribute types."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from app.core.base.encoding import b64e
from app.core.base.errors import BadInput, BadPost, Reason
from app.core.posts import attributes, media
from app.core.posts.attributes import TYPES, Context, check_values, type_of, validate_attributes

ROOT = Path(__file__).resolve().parents[3]
FP = "ab" * 32
SHA = "cd" * 20

MAGIC = {
    "JPG": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "PNG": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "GIF": b"GIF89a\x01\x00\x01\x00",
    "WEBP": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    "MP3": b"ID3\x04\x00\x00\x00\x00\x00\x00",
    "OGG": b"OggS\x00\x02\x00\x00",
    "WAV": b"RIFF\x24\x00\x00\x00WAVEfmt ",
    "MP4": b"\x00\x00\x00\x18ftypmp42\x00\x00",
    "WEBM": b"\x1aE\xdf\xa3\x9fB\x86\x81",
    "PDF": b"%PDF-1.7\n%\xe2\xe3",
}


def _check(key: str, value: Any, **ctx: Any) -> None:
    check_values({key: value}, Context(**ctx))


def _rejected(key: str, value: Any, **ctx: Any) -> str:
    with pytest.raises(BadPost) as err:
        _check(key, value, **ctx)
    assert err.value.field == key
    return err.value.reason


# --- keys and types ----------------------------------------------------------------

@pytest.mark.parametrize("key, expected", [
    ("TEXT", "TEXT"), ("CREATED_TIME", "TIME"), ("HOLIDAY_PHOTO_JPG", "JPG"),
    ("TO_FINGERPRINT", "FINGERPRINT"), ("X_2", "2"), ("MOOD_FEELING", "FEELING"),
])
def test_type_is_the_part_after_the_last_underscore(key: str, expected: str) -> None:
    assert type_of(key) == expected


@pytest.mark.parametrize("key", ["A", "TEXT", "CREATED_TIME", "A1_B2_C3", "9_9"])
def test_good_keys(key: str) -> None:
    validate_attributes({key: "x" if type_of(key) != "TIME" else 1})


@pytest.mark.parametrize("key", ["", "text", "Text", "A__B", "_A", "A_", "A-B", "A B",
                                 "A.B", "É", "A\n", "ＡＢ"])
def test_bad_keys(key: str) -> None:
    with pytest.raises(BadPost) as err:
        validate_attributes({key: "x"})
    assert err.value.reason == Reason.BAD_KEY


# --- values --------------------------------------------------------------------------

GOOD: list[tuple[str, Any]] = [
    ("TEXT", "hello"), ("TEXT", ""), ("A_TEXT", "multi\nline"),
    ("CREATED_TIME", 0), ("EVENT_TIME", -5), ("EVENT_TIME", 253402300799),
    ("EVENT_TIME", -62135596800),
    ("A_URL", "https://example.org/x?y=z#f"), ("A_URL", "http://127.0.0.1:8080/"),
    ("A_URL", "https://[::1]/"),
    ("A_BIN", b64e(b"\x00\x01anything")),
    *((f"M_{name}", b64e(head + b"rest")) for name, head in MAGIC.items()),
    ("TO_FINGERPRINT", FP), ("FINGERPRINT", FP), ("REPLY_POSTSHA", SHA),
    ("NAME_PROFILENAME", "Basant"), ("BIRTHDATE", "2000-02-29"),
    ("WORKPLACE", "Diwan"), ("PHONE", "+20 (100) 000-0000"), ("PHONE", "ext. 5"),
    ("EMAIL", "someone@example.org"), ("ME_PROFILEPICTURE", b64e(MAGIC["PNG"])),
    ("MOOD_FEELING", "happy"), ("COUNT_THING", 3), ("RATIO_THING", 0.5),
    ("FLAG_THING", True),
]


@pytest.mark.parametrize("key, value", GOOD)
def test_valid_values(key: str, value: Any) -> None:
    _check(key, value)


BAD: list[tuple[str, Any, str]] = [
    ("TEXT", 1, Reason.BAD_ATTRIBUTE), ("TEXT", None, Reason.BAD_ATTRIBUTE),
    ("CREATED_TIME", "1700000000", Reason.BAD_ATTRIBUTE),
    ("EVENT_TIME", True, Reason.BAD_ATTRIBUTE), ("EVENT_TIME", 1.5, Reason.BAD_ATTRIBUTE),
    ("EVENT_TIME", 253402300800, Reason.BAD_ATTRIBUTE),
    ("EVENT_TIME", -62135596801, Reason.BAD_ATTRIBUTE),
    ("A_URL", "ftp://example.org/", Reason.BAD_ATTRIBUTE),
    ("A_URL", "javascript:alert(1)", Reason.BAD_ATTRIBUTE),
    ("A_URL", "https:///nohost", Reason.BAD_ATTRIBUTE),
    ("A_URL", "https://exa mple.org/", Reason.BAD_ATTRIBUTE),
    ("A_URL", "https://example.org/\n", Reason.BAD_ATTRIBUTE),
    ("A_URL", "https://[::1/", Reason.BAD_ATTRIBUTE),
    ("A_URL", "https://example.org:99999/", Reason.BAD_ATTRIBUTE),
    ("A_URL", 5, Reason.BAD_ATTRIBUTE),
    ("A_BIN", "", Reason.BAD_MEDIA), ("A_BIN", "AAA=", Reason.BAD_MEDIA),
    ("A_BIN", "AB", Reason.BAD_MEDIA),  # non-canonical: unused bits set
    ("A_BIN", "a+b/", Reason.BAD_MEDIA), ("A_BIN", 12, Reason.BAD_MEDIA),
    ("A_PNG", b64e(MAGIC["JPG"]), Reason.BAD_MEDIA),
    ("A_JPG", b64e(b"not an image at all"), Reason.BAD_MEDIA),
    ("A_MP4", b64e(MAGIC["WEBM"]), Reason.BAD_MEDIA),
    ("A_WAV", b64e(MAGIC["WEBP"]), Reason.BAD_MEDIA),
    ("A_PNG", "", Reason.BAD_MEDIA),
    ("ME_PROFILEPICTURE", b64e(MAGIC["PDF"]), Reason.BAD_MEDIA),
    ("TO_FINGERPRINT", FP.upper(), Reason.BAD_ATTRIBUTE),
    ("TO_FINGERPRINT", FP[:-1], Reason.BAD_ATTRIBUTE),
    ("REPLY_POSTSHA", SHA + "0", Reason.BAD_ATTRIBUTE),
    ("REPLY_POSTSHA", 1, Reason.BAD_ATTRIBUTE),
    ("BIRTHDATE", "2001-02-29", Reason.BAD_ATTRIBUTE),
    ("BIRTHDATE", "2000-1-1", Reason.BAD_ATTRIBUTE),
    ("BIRTHDATE", "2000-13-01", Reason.BAD_ATTRIBUTE),
    ("PHONE", "no digits", Reason.BAD_ATTRIBUTE), ("PHONE", "1" * 65, Reason.BAD_ATTRIBUTE),
    ("PHONE", "12\n34", Reason.BAD_ATTRIBUTE),
    ("EMAIL", "nobody", Reason.BAD_ATTRIBUTE), ("EMAIL", "a b@c", Reason.BAD_ATTRIBUTE),
    ("EMAIL", "a@b@c", Reason.BAD_ATTRIBUTE),
    ("NAME_PROFILENAME", ["x"], Reason.BAD_ATTRIBUTE),
    ("A_POST", "not a post", Reason.BAD_RESHARE),
    ("MOOD_FEELING", None, Reason.BAD_ATTRIBUTE),
    ("MOOD_FEELING", [1], Reason.BAD_ATTRIBUTE),
    ("MOOD_FEELING", {"a": 1}, Reason.BAD_ATTRIBUTE),
]


@pytest.mark.parametrize("key, value, reason", BAD)
def test_invalid_values(key: str, value: Any, reason: str) -> None:
    assert _rejected(key, value) == reason


def test_url_length_limit_at_the_edge() -> None:
    url = "https://example.org/" + "a" * 80
    _check("A_URL", url, max_url_length=len(url))
    assert _rejected("A_URL", url, max_url_length=len(url) - 1) == Reason.BAD_ATTRIBUTE


def test_reshare_depth_is_checked_before_the_nested_post() -> None:
    inner = "eyJ9." + "a" * 64 + "." + "A" * 86
    seen: list[int] = []
    _check("A_POST", inner, depth=3, max_depth=4, verify_nested=lambda r, d: seen.append(d))
    assert seen == [4]
    assert _rejected("A_POST", inner, depth=4, max_depth=4,
                     verify_nested=lambda r, d: seen.append(d)) == Reason.TOO_DEEP
    assert seen == [4]


def test_nested_rejection_becomes_bad_reshare_but_keeps_too_deep_and_blocked() -> None:
    inner = "eyJ9." + "a" * 64 + "." + "A" * 86

    def failing(reason: str) -> Any:
        def verify(raw: str, depth: int) -> None:
            raise BadPost("inner", reason=reason)
        return verify
    for inner_reason, outer in [(Reason.BAD_SIGNATURE, Reason.BAD_RESHARE),
                                (Reason.UNKNOWN_AUTHOR, Reason.BAD_RESHARE),
                                (Reason.TOO_DEEP, Reason.TOO_DEEP),
                                (Reason.BLOCKED, Reason.BLOCKED)]:
        assert _rejected("A_POST", inner, verify_nested=failing(inner_reason)) == outer


# --- media ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, head", MAGIC.items())
def test_magic_bytes(name: str, head: bytes) -> None:
    assert media.detect(head + b"more") == name
    fmt = media.FORMATS[name]
    assert media.kind_of(head) == fmt.kind
    assert attributes.content_type(f"X_{name}", head) == fmt.content_type
    assert attributes.content_type("X_BIN", head) == fmt.content_type


@pytest.mark.parametrize("data", [b"", b"plain text", b"\xff\xd8", b"RIFF\0\0\0\0AVI ",
                                  b"\xff\xf1\x50\x80"])  # AAC ADTS is not MP3
def test_unknown_bytes_are_other(data: bytes) -> None:
    assert media.detect(data) is None
    assert media.kind_of(data) == "other"
    assert attributes.content_type("X_BIN", data) == "application/octet-stream"


@pytest.mark.parametrize("frame", [b"\xff\xfb\x90\x00", b"\xff\xf3\x90\x00", b"\xff\xe3\x90"])
def test_mp3_frame_headers(frame: bytes) -> None:
    assert media.detect(frame) == "MP3"


def test_media_bytes_and_text_content_type() -> None:
    assert attributes.media_bytes("A_PNG", b64e(MAGIC["PNG"])) == MAGIC["PNG"]
    with pytest.raises(BadInput):
        attributes.media_bytes("TEXT", "hello")
    assert attributes.content_type("TEXT", b"x").startswith("text/plain")
    assert attributes.is_media("A_BIN") and attributes.is_media("ME_PROFILEPICTURE")
    assert not attributes.is_media("A_URL")


def test_describe_gives_kind_and_size_not_bytes() -> None:
    view = attributes.describe("A_PNG", b64e(MAGIC["PNG"]))
    assert view == {"type": "PNG", "known": True, "media": "image", "format": "PNG",
                    "content_type": "image/png", "size": len(MAGIC["PNG"])}
    assert attributes.describe("A_BIN", b64e(b"zz"))["media"] == "other"
    assert attributes.describe("MOOD_FEELING", "ok") == {"type": "FEELING", "known": False,
                                                         "value": "ok"}


# --- emoji-only ----------------------------------------------------------------------

@pytest.mark.parametrize("text", ["👍", "❤️", "👍🏽", "👨‍👩‍👧", "🇪🇬", "1️⃣", " 😂 😂 ",
                                  "🎉🎉🎉", "☺", "✔", "⬆️", "🏳️‍🌈", "©"])
def test_emoji_only(text: str) -> None:
    assert attributes.is_emoji_only(text)


@pytest.mark.parametrize("text", ["", "   ", "ok", "👍 nice", "1", "+", "<3", "👍.",
                                  "∑", "°", "ع", "1️"])
def test_not_emoji_only(text: str) -> None:
    assert not attributes.is_emoji_only(text)


# --- the table in docs/protocol.md is this registry ------------------------------

def test_protocol_doc_table_lists_exactly_the_registry() -> None:
    doc = (ROOT / "docs" / "protocol.md").read_text("utf-8")
    section = doc.split("<!-- section:posts -->")[1].split("<!-- /section:posts -->")[0]
    table = section.split("<!-- table:attribute_types -->")[1].split(
        "<!-- /table:attribute_types -->")[0]
    rows = re.findall(r"^\| `([A-Z0-9]+)` \| ([^|]+) \|", table, re.M)
    assert [name for name, _ in rows] == list(TYPES)
    for name, value in rows:
        assert value.strip() == TYPES[name].value, name
    assert attributes.PROFILE_TYPES == {"PROFILENAME", "BIRTHDATE", "WORKPLACE", "PHONE",
                                        "EMAIL", "PROFILEPICTURE"}


# --- dates of times ----------------------------------------------------------------

@pytest.mark.parametrize(("value", "iso"), [
    (0, "1970-01-01T00:00:00Z"),
    (1796022000, "2026-11-30T07:00:00Z"),
    (attributes.TIME_MIN, "0001-01-01T00:00:00Z"),
    (attributes.TIME_MAX, "9999-12-31T23:59:59Z"),
    (-1, "1969-12-31T23:59:59Z"),
    (-59011459200, "0100-01-01T00:00:00Z"),
])
def test_describe_gives_a_time_its_iso_date(value: int, iso: str) -> None:
    assert attributes.describe("CREATED_TIME", value) == {"type": "TIME", "known": True,
                                                          "value": value, "iso": iso}


def test_time_iso_defined_for_every_valid_time_and_no_other() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    @given(st.integers(attributes.TIME_MIN, attributes.TIME_MAX))
    def each(value: int) -> None:
        check_values({"CREATED_TIME": value, "EVENT_TIME": value}, Context())
        iso = attributes.time_iso(value)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", iso)
        assert attributes.describe("EVENT_TIME", value)["iso"] == iso
    each()
    for bad in (attributes.TIME_MIN - 1, attributes.TIME_MAX + 1):
        with pytest.raises(ValueError):
            attributes.time_iso(bad)
    # A value the validator refuses (only seen in an unverified draft) gets no date.
    assert "iso" not in attributes.describe("EVENT_TIME", attributes.TIME_MAX + 1)
    assert "iso" not in attributes.describe("EVENT_TIME", True)
