"""app/core/posts.py: the post codec, against known-answer vectors and for all inputs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.base import crypto
from app.core.base.encoding import b64e
from app.core.base.errors import BadInput, BadPost, Reason
from app.core.identity import keys
from app.core.posts import codec as posts
from app.core.posts.ingest import Ingestor
from tests.helpers.datadirs import make_datadir

DATA = Path(__file__).resolve().parents[2] / "data" / "posts"
VECTORS = json.loads((DATA / "vectors.json").read_text("utf-8"))
AUTHORS = VECTORS["authors"]
BY_NAME = {v["name"]: v for v in VECTORS["posts"]}
SEED_A = bytes.fromhex(AUTHORS["A"]["seed"])
FP_A = AUTHORS["A"]["fingerprint"]
MAX = 8 * 1024 * 1024
T0 = 1_700_000_000


def _signed(seed: bytes, payload: bytes) -> bytes:
    """A post file around any payload bytes (for shapes build_post refuses to make)."""
    p1 = b64e(payload)
    sig = b64e(crypto.sign(seed, crypto.CTX_POST, p1.encode()))
    return f"{p1}.{crypto.fingerprint(crypto.signing_public(seed))}.{sig}".encode()


# --- known answers --------------------------------------------------------------------

@pytest.mark.parametrize("vector", VECTORS["posts"], ids=lambda v: v["name"])
def test_build_post_makes_the_known_bytes(vector: dict[str, Any]) -> None:
    seed = bytes.fromhex(AUTHORS[vector["author"]]["seed"])
    raw = posts.build_post(seed, vector["attributes"])
    assert raw == vector["file"].encode("ascii")
    assert hashlib.sha1(raw).hexdigest() == vector["sha1"]
    assert raw.split(b".")[0].decode() == vector["p1"]
    assert posts.encode_payload(vector["attributes"]) == vector["json"].encode("utf-8")


@pytest.mark.parametrize("vector", VECTORS["posts"], ids=lambda v: v["name"])
def test_decode_post_reads_the_known_bytes(vector: dict[str, Any]) -> None:
    post = posts.decode_post(vector["file"].encode(), max_bytes=MAX)
    assert post.attributes == vector["attributes"]
    assert post.sha1 == vector["sha1"]
    assert post.author == AUTHORS[vector["author"]]["fingerprint"] == vector["fp"]
    assert post.p1 == vector["p1"] and b64e(post.signature) == vector["sig"]
    assert post.created == vector["attributes"]["CREATED_TIME"]
    assert post.kind == vector["kind"]
    assert post.is_reaction is vector["is_reaction"]


def test_vector_meanings() -> None:
    comment = posts.decode_post(BY_NAME["comment_reaction"]["file"].encode(), max_bytes=MAX)
    assert comment.recipients == {FP_A}
    assert comment.replies_to == (BY_NAME["example"]["sha1"],)
    message = posts.decode_post(BY_NAME["message"]["file"].encode(), max_bytes=MAX)
    assert message.recipients == {AUTHORS["B"]["fingerprint"]} and message.replies_to == ()
    reshare = posts.decode_post(BY_NAME["reshare"]["file"].encode(), max_bytes=MAX)
    assert reshare.reshared == BY_NAME["example"]["file"]
    assert posts.decode_post(BY_NAME["example"]["file"].encode(), max_bytes=MAX).reshared is None


def test_every_vector_is_accepted_by_ingest(tmp_path: Path) -> None:
    dd = make_datadir(tmp_path)
    ingestor = Ingestor(dd, index=_NoIndex(), now=T0 + 3600)
    for author in AUTHORS.values():
        ingestor.identities.import_pub(author["pub"])
    for vector in VECTORS["posts"]:
        result = ingestor.ingest(vector["file"].encode())
        assert result.new and result.sha1 == vector["sha1"]
        path = dd.posts / vector["fp"] / vector["sha1"]
        assert path.read_bytes() == vector["file"].encode()
        assert path.stat().st_mtime == vector["attributes"]["CREATED_TIME"]


class _NoIndex:
    def add_many(self, items: Any) -> int:
        return 0


# --- round trips ----------------------------------------------------------------------

_NAME = st.from_regex(r"[A-Z0-9]{1,5}(_[A-Z0-9]{1,5}){0,2}", fullmatch=True)
_TYPED_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "TEXT": st.text(max_size=40),
    "TIME": st.integers(min_value=-62135596800, max_value=253402300799),  # years 1-9999
    "FINGERPRINT": st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
    "POSTSHA": st.from_regex(r"[0-9a-f]{40}", fullmatch=True),
    "BIN": st.binary(min_size=1, max_size=40).map(b64e),
    "FEELING": st.one_of(st.text(max_size=20), st.booleans(),
                         st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1),
                         st.floats(allow_nan=False, allow_infinity=False)),
}


@st.composite
def _attributes(draw: st.DrawFn) -> dict[str, Any]:
    attrs: dict[str, Any] = {"CREATED_TIME": draw(st.integers(0, T0))}
    for _ in range(draw(st.integers(0, 6))):
        attr_type = draw(st.sampled_from(sorted(_TYPED_VALUES)))
        attrs[f"{draw(_NAME)}_{attr_type}"] = draw(_TYPED_VALUES[attr_type])
    return attrs


@settings(max_examples=150, deadline=None)
@given(attrs=_attributes())
def test_codec_round_trip(attrs: dict[str, Any]) -> None:
    raw = posts.build_post(SEED_A, attrs)
    post = posts.decode_post(raw, max_bytes=MAX)
    assert post.attributes == attrs
    assert post.author == FP_A and post.sha1 == hashlib.sha1(raw).hexdigest()
    assert crypto.verify(crypto.signing_public(SEED_A), crypto.CTX_POST, post.p1.encode(),
                         post.signature)
    # compact, sorted, UTF-8: what was built re-encodes to the same P1
    assert posts.encode_payload(post.attributes) == posts.split_post(raw, max_bytes=MAX).payload
    assert raw.isascii() and not raw.endswith(b"\n")


@settings(max_examples=50, deadline=None)
@given(attrs=_attributes(), indent=st.sampled_from([None, 1, 4]))
def test_any_json_encoding_of_an_object_is_accepted_as_sent(attrs: dict[str, Any],
                                                            indent: int | None) -> None:
    payload = json.dumps(dict(reversed(list(attrs.items()))), indent=indent,
                         ensure_ascii=True).encode()
    raw = _signed(SEED_A, payload)
    post = posts.decode_post(raw, max_bytes=MAX)
    assert post.attributes == attrs and post.raw == raw  # kept exactly as received


# --- building -------------------------------------------------------------------------

def test_build_post_encodes_bytes_and_sorts_compactly() -> None:
    raw = posts.build_post(SEED_A, {"TEXT": "é", "CREATED_TIME": 5, "A_BIN": b"\x00\xff"})
    payload = posts.split_post(raw, max_bytes=MAX).payload
    assert payload == '{"A_BIN":"AP8","CREATED_TIME":5,"TEXT":"é"}'.encode()


@pytest.mark.parametrize("attrs, reason", [
    ({"TEXT": "no time"}, Reason.NO_CREATED_TIME),
    ({"CREATED_TIME": True}, Reason.NO_CREATED_TIME),
    ({"CREATED_TIME": -1}, Reason.NO_CREATED_TIME),
    ({"CREATED_TIME": 1, "lower": "x"}, Reason.BAD_KEY),
    ({"CREATED_TIME": 1, 5: "x"}, Reason.BAD_KEY),
])
def test_build_post_refuses_bad_attributes(attrs: dict[Any, Any], reason: str) -> None:
    with pytest.raises(BadPost) as err:
        posts.build_post(SEED_A, attrs)
    assert err.value.reason == reason


@pytest.mark.parametrize("value", ["\ud800", float("nan"), object()])
def test_build_post_refuses_what_json_cannot_carry(value: Any) -> None:
    with pytest.raises(BadInput):
        posts.build_post(SEED_A, {"CREATED_TIME": 1, "X_FEELING": value})


# --- decoding: structure only ------------------------------------------------------

@pytest.mark.parametrize("payload, reason", [
    (b'{"CREATED_TIME":1,"CREATED_TIME":2}', Reason.BAD_JSON),
    (b'[1,2]', Reason.BAD_JSON),
    (b'{"CREATED_TIME":NaN}', Reason.BAD_JSON),
    (b'{"CREATED_TIME":1,"X_FEELING":Infinity}', Reason.BAD_JSON),
    (b'{"CREATED_TIME":1,"TEXT":"\\ud800"}', Reason.BAD_JSON),
    (b'{"CREATED_TIME":1,"TEXT":"\xff"}', Reason.BAD_JSON),
    (b'\xef\xbb\xbf{"CREATED_TIME":1}', Reason.BAD_JSON),
    (b'{"CREATED_TIME":1', Reason.BAD_JSON),
    (b'[' * 100000, Reason.BAD_JSON),
    (b'{"CREATED_TIME":1,"X_FEELING":' + b"9" * 5000 + b"}", Reason.BAD_JSON),
    (b'{"CREATED_TIME":1,"bad":1}', Reason.BAD_KEY),
    (b'{"TEXT":"x"}', Reason.NO_CREATED_TIME),
    (b'{"CREATED_TIME":1.0}', Reason.NO_CREATED_TIME),
    (b'{"CREATED_TIME":"1"}', Reason.NO_CREATED_TIME),
])
def test_decode_post_rejects_payloads(payload: bytes, reason: str) -> None:
    with pytest.raises(BadPost) as err:
        posts.decode_post(_signed(SEED_A, payload), max_bytes=MAX)
    assert err.value.reason == reason


def test_decode_post_accepts_escaped_surrogate_pairs() -> None:
    post = posts.decode_post(_signed(SEED_A, b'{"CREATED_TIME":1,"TEXT":"\\ud83d\\udc4d"}'),
                             max_bytes=MAX)
    assert post.attributes["TEXT"] == "👍"


GOOD = BY_NAME["example"]["file"]
P1, FP, SIG = GOOD.split(".")


@pytest.mark.parametrize("raw, reason", [
    (GOOD + "\n", Reason.MALFORMED),
    (GOOD + ".x", Reason.MALFORMED),
    (f"{P1}.{FP}", Reason.MALFORMED),
    (f"{P1}.{FP.upper()}.{SIG}", Reason.MALFORMED),
    (f"{P1}.{FP[:-1]}.{SIG}", Reason.MALFORMED),
    (f"{P1}.{FP}a.{SIG}", Reason.MALFORMED),
    (f"{P1}.{FP[:-1]}g.{SIG}", Reason.MALFORMED),
    (f"{P1}.{FP[:-1]}A.{SIG}", Reason.MALFORMED),
    (f"{P1}.{FP[:-1]} .{SIG}", Reason.MALFORMED),
    (f"{P1}..{SIG}", Reason.MALFORMED),
    (GOOD.replace(".", "\u00b7", 1), Reason.MALFORMED),
    (f".{FP}.{SIG}", Reason.BAD_BASE64),
    (f"{P1}=.{FP}.{SIG}", Reason.BAD_BASE64),
    (f"{P1}.{FP}.{SIG}==", Reason.BAD_BASE64),
    (f"{P1}.{FP}.{SIG[:-1]}", Reason.BAD_BASE64),
    (f"{P1}.{FP}.{SIG[:-1]}B", Reason.BAD_BASE64),  # unused low bits set: not canonical
    (f"{P1.replace('-', '+')}.{FP}.{SIG}", Reason.BAD_BASE64),
])
def test_decode_post_rejects_structure(raw: str, reason: str) -> None:
    with pytest.raises(BadPost) as err:
        posts.decode_post(raw.encode("utf-8"), max_bytes=MAX)
    assert err.value.reason == reason


def test_size_cap_at_the_edge() -> None:
    raw = GOOD.encode()
    assert posts.decode_post(raw, max_bytes=len(raw)).sha1 == BY_NAME["example"]["sha1"]
    with pytest.raises(BadPost) as err:
        posts.decode_post(raw, max_bytes=len(raw) - 1)
    assert err.value.reason == Reason.TOO_LARGE


# --- meanings -------------------------------------------------------------------------

def _post(**attrs: Any) -> posts.Post:
    return posts.decode_post(posts.build_post(SEED_A, {"CREATED_TIME": T0, **attrs}),
                             max_bytes=MAX)


FP_B, SHA = "b" * 64, "c" * 40


@pytest.mark.parametrize("attrs, kind", [
    ({"TEXT": "hi"}, "post"),
    ({"TEXT": "hi", "SHARED_POST": GOOD}, "post"),
    ({"TO_FINGERPRINT": FP_B, "TEXT": "psst"}, "message"),
    ({"TO_FINGERPRINT": FP_B, "CC_FINGERPRINT": "d" * 64}, "message"),
    ({"TO_FINGERPRINT": FP_B, "REPLY_POSTSHA": SHA}, "comment"),
    ({"REPLY_POSTSHA": SHA}, "comment"),
    ({"NAME_PROFILENAME": "A"}, "profile"),
    ({"NAME_PROFILENAME": "A", "TO_FINGERPRINT": FP_B, "REPLY_POSTSHA": SHA}, "profile"),
])
def test_kind(attrs: dict[str, Any], kind: str) -> None:
    assert _post(**attrs).kind == kind


def test_recipients_and_replies() -> None:
    post = _post(TO_FINGERPRINT=FP_B, CC_FINGERPRINT="d" * 64, REPLY_POSTSHA=SHA,
                 ALSO_POSTSHA="e" * 40)
    assert post.recipients == {FP_B, "d" * 64}
    assert post.replies_to == ("e" * 40, SHA)  # key order


@pytest.mark.parametrize("attrs, reaction", [
    ({"TEXT": "❤️", "TO_FINGERPRINT": FP_B, "REPLY_POSTSHA": SHA}, True),
    ({"TEXT": " 👍🏽 ", "REPLY_POSTSHA": SHA}, True),
    ({"TEXT": "❤️ thanks", "TO_FINGERPRINT": FP_B, "REPLY_POSTSHA": SHA}, False),
    ({"TEXT": "❤️", "TO_FINGERPRINT": FP_B}, False),  # a message, not a comment
    ({"TEXT": "❤️"}, False),
    ({"TEXT": "❤️", "REPLY_POSTSHA": SHA, "PIC_BIN": b"x"}, False),
    ({"TEXT": "❤️", "REPLY_POSTSHA": SHA, "MORE_TEXT": "words"}, False),
    ({"REPLY_POSTSHA": SHA, "A_TEXT": "❤️"}, False),  # only the body counts
])
def test_is_reaction(attrs: dict[str, Any], reaction: bool) -> None:
    assert _post(**attrs).is_reaction is reaction


def test_decoded_view_is_json_and_hides_bytes() -> None:
    reshare = posts.decode_post(BY_NAME["reshare"]["file"].encode(), max_bytes=MAX)
    view = posts.decoded_view(reshare)
    json.dumps(view)
    inner = view["attributes"]["SHARED_POST"]
    assert inner["type"] == "POST" and "value" not in inner
    assert inner["post"]["sha1"] == BY_NAME["example"]["sha1"]
    assert inner["post"]["attributes"]["TEXT"]["value"] == "Hello, Diwan! مرحبا 👋"
    assert view["kind"] == "post" and view["reshared"] is True and view["public"] is True
    media = posts.decoded_view(posts.decode_post(BY_NAME["media"]["file"].encode(),
                                                 max_bytes=MAX))
    photo = media["attributes"]["PHOTO_PNG"]
    assert photo["media"] == "image" and photo["content_type"] == "image/png"
    assert "value" not in photo and photo["size"] > 0
    assert media["attributes"]["DOC_BIN"]["media"] == "pdf"
    assert media["attributes"]["MOOD_FEELING"] == {"type": "FEELING", "known": False,
                                                   "value": "curious"}


def test_vector_pub_documents_verify() -> None:
    for author in AUTHORS.values():
        assert keys.parse_pub(author["pub"]).fingerprint == author["fingerprint"]
