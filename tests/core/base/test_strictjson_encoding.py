"""The strict JSON parser and the base64url decoder keep their exact outcomes when made
faster (issue 14, CPU per post): each is compared with the plain reference it replaced,
on edge cases and on random inputs (accept/reject, the value, the message)."""

from __future__ import annotations

import base64
import binascii
import json
import random
import re

import pytest

from app.core.base import strictjson
from app.core.base.encoding import b64d, b64e
from app.core.base.errors import BadInput

# --- the references: the code before the speed-up ------------------------------------

_RE = re.compile(r"[A-Za-z0-9_-]*")
_VALUE = {c: i for i, c in enumerate(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}


def ref_b64d(text: str | bytes, length: int | None = None) -> bytes:
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise BadInput("value is not base64url") from None
    if not _RE.fullmatch(text) or len(text) % 4 == 1:
        raise BadInput("value is not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise BadInput("value is not unpadded base64url") from None
    spare = {2: 0x0F, 3: 0x03}.get(len(text) % 4)
    if spare is not None and _VALUE[text[-1]] & spare:
        raise BadInput("value is not canonical base64url")
    if length is not None and len(data) != length:
        raise BadInput(f"value must be {length} bytes, not {len(data)}")
    return data


def ref_loads(data: bytes) -> object:
    raw = bytes(data)
    if raw.count(b"[") + raw.count(b"{") > 32 and strictjson.depth(raw) > 32:
        raise strictjson.BadJson("JSON nests deeper than 32 levels")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise strictjson.BadJson("JSON must be UTF-8") from None
    try:
        return json.loads(text, object_pairs_hook=strictjson._no_duplicates,
                          parse_constant=strictjson._no_constant, parse_int=strictjson._int,
                          parse_float=strictjson._float)
    except (ValueError, RecursionError) as exc:
        raise strictjson.BadJson(f"JSON is not valid JSON: {str(exc)[:200]}") from None


def outcome(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return ("ok", fn(*args))
    except BadInput as exc:
        return ("bad", exc.message)


# --- base64url ----------------------------------------------------------------------

B64_CASES = ["", "A", "AA", "AB", "AAA", "AAB", "AAAA", "QQ", "QR", "QUI", "QUJ", "_-_-",
             "ab+/", "ab==", "aGk", "aGk=", "a b", "a\nb", "é", "aé", "AAAA\n", " AAAA",
             "////", "----", "Zm9vYmFy", "Zm9vYmE", "Zm9vYg", "Zm9vYh", "\x00\x00"]


@pytest.mark.parametrize("text", B64_CASES)
def test_b64d_same_outcome_as_the_reference(text: str) -> None:
    assert outcome(b64d, text) == outcome(ref_b64d, text)
    if text.isascii():
        assert outcome(b64d, text.encode("ascii")) == outcome(ref_b64d, text.encode("ascii"))


def test_b64d_non_ascii_bytes_and_length() -> None:
    assert outcome(b64d, "é".encode()) == ("bad", "value is not base64url")
    assert outcome(ref_b64d, "é".encode()) == ("bad", "value is not base64url")
    sig = b64e(bytes(range(64)))
    assert b64d(sig, length=64) == bytes(range(64))
    assert outcome(lambda t: b64d(t, length=63), sig) == outcome(ref_b64d, sig, 63)


def test_b64d_random_inputs_match_the_reference() -> None:
    rng = random.Random(14)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= .\n"
    for _ in range(4000):
        text = "".join(rng.choice(alphabet[:64] if rng.random() < 0.7 else alphabet)
                       for _ in range(rng.randrange(0, 12)))
        assert outcome(b64d, text) == outcome(ref_b64d, text), text
        assert outcome(b64d, text.encode()) == outcome(ref_b64d, text.encode()), text
    for _ in range(500):  # every canonical encoding decodes back
        data = rng.randbytes(rng.randrange(0, 40))
        assert b64d(b64e(data)) == data


# --- strict JSON --------------------------------------------------------------------

JSON_CASES = [b'{"a":1}', b'{"a":1,"a":2}', b'{"a":{"b":1,"b":1}}', b'[NaN]', b'[Infinity]',
              b'[-Infinity]', b'[1e400]', b'[-1e400]', b'[9007199254740991]',
              b'[9007199254740992]', b'[-9007199254740992]', b'[1' + b'0' * 5000 + b']',
              b'[1.5]', b'"x"', b'', b'  ', b'{"a":1} x', b'\xef\xbb\xbf{"a":1}',
              b'\xff', b'{"a":"\\ud800"}', b'[' * 33 + b']' * 33, b'[' * 32 + b']' * 32,
              b'{"a":[1,2,{"b":null}],"c":true}', b'{"a":1,}', b"{'a':1}", b'[01]',
              b'["\\u00e9"]', b'{"CREATED_TIME":1700000000,"TEXT":"hi"}']


@pytest.mark.parametrize("data", JSON_CASES)
def test_loads_same_outcome_as_the_reference(data: bytes) -> None:
    assert outcome(strictjson.loads, data) == outcome(ref_loads, data)


def test_loads_rules_still_hold() -> None:
    for bad in (b'{"a":1,"a":2}', b'[NaN]', b'[1e400]', b'[9007199254740992]',
                b'[' * 33 + b']' * 33, b'\xef\xbb\xbf{}'):
        with pytest.raises(strictjson.BadJson):
            strictjson.loads(bad)
    assert strictjson.loads('{"a":[9007199254740991,-1.5]}') == {"a": [9007199254740991, -1.5]}


def test_loads_random_documents_match_the_reference() -> None:
    rng = random.Random(14)
    pieces = [b'{', b'}', b'[', b']', b'"k"', b'"j"', b':', b',', b'1', b'-2', b'3.5',
              b'1e999', b'9007199254740993', b'true', b'null', b'NaN', b' ']
    for _ in range(3000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randrange(1, 14)))
        assert outcome(strictjson.loads, data) == outcome(ref_loads, data), data
