"""The feed exchange (app/core/exchange.py, feeds.py): every property of issue 4 attacked.

1 confidentiality and asker anonymity, 2 mutual authentication, 3 replay and
tampering, 4 forward secrecy for the asker, plus the strict framing and JSON,
the response size bound, serving (who gets what) and the sample exchange of
docs/protocol.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import pytest

from app.core.base import crypto
from app.core.base.datadir import DataDir
from app.core.base.encoding import b64e
from app.core.base.errors import (
    BadFingerprint,
    BadInput,
    BadKeyDocument,
    BadName,
    BadRequestEnvelope,
    BadResponse,
    CannotDecrypt,
    NotFound,
    Replay,
    TooLarge,
    UnusableKey,
)
from app.core.identity import keys
from app.core.identity.identities import Identities
from app.core.network import exchange
from app.core.network.exchange import PendingRequest
from app.core.network.feeds import get_share_comments_group, serve_feed, set_share_comments_group
from app.core.network.nonces import NonceStore
from app.core.posts.codec import build_post, decode_post
from app.core.posts.ingest import Ingestor
from tests.helpers.datadirs import PASSWORD, make_datadir
from tests.helpers.strangers import Stranger, new_stranger

ROOT = Path(__file__).resolve().parents[3]
NOW = 1_700_000_000
WINDOW = 300


ASKER, OWNER, MALLORY = new_stranger(), new_stranger(), new_stranger()


def request(asker: Stranger = ASKER, owner: Stranger = OWNER, *, now: int = NOW, limit: int = 10,
            after_time: int = 0, after_sha: str | None = None) -> tuple[bytes, PendingRequest]:
    return exchange.build_request(asker=asker.own, owner_fp=owner.fp, owner_key=owner.key,
                                  after_time=after_time, after_sha=after_sha, limit=limit,
                                  now=now)


def open_req(body: bytes, owner: Stranger = OWNER, *, now: int = NOW,
             max_limit: int = 500) -> exchange.FeedRequest:
    return exchange.open_request(body, owner_fp=owner.fp,
                                 owner_transport_secret=owner.own.transport_secret, now=now,
                                 window=WINDOW, max_limit=max_limit)


def crafted(*, pub: bytes = ASKER.own.pub_document, inner_plain: bytes | None = None,
            inner_secret: bytes = ASKER.own.transport_secret, owner: Stranger = OWNER,
            outer_ephemeral: bytes | None = None, inner_fields: dict[str, Any] | None = None,
            ephemeral_secret: bytes | None = None) -> bytes:
    """A request made by hand, to attack one check at a time."""
    eph = crypto.transport_public(ephemeral_secret or crypto.new_transport_secret())
    fields: dict[str, Any] = {"v": 1, "type": "feed-request", "asker": ASKER.fp,
                              "owner": owner.fp, "after_time": 0, "after_sha": None,
                              "limit": 10, "nonce": b64e(bytes(24)), "time": NOW,
                              "ephemeral": b64e(eph)}
    fields.update(inner_fields or {})
    plain = inner_plain if inner_plain is not None else json.dumps(fields).encode()
    inner = crypto.box_encrypt(inner_secret, owner.key.transport_public, plain)
    frame = exchange.frame_request(pub, outer_ephemeral or eph, inner)
    return crypto.seal(owner.key.transport_public, frame)


def respond(req: exchange.FeedRequest, posts: list[bytes] | None = None, more: bool = False,
            owner: Stranger = OWNER) -> bytes:
    return exchange.seal_response(req, owner_transport_secret=owner.own.transport_secret,
                                  posts=posts or [], more=more)


# --- round trip ---------------------------------------------------------------------------

def test_round_trip_carries_every_field() -> None:
    body, pending = request(limit=7, after_time=123, after_sha="ab" * 20)
    req = open_req(body)
    assert (req.asker_fp, req.owner_fp, req.after_time, req.after_sha, req.limit, req.time) == (
        ASKER.fp, OWNER.fp, 123, "ab" * 20, 7, NOW)
    assert req.asker_key == ASKER.key and req.nonce == pending.nonce
    assert req.ephemeral_public == crypto.transport_public(pending.ephemeral_secret)
    posts = [b"post-one", "بوست".encode()]
    got = exchange.open_response(respond(req, posts, True), pending, max_bytes=10**6)
    assert got == exchange.FeedResponse(posts, True)


def test_secrets_are_not_in_reprs() -> None:
    _, pending = request()
    assert pending.ephemeral_secret.hex() not in repr(pending)
    assert ASKER.own.transport_secret.hex() not in repr(ASKER.own)


def test_build_request_refuses_mismatched_keys() -> None:
    with pytest.raises(BadInput):
        exchange.build_request(asker=ASKER.own, owner_fp=MALLORY.fp, owner_key=OWNER.key,
                               after_time=0, after_sha=None, limit=1, now=NOW)
    wrong = dataclasses.replace(ASKER.own, transport_secret=MALLORY.own.transport_secret)
    with pytest.raises(BadInput):
        exchange.build_request(asker=wrong, owner_fp=OWNER.fp, owner_key=OWNER.key,
                               after_time=0, after_sha=None, limit=1, now=NOW)
    for bad in ({"limit": 0}, {"after_time": -1}, {"after_sha": "XYZ"}, {"now": 2**53}):
        with pytest.raises(BadInput):
            request(**bad)


def test_a_hostile_owner_key_of_small_order_is_refused_cleanly() -> None:
    # built directly: a document with such a key no longer parses (nor certifies)
    forged = keys.PublicKey(MALLORY.key.sign,
                            (keys.DeviceCert(MALLORY.key.devices[0].device_id, 1, bytes(32)),),
                            MALLORY.key.certificates)
    with pytest.raises(UnusableKey):
        exchange.build_request(asker=ASKER.own, owner_fp=MALLORY.fp, owner_key=forged,
                               after_time=0, after_sha=None, limit=1, now=NOW)


# --- 1. an eavesdropper learns nothing but sizes --------------------------------------------

def test_request_bytes_hide_the_asker_and_everything_else() -> None:
    body, pending = request(after_sha="cd" * 20)
    secrets = [ASKER.fp.encode(), bytes.fromhex(ASKER.fp), ASKER.own.pub_document,
               ASKER.key.sign, ASKER.key.transport_public, b64e(ASKER.key.sign).encode(),
               b64e(ASKER.key.transport_public).encode(), pending.nonce,
               b64e(pending.nonce).encode(),
               crypto.transport_public(pending.ephemeral_secret), OWNER.fp.encode(),
               b"cd" * 20, b"feed-request"]
    for secret in secrets:
        assert secret not in body


def test_request_size_does_not_depend_on_who_asks() -> None:
    assert len(request(ASKER)[0]) == len(request(MALLORY)[0]) == len(request(ASKER)[0])


def test_response_bytes_hide_posts_nonce_and_owner() -> None:
    body, pending = request()
    sealed = respond(open_req(body), [b"a secret post text"], True)
    for secret in (b"a secret post text", pending.nonce, b64e(pending.nonce).encode(),
                   OWNER.fp.encode(), b"feed-response"):
        assert secret not in sealed


def test_nothing_opens_without_the_right_keys() -> None:
    body, pending = request()
    sealed = respond(open_req(body))
    for secret in (ASKER.own.transport_secret, MALLORY.own.transport_secret):
        with pytest.raises(CannotDecrypt):
            crypto.unseal(secret, body)
        for their in (OWNER.key.transport_public, ASKER.key.transport_public,
                      crypto.transport_public(pending.ephemeral_secret)):
            with pytest.raises(CannotDecrypt):
                crypto.box_decrypt(secret, their, sealed)
    with pytest.raises(CannotDecrypt):
        open_req(body, MALLORY)


# --- 2. both sides are authenticated -----------------------------------------------------

def test_inner_box_from_a_transport_key_not_certified_for_the_asker_is_refused() -> None:
    body = crafted(inner_secret=MALLORY.own.transport_secret)
    with pytest.raises(CannotDecrypt) as err:
        open_req(body)
    assert err.value.field == "request"


def test_pub_whose_certificate_fails_is_refused() -> None:
    device = ASKER.key.devices[0]
    forged = keys.PublicKey(ASKER.key.sign, (keys.DeviceCert(
        device.device_id, device.serial, MALLORY.key.transport_public),), ASKER.key.certificates)
    body = crafted(pub=forged.to_bytes(), inner_secret=MALLORY.own.transport_secret)
    with pytest.raises(BadKeyDocument):
        open_req(body)


def test_claiming_another_asker_with_own_valid_key_is_refused() -> None:
    body = crafted(pub=MALLORY.own.pub_document, inner_secret=MALLORY.own.transport_secret)
    with pytest.raises(BadRequestEnvelope) as err:
        open_req(body)
    assert err.value.field == "asker"


def test_swapped_ephemeral_key_is_refused() -> None:
    body = crafted(outer_ephemeral=crypto.transport_public(crypto.new_transport_secret()))
    with pytest.raises(BadRequestEnvelope) as err:
        open_req(body)
    assert err.value.field == "ephemeral"


def test_request_for_another_owner_is_refused() -> None:
    body = crafted(inner_fields={"owner": MALLORY.fp})
    with pytest.raises(BadRequestEnvelope) as err:
        open_req(body)
    assert err.value.field == "owner"


def test_small_order_ephemeral_key_is_refused_as_bad_input() -> None:
    zero = b64e(bytes(32))
    body = crafted(outer_ephemeral=bytes(32), inner_fields={"ephemeral": zero})
    with pytest.raises(UnusableKey):
        open_req(body)


def test_response_sealed_by_another_transport_key_does_not_open() -> None:
    body, pending = request()
    forged = respond(open_req(body), [b"fake"], owner=MALLORY)
    with pytest.raises(BadResponse):
        exchange.open_response(forged, pending, max_bytes=10**6)


# --- 3. replay and tampering ------------------------------------------------------------------

@pytest.mark.parametrize("skew", [0, WINDOW, -WINDOW])
def test_time_at_the_window_edges_is_accepted(skew: int) -> None:
    body, _ = request(now=NOW)
    assert open_req(body, now=NOW + skew).time == NOW


@pytest.mark.parametrize("skew", [WINDOW + 1, -WINDOW - 1, 10**6])
def test_time_outside_the_window_is_refused(skew: int) -> None:
    body, _ = request(now=NOW)
    with pytest.raises(Replay):
        open_req(body, now=NOW + skew)


def test_response_with_another_nonce_is_refused() -> None:
    body, pending = request()
    req = dataclasses.replace(open_req(body), nonce=crypto.random_bytes(24))
    with pytest.raises(BadResponse, match="nonce"):
        exchange.open_response(respond(req), pending, max_bytes=10**6)


def test_response_naming_another_owner_is_refused() -> None:
    body, pending = request()
    req = dataclasses.replace(open_req(body), owner_fp=MALLORY.fp)
    with pytest.raises(BadResponse, match="owner"):
        exchange.open_response(respond(req), pending, max_bytes=10**6)


def test_response_with_more_posts_than_asked_is_refused() -> None:
    body, pending = request(limit=2)
    with pytest.raises(BadResponse):
        exchange.open_response(respond(open_req(body), [b"1", b"2", b"3"]), pending,
                               max_bytes=10**6)


@pytest.mark.parametrize("plain", [
    b"[" * 100_000 + b"]" * 100_000,   # a hostile owner's JSON bomb: no RecursionError
    b'{"v":1,"v":1}', b"\xff", b"null",
    b'{"more":false,"nonce":"x","owner":"y","posts":"not a list","type":"feed-response","v":1}',
    "surrogate",
])
def test_malformed_response_plaintext_is_refused(plain: bytes | str) -> None:
    _, pending = request()
    if plain == "surrogate":  # valid JSON, the right owner and nonce, but a lone surrogate
        plain = exchange.encode_response(owner_fp=OWNER.fp, nonce=pending.nonce,
                                         posts=["ok"], more=False).replace(b'"ok"', b'"\\ud800"')
        assert isinstance(plain, bytes)
    sealed = crypto.box_encrypt(OWNER.own.transport_secret,
                                crypto.transport_public(pending.ephemeral_secret), plain)
    with pytest.raises(BadResponse):
        exchange.open_response(sealed, pending, max_bytes=10**7)


def test_response_over_max_bytes_is_refused_at_the_edge() -> None:
    body, pending = request()
    sealed = respond(open_req(body), [b"x" * 100])
    assert exchange.open_response(sealed, pending, max_bytes=len(sealed)).posts == [b"x" * 100]
    with pytest.raises(BadResponse):
        exchange.open_response(sealed, pending, max_bytes=len(sealed) - 1)


def test_every_flipped_request_byte_fails_cleanly() -> None:
    body, _ = request()
    for i in range(len(body)):
        flipped = bytearray(body)
        flipped[i] ^= 0x01
        with pytest.raises(BadInput):
            open_req(bytes(flipped))


def test_every_truncation_of_a_request_fails_cleanly() -> None:
    body, _ = request()
    for n in range(len(body)):
        with pytest.raises(BadInput):
            open_req(body[:n])


def test_every_flipped_response_byte_fails_cleanly() -> None:
    body, pending = request()
    sealed = respond(open_req(body), [b"p" * 40], True)
    for i in range(len(sealed)):
        flipped = bytearray(sealed)
        flipped[i] ^= 0x80
        with pytest.raises(BadResponse):
            exchange.open_response(bytes(flipped), pending, max_bytes=10**6)
    for n in range(len(sealed)):
        with pytest.raises(BadResponse):
            exchange.open_response(sealed[:n], pending, max_bytes=10**6)


# --- 4. forward secrecy for the asker ------------------------------------------------------

def test_recorded_exchange_stays_closed_when_the_askers_long_term_keys_leak() -> None:
    body, pending = request()
    sealed = respond(open_req(body), [b"what the asker read"])
    leaked = ASKER.own.transport_secret  # the asker's long-term secret, not the ephemeral one
    with pytest.raises(CannotDecrypt):
        crypto.unseal(leaked, body)
    for their in (OWNER.key.transport_public, crypto.transport_public(pending.ephemeral_secret)):
        with pytest.raises(CannotDecrypt):
            crypto.box_decrypt(leaked, their, sealed)
    guess = dataclasses.replace(pending, ephemeral_secret=leaked)
    with pytest.raises(BadResponse):
        exchange.open_response(sealed, guess, max_bytes=10**6)
    # only the ephemeral secret (thrown away after the exchange) opens it
    assert exchange.open_response(sealed, pending, max_bytes=10**6).posts == [
        b"what the asker read"]


# --- framing and JSON strictness -------------------------------------------------------------

def _frame() -> bytes:
    return exchange.frame_request(ASKER.own.pub_document, bytes(range(32)), b"b" * 60)


def test_frame_round_trip_and_layout() -> None:
    frame = _frame()
    pub = ASKER.own.pub_document
    assert frame == (b"\x01" + bytes(range(32)) + len(pub).to_bytes(2, "big") + pub
                     + (60).to_bytes(2, "big") + b"b" * 60)
    assert exchange.parse_frame(frame) == (pub, bytes(range(32)), b"b" * 60)


def test_every_truncated_or_extended_frame_is_refused() -> None:
    frame = _frame()
    for n in range(len(frame)):
        with pytest.raises(BadRequestEnvelope):
            exchange.parse_frame(frame[:n])
    with pytest.raises(BadRequestEnvelope):
        exchange.parse_frame(frame + b"\x00")


@pytest.mark.parametrize("bad", [
    b"\x02" + bytes(32) + b"\x00\x01p\x00\x01b",                  # unknown version
    b"\x01" + bytes(32) + b"\x00\x00\x00\x01b",                   # empty .pub
    b"\x01" + bytes(32) + b"\x08\x01" + b"p" * 2049 + b"\x00\x01b",  # .pub over 2048
    b"\x01" + bytes(32) + b"\x00\x01p\x00\x00",                   # empty inner box
    b"\x01" + bytes(32) + b"\x00\x01p\x04\x01" + b"b" * 1025,     # inner box over 1024
    b"\x01" + bytes(32) + b"\xff\xffp\x00\x01b",                  # length beyond the end
    b"",
])
def test_bad_frames_are_refused(bad: bytes) -> None:
    with pytest.raises(BadRequestEnvelope):
        exchange.parse_frame(bad)
    with pytest.raises(BadRequestEnvelope):
        open_req(crypto.seal(OWNER.key.transport_public, bad))


def test_frame_builder_refuses_oversize_fields() -> None:
    with pytest.raises(BadInput):
        exchange.frame_request(b"p" * (keys.MAX_PUB_BYTES + 1), bytes(32), b"b")
    with pytest.raises(BadInput):
        exchange.frame_request(b"p", bytes(32), b"b" * 1025)
    with pytest.raises(BadInput):
        exchange.frame_request(b"p", bytes(31), b"b")


def test_oversize_request_is_too_large() -> None:
    with pytest.raises(TooLarge):
        open_req(bytes(exchange.MAX_REQUEST_BYTES + 1))
    with pytest.raises(CannotDecrypt):
        open_req(bytes(exchange.MAX_REQUEST_BYTES))


@pytest.mark.parametrize("inner", [
    b'{"v":1,"v":1}',
    b"[1,2]",
    b"\xff\xfe",
    b"[" * 490 + b"]" * 490,
    b'{"v":NaN}',
    b"",
])
def test_inner_request_that_is_not_a_json_object_is_refused(inner: bytes) -> None:
    with pytest.raises(BadRequestEnvelope):
        open_req(crafted(inner_plain=inner))


@pytest.mark.parametrize("change", [
    {"v": 2}, {"v": True}, {"v": 1.0}, {"type": "feed-response"}, {"extra": 1},
    {"limit": 0}, {"limit": True}, {"limit": "10"}, {"after_time": -1},
    {"after_time": 2**53}, {"after_time": 1.5}, {"time": None}, {"after_sha": "AB" * 20},
    {"after_sha": 5}, {"nonce": "short"}, {"nonce": b64e(bytes(23))}, {"nonce": 7},
    {"ephemeral": b64e(bytes(31))}, {"owner": "not a fingerprint"},
])
def test_inner_request_fields_are_checked(change: dict[str, Any]) -> None:
    with pytest.raises(BadInput):
        open_req(crafted(inner_fields=change))


def test_missing_key_is_refused() -> None:
    fields = json.loads(exchange.encode_request(
        asker_fp=ASKER.fp, owner_fp=OWNER.fp, after_time=0, after_sha=None, limit=1,
        nonce=bytes(24), time=NOW, ephemeral_public=bytes(32)))
    del fields["after_sha"]
    with pytest.raises(BadRequestEnvelope):
        open_req(crafted(inner_plain=json.dumps(fields).encode()))


def test_a_response_box_cannot_pass_as_a_request() -> None:
    """Mallory has the owner box a response to the asker's transport key, then replays it
    to the asker's node as a request "from the owner": the type field tells them apart."""
    body, _ = request(MALLORY, OWNER)
    req = dataclasses.replace(open_req(body), ephemeral_public=ASKER.key.transport_public)
    box = respond(req)
    frame = exchange.frame_request(OWNER.own.pub_document, ASKER.key.transport_public, box)
    with pytest.raises(BadRequestEnvelope):
        open_req(crypto.seal(ASKER.key.transport_public, frame), ASKER)


def test_limit_above_the_node_maximum_is_lowered() -> None:
    body, _ = request(limit=900)
    assert open_req(body, max_limit=500).limit == 500
    assert open_req(request(limit=500)[0], max_limit=500).limit == 500


# --- the response size bound -------------------------------------------------------------

def test_response_size_is_exact() -> None:
    body, _ = request()
    req = open_req(body)
    for posts in ([], [b"a"], [b"a" * 1000, "ب".encode(), b'q"\\']):
        assert len(respond(req, posts, False)) == exchange.response_size(posts, OWNER.fp)


def test_fit_page_edges() -> None:
    posts = [b"a" * 100, b"b" * 100, b"c" * 100]
    full = exchange.response_size(posts, OWNER.fp)
    assert exchange.fit_page(posts, OWNER.fp, full) == (posts, False)
    assert exchange.fit_page(posts, OWNER.fp, full - 1) == (posts[:2], True)
    assert exchange.fit_page(posts, OWNER.fp, 10) == (posts[:1], True)
    assert exchange.fit_page([], OWNER.fp, 10) == ([], False)


# --- the sample exchange of docs/protocol.md ------------------------------------------------

def _vectors_module() -> Any:
    path = ROOT / "tests/data/exchange/make_vectors.py"
    spec = importlib.util.spec_from_file_location("exchange_vectors", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


VEC = _vectors_module()
SAMPLE: dict[str, Any] = json.loads((ROOT / "tests/data/exchange/sample.json").read_text("utf-8"))


def test_sample_plaintexts_are_what_the_code_makes() -> None:
    f = VEC.fixed_inputs()
    asker = VEC.pub_of(f["asker_seed"], f["asker_transport_secret"])
    owner = VEC.pub_of(f["owner_seed"], f["owner_transport_secret"])
    assert asker.to_bytes().decode() == SAMPLE["asker_pub"]
    assert owner.to_bytes().decode() == SAMPLE["owner_pub"]
    eph = crypto.transport_public(f["ephemeral_secret"])
    assert eph.hex() == SAMPLE["ephemeral_public"]
    assert exchange.encode_request(
        asker_fp=asker.fingerprint, owner_fp=owner.fingerprint, after_time=f["after_time"],
        after_sha=f["after_sha"], limit=f["limit"], nonce=f["nonce"], time=f["now"],
        ephemeral_public=eph).decode() == SAMPLE["request_json"]
    posts = VEC.sample_posts(f["owner_seed"])
    assert [p.decode() for p in posts] == SAMPLE["posts"]
    assert exchange.encode_response(owner_fp=owner.fingerprint, nonce=f["nonce"],
                                    posts=SAMPLE["posts"], more=True).decode() == (
        SAMPLE["response_json"])


def test_sample_request_ciphertext_opens_to_the_documented_bytes() -> None:
    secret = bytes.fromhex(SAMPLE["owner_transport_secret"])
    body = bytes.fromhex(SAMPLE["request"])
    frame = crypto.unseal(secret, body)
    head = VEC.frame_head(SAMPLE)
    assert frame.startswith(head) and len(frame) == len(head) + SAMPLE["inner_box_length"]
    asker = keys.parse_pub(SAMPLE["asker_pub"])
    assert crypto.box_decrypt(secret, asker.transport_public, frame[len(head):]).decode() == (
        SAMPLE["request_json"])
    req = exchange.open_request(body, owner_fp=SAMPLE["owner_fp"], owner_transport_secret=secret,
                                now=SAMPLE["now"], window=SAMPLE["window"], max_limit=500)
    assert (req.asker_fp, req.after_time, req.after_sha, req.limit, req.nonce.hex()) == (
        SAMPLE["asker_fp"], SAMPLE["after_time"], SAMPLE["after_sha"], SAMPLE["limit"],
        SAMPLE["nonce"])


def test_sample_response_ciphertext_opens_to_the_documented_bytes() -> None:
    eph_secret = bytes.fromhex(SAMPLE["ephemeral_secret"])
    owner = keys.parse_pub(SAMPLE["owner_pub"])
    sealed = bytes.fromhex(SAMPLE["response"])
    assert crypto.box_decrypt(eph_secret, owner.transport_public, sealed).decode() == (
        SAMPLE["response_json"])
    pending = PendingRequest(SAMPLE["owner_fp"], owner.transport_public, eph_secret,
                             bytes.fromhex(SAMPLE["nonce"]), SAMPLE["limit"], SAMPLE["now"])
    got = exchange.open_response(sealed, pending, max_bytes=10**6)
    assert got == exchange.FeedResponse([p.encode() for p in SAMPLE["posts"]], True)


def test_protocol_doc_shows_the_sample_byte_for_byte() -> None:
    doc = (ROOT / "docs/protocol.md").read_text("utf-8")
    section = doc.split("<!-- section:exchange -->")[1].split("<!-- /section:exchange -->")[0]
    assert VEC.listing(SAMPLE) in section
    for constant in (exchange.REQUEST_TYPE, exchange.RESPONSE_TYPE, str(exchange.MAX_INNER_BYTES),
                     str(exchange.MAX_REQUEST_BYTES)):
        assert constant in section


# --- serving a feed on a node -------------------------------------------------------------

@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A node with one own identity (OWN), a few posts, and the asker known to it."""
    dd = make_datadir(tmp_path_factory.mktemp("feeds") / "node")
    ids = Identities(dd)
    own = ids.create(PASSWORD)
    seed = ids.open_seed(own, PASSWORD)
    ids.import_pub(ASKER.own.pub_document)
    ids.import_pub(MALLORY.own.pub_document)
    ids.create_group("friends")
    ids.add_member("friends", ASKER.fp)
    t = int(time.time()) - 1000
    specs = [
        {"CREATED_TIME": t, "TEXT": "public one"},
        {"CREATED_TIME": t + 1, "TEXT": "to the asker", "TO_FINGERPRINT": ASKER.fp},
        {"CREATED_TIME": t + 2, "TEXT": "to mallory", "TO_FINGERPRINT": MALLORY.fp},
        {"CREATED_TIME": t + 3, "TEXT": "comment to mallory", "TO_FINGERPRINT": MALLORY.fp},
        {"CREATED_TIME": t + 4, "TEXT": "public two"},
    ]
    public_parent = build_post(seed, specs[0])
    specs[3]["REPLY_POSTSHA"] = hashlib.sha1(public_parent).hexdigest()  # on a public post
    raws = [build_post(seed, spec) for spec in specs]
    Ingestor(dd).ingest_many(raws, author=own)
    return {"dd": dd, "own": own, "raws": raws, "key": ids.public_key(own)}


def ask_sealed(node: dict[str, Any], asker: Stranger = ASKER, *, dd: DataDir | None = None,
               **kw: Any) -> tuple[bytes, PendingRequest]:
    owner = Stranger(b"", b"", node["key"])
    now = int(time.time())
    body, pending = request(asker, owner, now=now, **kw)
    return serve_feed(dd or node["dd"], node["own"], body, now=now), pending


def ask(node: dict[str, Any], asker: Stranger = ASKER, *, dd: DataDir | None = None,
        **kw: Any) -> exchange.FeedResponse:
    sealed, pending = ask_sealed(node, asker, dd=dd, **kw)
    return exchange.open_response(sealed, pending, max_bytes=10**7)


def test_serves_public_and_addressed_posts_oldest_first(node: dict[str, Any]) -> None:
    raws = node["raws"]
    assert ask(node) == exchange.FeedResponse([raws[0], raws[1], raws[4]], False)
    assert ask(node, MALLORY).posts == [raws[0], raws[2], raws[3], raws[4]]


def test_pages_continue_after_the_cursor(node: dict[str, Any]) -> None:
    first = ask(node, limit=2)
    assert first == exchange.FeedResponse(node["raws"][:2], True)
    last = decode_post(node["raws"][1], max_bytes=10**6)
    rest = ask(node, after_time=last.created, after_sha=last.sha1, limit=2)
    assert rest == exchange.FeedResponse([node["raws"][4]], False)


def test_comment_sharing_group(node: dict[str, Any]) -> None:
    dd, own, raws = node["dd"], node["own"], node["raws"]
    assert get_share_comments_group(dd, own) is None
    set_share_comments_group(dd, own, "friends")
    try:
        assert get_share_comments_group(dd, own) == "friends"
        assert ask(node).posts == [raws[0], raws[1], raws[3], raws[4]]  # the comment, not the DM
        stored = json.loads((dd.state / "identity_settings.json").read_text())
        assert stored == {own: {"share_comments_group": "friends"}}
    finally:
        set_share_comments_group(dd, own, None)
    assert get_share_comments_group(dd, own) is None
    assert ask(node).posts == [raws[0], raws[1], raws[4]]


def test_comment_sharing_setting_is_checked(node: dict[str, Any]) -> None:
    dd, own = node["dd"], node["own"]
    with pytest.raises(NotFound):
        set_share_comments_group(dd, own, "nosuchgroup")
    with pytest.raises(BadInput):
        set_share_comments_group(dd, own, "blocked")
    with pytest.raises(BadName):
        set_share_comments_group(dd, own, "../x")
    with pytest.raises(NotFound):
        set_share_comments_group(dd, ASKER.fp, "friends")
    with pytest.raises(BadFingerprint):
        get_share_comments_group(dd, "../../etc")


def test_only_own_identities_are_served(node: dict[str, Any]) -> None:
    body, _ = request(ASKER, MALLORY)
    with pytest.raises(NotFound) as known:
        serve_feed(node["dd"], MALLORY.fp, body)          # known key, no private key
    with pytest.raises(NotFound) as unknown:
        serve_feed(node["dd"], new_stranger().fp, body)           # never heard of
    assert type(known.value) is type(unknown.value)


def test_blocked_asker_gets_an_ordinary_empty_page(node: dict[str, Any]) -> None:
    dd = node["dd"]
    Identities(dd).block(MALLORY.fp)
    try:
        blocked, pending = ask_sealed(node, MALLORY)
    finally:
        Identities(dd).unblock(MALLORY.fp)
    assert exchange.open_response(blocked, pending, max_bytes=10**6) == exchange.FeedResponse(
        [], False)
    # exactly what an asker with nothing new gets: same size, same plaintext but the nonce
    nothing_new, other = ask_sealed(node, new_stranger(), after_time=2**40)
    assert len(blocked) == len(nothing_new)
    eph = crypto.transport_public
    assert eph(pending.ephemeral_secret) != eph(other.ephemeral_secret)
    plain = crypto.box_decrypt(pending.ephemeral_secret, node["key"].transport_public, blocked)
    plain_other = crypto.box_decrypt(other.ephemeral_secret, node["key"].transport_public,
                                     nothing_new)
    assert plain.replace(b64e(pending.nonce).encode(), b"N") == plain_other.replace(
        b64e(other.nonce).encode(), b"N")
    assert ask(node, MALLORY).posts  # served again once unblocked


def test_a_request_is_served_once(node: dict[str, Any]) -> None:
    now = int(time.time())
    owner = Stranger(b"", b"", node["key"])
    body, _ = request(ASKER, owner, now=now)
    serve_feed(node["dd"], node["own"], body, now=now)
    with pytest.raises(Replay):
        serve_feed(node["dd"], node["own"], body, now=now)
    fresh = DataDir(node["dd"].root, {}, environ={})  # another process's view after a restart
    with pytest.raises(Replay):
        serve_feed(fresh, node["own"], body, now=now)


def test_stale_request_is_refused_before_its_nonce_is_recorded(node: dict[str, Any]) -> None:
    owner = Stranger(b"", b"", node["key"])
    store = NonceStore(node["dd"])
    body, _ = request(ASKER, owner, now=NOW)
    before = store.count()
    with pytest.raises(Replay):
        serve_feed(node["dd"], node["own"], body, now=NOW + WINDOW + 1)
    assert store.count() == before


def test_response_size_bound_cuts_the_page(node: dict[str, Any]) -> None:
    raws = node["raws"]
    budget = exchange.response_size(raws[:2], node["own"])
    small = DataDir(node["dd"].root, {"max_response_bytes": budget,
                                      "max_post_bytes": budget - 1}, environ={})
    assert ask(node, dd=small) == exchange.FeedResponse(raws[:2], True)
