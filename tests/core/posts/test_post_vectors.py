"""An independent check of the post format: docs/protocol.md against the node.

Posts are built here with plain PyNaCl, base64, hashlib and json, following
the text of docs/protocol.md only (``app.core.posts.codec`` is not imported). The
worked example in the document must be exactly what these libraries make,
the node must accept it, and the tampered variants the issue lists must each
be rejected with nothing written.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import nacl.signing
import pytest

from app.core.base.datadir import DataDir
from app.core.base.errors import BadPost
from app.core.identity.identities import Identities
from app.core.posts.ingest import Ingestor
from app.core.posts.reconcile import verify_file
from tests.helpers.datadirs import make_datadir

ROOT = Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "protocol.md").read_text("utf-8")
VECTORS = json.loads((ROOT / "tests/data/posts/vectors.json").read_text("utf-8"))
_EXAMPLE = re.compile(r"<!-- example:(?P<name>\w+) -->\n```[a-z]*\n(?P<body>.*?)\n```", re.S)
NOW = 1_700_000_000 + 3600
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452")
JPEG = bytes.fromhex("ffd8ffe000104a464946")


def _section() -> str:
    assert DOC.count("<!-- section:posts -->") == 1 == DOC.count("<!-- /section:posts -->")
    return DOC.split("<!-- section:posts -->")[1].split("<!-- /section:posts -->")[0]


EXAMPLES = {m["name"]: m["body"] for m in _EXAMPLE.finditer(_section())}
FIELDS = dict(line.split(None, 1) for line in EXAMPLES["post"].splitlines())


# --- a post made from the text of the specification ------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make(attrs: dict[str, Any] | None = None, *, seed: bytes, payload: bytes | None = None,
         signer: bytes | None = None, context: bytes | None = None) -> bytes:
    """P1.FP.SIG: P1 = base64url(UTF-8 JSON), SIG = Ed25519 over CTX_POST || P1's ASCII bytes."""
    if payload is None:
        payload = json.dumps(attrs, separators=(",", ":"), ensure_ascii=False,
                             sort_keys=True).encode("utf-8")
    p1 = b64url(payload)
    key = nacl.signing.SigningKey(seed)
    fp = hashlib.sha256(bytes(key.verify_key)).hexdigest()
    ctx = CTX_POST if context is None else context
    sig = nacl.signing.SigningKey(signer or seed).sign(ctx + p1.encode("ascii")).signature
    return f"{p1}.{fp}.{b64url(sig)}".encode("ascii")


CTX_POST = bytes.fromhex(EXAMPLES["ctx_post"])
SEED = bytes.fromhex(FIELDS["seed"])
OTHER_SEED = hashlib.sha256(b"someone else").digest()
FP = hashlib.sha256(bytes(nacl.signing.SigningKey(SEED).verify_key)).hexdigest()


def test_the_post_context_is_named_and_nul_terminated() -> None:
    assert CTX_POST == b"diwan/v2/post\x00"
    assert "diwan/v2/post" in _section()


def test_the_documented_example_is_what_plain_libraries_make() -> None:
    attrs = json.loads(FIELDS["JSON"])
    assert attrs == {"CREATED_TIME": 1700000000, "TEXT": "Hello, Diwan! مرحبا 👋"}
    raw = make(attrs, seed=SEED)
    p1, fp, sig = raw.decode().split(".")
    assert base64.urlsafe_b64decode(p1 + "==").decode("utf-8") == FIELDS["JSON"]
    assert (p1, fp, sig) == (FIELDS["P1"], FIELDS["FP"], FIELDS["SIG"])
    assert raw.decode() == EXAMPLES["post_file"] == f"{p1}.{fp}.{sig}"
    assert hashlib.sha1(raw).hexdigest() == FIELDS["SHA1"]
    assert f"posts/{fp}/{FIELDS['SHA1']}" in _section()
    example = VECTORS["posts"][0]
    assert example["name"] == "example" and example["file"].encode() == raw


@pytest.fixture
def node(tmp_path: Path) -> tuple[DataDir, Ingestor]:
    dd = make_datadir(tmp_path / "node")
    ids = Identities(dd)
    ids.import_pub(VECTORS["authors"]["A"]["pub"])  # the document for SEED
    ids.import_pub(VECTORS["authors"]["B"]["pub"])
    assert ids.exists(FP)
    return dd, Ingestor(dd, now=NOW, index=None)


def test_the_node_accepts_the_example_and_stores_it_as_documented(node: Any) -> None:
    dd, ingestor = node
    raw = EXAMPLES["post_file"].encode("ascii")
    result = ingestor.ingest(raw)
    path = dd.root / "posts" / FIELDS["FP"] / FIELDS["SHA1"]
    assert result.new and path.read_bytes() == raw
    assert path.stat().st_mtime == 1700000000
    assert ingestor.ingest(raw).new is False


def test_a_file_dropped_into_place_verifies(node: Any) -> None:
    dd, _ = node
    raw = make({"CREATED_TIME": 1700000500, "TEXT": "dropped in"}, seed=SEED)
    path = dd.root / "posts" / FP / hashlib.sha1(raw).hexdigest()
    path.parent.mkdir(parents=True)
    path.write_bytes(raw)
    post = verify_file(dd, path)
    assert post is not None and post.raw == raw and post.author == FP


def test_every_kind_and_any_json_spelling_is_accepted(node: Any) -> None:
    _, ingestor = node
    other = VECTORS["authors"]["B"]["fingerprint"]
    original = make({"CREATED_TIME": 1700000000, "TEXT": "orig"}, seed=SEED)
    for attrs in ({"CREATED_TIME": 1700000001, "TEXT": "😀", "TO_FINGERPRINT": other,
                   "REPLY_POSTSHA": hashlib.sha1(original).hexdigest()},
                  {"CREATED_TIME": 1700000002, "TEXT": "hi", "TO_FINGERPRINT": other},
                  {"CREATED_TIME": 1700000003, "NAME_PROFILENAME": "A", "PIC_PROFILEPICTURE":
                   b64url(PNG), "BIRTHDATE": "1999-12-31"},
                  {"CREATED_TIME": 1700000004, "SHARED_POST": original.decode(), "TEXT": "!"},
                  {"CREATED_TIME": 1700000005, "A_JPG": b64url(JPEG), "B_BIN": b64url(b"?"),
                   "C_URL": "https://example.org/", "D_SOMETHINGNEW": 42}):
        assert ingestor.ingest(make(attrs, seed=SEED)).new
    spaced = json.dumps({"TEXT": "é", "CREATED_TIME": 1700000006}, indent=2).encode()
    assert ingestor.ingest(make(seed=SEED, payload=spaced)).new


# --- tampered variants: each rejected, nothing written ----------------------------------

def _chain(levels: int) -> bytes:
    raw = make({"CREATED_TIME": 1700000000, "TEXT": "0"}, seed=SEED)
    for i in range(levels):
        raw = make({"CREATED_TIME": 1700000000, "TEXT": str(i + 1),
                    "SHARED_POST": raw.decode()}, seed=SEED)
    return raw


GOOD = {"CREATED_TIME": 1700000000, "TEXT": "fine"}
GOOD_RAW = make(GOOD, seed=SEED)
TAMPERED: dict[str, tuple[bytes, dict[str, Any], str]] = {
    "changed byte": (GOOD_RAW[:10] + bytes([GOOD_RAW[10] ^ 2]) + GOOD_RAW[11:], {},
                     "bad_signature"),
    "wrong SHA name": (GOOD_RAW, {"name": hashlib.sha1(b"other").hexdigest()}, "wrong_name"),
    "wrong directory": (GOOD_RAW, {"author": VECTORS["authors"]["B"]["fingerprint"]},
                        "wrong_author"),
    "signature by another key": (make(GOOD, seed=SEED, signer=OTHER_SEED), {},
                                 "bad_signature"),
    # what a raw signing oracle gave out for a 'challenge' that was a P1 (the old format)
    "signature of P1 with no context": (make(GOOD, seed=SEED, context=b""), {},
                                        "bad_signature"),
    "signature of P1 under the user-signature context": (
        make(GOOD, seed=SEED, context=b"diwan/v2/user-signature\x00"), {}, "bad_signature"),
    "unknown type with a bad key name": (make({**GOOD, "Mood_FEELING": "x"}, seed=SEED), {},
                                         "bad_key"),
    "oversize": (make({**GOOD, "TEXT": "x" * (8 * 1024 * 1024)}, seed=SEED), {}, "too_large"),
    "future time": (make({**GOOD, "CREATED_TIME": NOW + 301}, seed=SEED), {}, "future_time"),
    "bad base64": (GOOD_RAW.replace(b".", b"=.", 1), {}, "bad_base64"),
    "bad magic bytes": (make({**GOOD, "A_PNG": b64url(JPEG)}, seed=SEED), {}, "bad_media"),
    "nested reshare with a bad signature": (
        make({**GOOD, "SHARED_POST": make(GOOD, seed=SEED, signer=OTHER_SEED).decode()},
             seed=SEED), {}, "bad_reshare"),
    "deep nesting": (_chain(5), {}, "too_deep"),
}


@pytest.mark.parametrize("case", TAMPERED, ids=str)
def test_tampered_variants_are_rejected_with_nothing_written(node: Any, case: str) -> None:
    dd, ingestor = node
    raw, kw, reason = TAMPERED[case]
    with pytest.raises(BadPost) as err:
        ingestor.ingest(raw, **kw)
    assert err.value.reason == reason
    assert list((dd.root / "posts").rglob("*")) == []
    assert ingestor.ingest(GOOD_RAW).new  # while the untampered post is fine
