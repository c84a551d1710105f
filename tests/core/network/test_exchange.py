"""The feed exchange v2 (app/core/network/exchange.py, feeds.py): issue 8's attacks 2, 3, 4, 7.

The Noise IK round trip and its framing; key-compromise impersonation and
forward secrecy (attack 3); pinned askers (attack 2); one answer for every
request that does not authenticate, with the same work and no cache read
(attack 4); padding and budgets (attack 7); serving (who gets what).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.base import crypto, noise
from app.core.base.datadir import DataDir
from app.core.base.errors import (
    BadFingerprint,
    BadInput,
    BadName,
    BadRequestEnvelope,
    BadResponse,
    CannotDecrypt,
    NotAuthenticated,
    NotFound,
    RateLimited,
    Replay,
)
from app.core.identity import keys
from app.core.identity.identities import Identities
from app.core.network import budgets, exchange, feeds, ownkeys, pages
from app.core.network.budgets import Budgets, prefixes
from app.core.network.exchange import OwnKeys, PendingRequest
from app.core.network.feeds import get_share_comments_group, serve_feed, set_share_comments_group
from app.core.network.nonces import NonceStore
from app.core.posts.codec import build_post
from app.core.posts.ingest import Ingestor
from tests.helpers.datadirs import PASSWORD, make_datadir

NOW = 1_700_000_000
WINDOW = 300


@pytest.fixture(autouse=True, scope="module")
def _cheap_kdf() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIWAN_INSECURE_KDF", "1")
        yield


@dataclasses.dataclass(frozen=True)
class Party:
    seed: bytes
    own: OwnKeys
    key: keys.PublicKey
    device: str = "0123456789abcdef"

    @property
    def fp(self) -> str:
        return self.own.fp

    @property
    def static(self) -> noise.Keypair:
        return noise.keypair_from_secret(self.own.transport_secret)

    def rotated(self, serial: int) -> Party:
        """The same identity and device with a new transport key at ``serial``."""
        return party(self.seed, serial=serial, device=self.device)


def party(seed: bytes | None = None, *, serial: int = 1, device: str = "0123456789abcdef",
          extra_devices: int = 0) -> Party:
    """An identity made from raw keys (no key file, no Argon2id)."""
    seed = seed or crypto.new_signing_seed()
    transport = crypto.new_transport_secret()
    devices = [keys.DeviceCert(device, serial, noise.keypair_from_secret(transport).public)]
    devices += [keys.DeviceCert(f"{n:016x}", 1, noise.generate_keypair().public)
                for n in range(1, extra_devices + 1)]
    key = keys.certify(seed, devices)
    return Party(seed, OwnKeys(key.fingerprint, key.to_bytes(), transport), key, device)


ASKER, OWNER, MALLORY = party(), party(), party()


def request(asker: Party = ASKER, owner: Party = OWNER, *, now: int = NOW, limit: int = 10,
            epoch: int | None = None, after: int = 0, summary: bool = False
            ) -> tuple[bytes, PendingRequest]:
    return exchange.build_request(asker=asker.own, owner_fp=owner.fp,
                                  owner_transport=owner.key.transport_public,
                                  epoch=epoch, after=after, summary=summary, limit=limit,
                                  now=now)


M1 = 1 + exchange.KEY_ID_BYTES  # where message 1 starts in a request body


def slots(owner: Party = OWNER) -> list[noise.Keypair]:
    return [owner.static, noise.generate_keypair()]


def answer(body: bytes, posts: list[bytes], more: bool = False, owner: Party = OWNER,
           max_bytes: int = 10**7) -> bytes:
    opened = exchange.open_request(body, owner_fp=owner.fp, slots=slots(owner))
    head = pages.epoch_record(1)
    writer = pages.PageWriter(opened.handshake, owner.own.pub_document, [len(p) for p in posts],
                              max_bytes, len(head))
    out = b"".join(writer.pieces(itertools.chain(
        [head], map(pages.post_record, posts, itertools.count(1))), more))
    assert len(out) == writer.size
    return out


# --- round trip and framing ------------------------------------------------------------------

def test_round_trip_carries_every_field() -> None:
    body, pending = request(limit=7, epoch=5, after=123)
    assert len(body) == exchange.REQUEST_BYTES and body[:1] == b"\x02"
    opened = exchange.open_request(body, owner_fp=OWNER.fp, slots=slots())
    assert opened.asker_static == ASKER.static.public
    assert opened.pub_document == ASKER.own.pub_document
    req = exchange.parse_request(opened, now=NOW, window=WINDOW, max_limit=500)
    assert (req.owner_fp, req.epoch, req.after, req.summary, req.limit, req.time) == (
        OWNER.fp, 5, 123, False, 7, NOW)
    posts = [b"post-one", "بوست".encode()]
    head = pages.epoch_record(9)
    writer = pages.PageWriter(opened.handshake, OWNER.own.pub_document, [8, len(posts[1])], 10**7,
                              len(head))
    body2 = b"".join(writer.pieces([head, *map(pages.post_record, posts, [124, 130])], True))
    got = exchange.open_response(body2, pending, max_bytes=10**7)
    assert got == exchange.FeedResponse(posts, True, OWNER.own.pub_document, [], epoch=9,
                                        positions=[124, 130])


def test_a_summary_round_trip() -> None:
    body, pending = request(limit=3, summary=True)
    opened = exchange.open_request(body, owner_fp=OWNER.fp, slots=slots())
    req = exchange.parse_request(opened, now=NOW, window=WINDOW, max_limit=1, max_summary=2)
    assert (req.summary, req.limit) == (True, 2)   # lowered to the summary's own limit
    entries = [(5, b"\x01" * 8), (7, b"\x02" * 8)]
    got = exchange.open_response(exchange.respond(
        opened, owner_pub=OWNER.own.pub_document, posts=[], more=True, max_bytes=10**6,
        epoch=3, summary=entries), pending, max_bytes=10**6)
    assert (got.epoch, got.summary, got.posts, got.more) == (3, entries, [], True)


def test_a_summary_for_a_request_of_posts_is_refused() -> None:
    body, pending = request()
    opened = exchange.open_request(body, owner_fp=OWNER.fp, slots=slots())
    with pytest.raises(BadResponse):
        exchange.open_response(exchange.respond(
            opened, owner_pub=OWNER.own.pub_document, posts=[], more=False, max_bytes=10**6,
            summary=[(5, b"\x01" * 8)]), pending, max_bytes=10**6)


def test_the_previous_key_slot_is_tried_too() -> None:
    body, _ = request()
    opened = exchange.open_request(body, owner_fp=OWNER.fp,
                                   slots=[noise.generate_keypair(), OWNER.static])
    assert opened.asker_static == ASKER.static.public


def test_prologue_binds_version_route_and_owner() -> None:
    assert exchange.prologue(OWNER.fp) == (b"diwan/v2/feed-exchange\x00POST /feeds/"
                                           + OWNER.fp.encode())
    assert len(exchange.prologue(OWNER.fp)) == 99
    body, _ = request()
    with pytest.raises(NotAuthenticated):  # the same key, asked under another fingerprint
        exchange.open_request(body, owner_fp=MALLORY.fp, slots=slots())


def test_limit_above_the_node_maximum_is_lowered() -> None:
    body, _ = request(limit=900)
    opened = exchange.open_request(body, owner_fp=OWNER.fp, slots=slots())
    assert exchange.parse_request(opened, now=NOW, window=WINDOW, max_limit=50).limit == 50


@pytest.mark.parametrize("skew", [-WINDOW, WINDOW])
def test_time_at_the_window_edges_is_accepted(skew: int) -> None:
    body, _ = request(now=NOW + skew)
    opened = exchange.open_request(body, owner_fp=OWNER.fp, slots=slots())
    assert exchange.parse_request(opened, now=NOW, window=WINDOW, max_limit=10).time == NOW + skew


@pytest.mark.parametrize("skew", [-WINDOW - 1, WINDOW + 1])
def test_time_outside_the_window_is_refused(skew: int) -> None:
    body, _ = request(now=NOW + skew)
    opened = exchange.open_request(body, owner_fp=OWNER.fp, slots=slots())
    with pytest.raises(Replay):
        exchange.parse_request(opened, now=NOW, window=WINDOW, max_limit=10)


def _handmade(request_json: bytes, pub: bytes = ASKER.own.pub_document) -> bytes:
    hs = noise.HandshakeState.initiator(exchange.prologue(OWNER.fp), ASKER.static,
                                        OWNER.key.transport_public)
    return (b"\x02" + exchange.key_id(OWNER.key.transport_public)
            + hs.write_message(exchange.request_payload(pub, request_json)))


def _refused_with(change: dict[str, Any]) -> None:
    """A well-made request JSON with ``change`` applied is refused as a bad envelope."""
    fields = json.loads(exchange.encode_request(owner_fp=OWNER.fp, epoch=None, after=0,
                                                summary=False, limit=10, nonce=bytes(24),
                                                time=NOW))
    fields.update(change)
    opened = exchange.open_request(_handmade(json.dumps(fields).encode()), owner_fp=OWNER.fp,
                                   slots=slots())
    with pytest.raises(BadRequestEnvelope):
        exchange.parse_request(opened, now=NOW, window=WINDOW, max_limit=10)


@pytest.mark.parametrize("change", [{"v": 1}, {"type": "feed-response"}, {"limit": 0},
                                    {"limit": True}, {"after": -1}, {"after": 2**53},
                                    {"epoch": 0}, {"epoch": "1"}, {"summary": 1},
                                    {"nonce": "short"}, {"owner": MALLORY.fp}, {"extra": 1},
                                    {"keys": "x"}, {"keys": [OWNER.fp, OWNER.fp]},
                                    {"keys": ["ab"]}, {"keys": [OWNER.fp] * 9}])
def test_request_json_fields_are_checked(change: dict[str, Any]) -> None:
    _refused_with(change)


@pytest.mark.parametrize("plain", [b"[]", b"{", b'{"v":2,"v":2}', b"NaN", b"\xff"])
def test_request_json_that_is_not_an_object_is_refused(plain: bytes) -> None:
    opened = exchange.open_request(_handmade(plain), owner_fp=OWNER.fp, slots=slots())
    with pytest.raises(BadRequestEnvelope):
        exchange.parse_request(opened, now=NOW, window=WINDOW, max_limit=10)


def test_request_size_does_not_depend_on_who_asks() -> None:
    big = party(extra_devices=keys.MAX_DEVICES - 1)
    assert len(request(big)[0]) == len(request(ASKER)[0]) == exchange.REQUEST_BYTES


def test_request_bytes_hide_the_asker_and_everything_else() -> None:
    body, _ = request()
    for secret in (ASKER.fp.encode(), bytes.fromhex(ASKER.fp), ASKER.own.pub_document[:40],
                   ASKER.static.public, b"feed-request", OWNER.fp.encode()):
        assert secret not in body


def test_every_flipped_or_cut_request_byte_is_the_one_answer() -> None:
    body, _ = request()
    for pos in list(range(0, 120)) + list(range(120, len(body), 97)) + [len(body) - 1]:
        bad = body[:pos] + bytes([body[pos] ^ 0x40]) + body[pos + 1:]
        with pytest.raises(NotAuthenticated):
            exchange.open_request(bad, owner_fp=OWNER.fp, slots=slots())
    for cut in (0, 1, 97, len(body) - 1):
        with pytest.raises(NotAuthenticated):
            exchange.open_request(body[:cut], owner_fp=OWNER.fp, slots=slots())
    with pytest.raises(NotAuthenticated):
        exchange.open_request(body + b"x", owner_fp=OWNER.fp, slots=slots())


def test_the_key_id_names_the_one_slot_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request to the previous key opens with one responder, on that key; the same
    request with the other slot's key id runs one responder too, and fails."""
    previous = noise.generate_keypair()
    tried: list[bytes] = []
    real = noise.HandshakeState.responder

    def spy(prologue: bytes, s: noise.Keypair, **kw: Any) -> noise.HandshakeState:
        tried.append(s.public)
        return real(prologue, s, **kw)

    monkeypatch.setattr(noise.HandshakeState, "responder", staticmethod(spy))
    body, _ = exchange.build_request(asker=ASKER.own, owner_fp=OWNER.fp,
                                     owner_transport=previous.public, after=0,
                                     limit=10, now=NOW)
    assert body[1:M1] == previous.public[:8]
    opened = exchange.open_request(body, owner_fp=OWNER.fp, slots=[OWNER.static, previous])
    assert opened.pub_document == ASKER.own.pub_document and tried == [previous.public]
    tried.clear()
    swapped = body[:1] + exchange.key_id(OWNER.static.public) + body[M1:]
    with pytest.raises(NotAuthenticated):
        exchange.open_request(swapped, owner_fp=OWNER.fp, slots=[OWNER.static, previous])
    assert tried == [OWNER.static.public]


def test_every_flipped_response_byte_fails_cleanly() -> None:
    body, _ = request()
    response = answer(body, [b"a post"])
    for pos in range(0, len(response), 7):
        body2, pending = request()
        good = answer(body2, [b"a post"])
        bad = good[:pos] + bytes([good[pos] ^ 1]) + good[pos + 1:]
        with pytest.raises(BadResponse):
            exchange.open_response(bad, pending, max_bytes=10**7)


def test_response_for_another_request_does_not_open() -> None:
    body1, _ = request()
    _, pending2 = request()
    with pytest.raises(BadResponse):
        exchange.open_response(answer(body1, []), pending2, max_bytes=10**7)


def test_response_over_max_bytes_is_refused_at_the_edge() -> None:
    body, pending = request()
    response = answer(body, [b"x" * 3000])
    with pytest.raises(BadResponse):
        exchange.open_response(response, pending, max_bytes=len(response) - 1)
    assert exchange.open_response(response, pending, max_bytes=len(response)).posts


def test_response_with_more_posts_than_asked_is_refused() -> None:
    body, pending = request(limit=1)
    with pytest.raises(BadResponse):
        exchange.open_response(answer(body, [b"a", b"b"]), pending, max_bytes=10**7)


EPOCH1 = b"\x04\x00\x00\x00\x08" + (1).to_bytes(8, "big")
POST_AT = b"\x01\x00\x00\x00\x09" + (7).to_bytes(8, "big") + b"p"


@pytest.mark.parametrize("stream", [
    b"", b"\x01\x00\x00\x00\x09abc\x00\x00", b"\x00\x02", b"\x00\x00\x01", b"\x02\x00",
    b"\x00\x00",                                        # no epoch record
    EPOCH1 + EPOCH1 + b"\x00\x00",                      # two
    b"\x03\x00\x00\x00\x07" + bytes(7) + b"\x00\x00",    # an epoch of 7 bytes
    EPOCH1 + POST_AT + POST_AT + b"\x00\x00",           # positions not increasing
    EPOCH1 + b"\x01\x00\x00\x00\x03abc\x00\x00",        # a post record with no position
    EPOCH1 + POST_AT + b"\x02\x00\x00\x00\x01k\x00\x00",  # a key record after a post
    EPOCH1 + b"\x05\x00\x00\x00\x03abc\x00\x00",        # a summary of a wrong length
    EPOCH1 + POST_AT + b"\x05\x00\x00\x00\x00\x00\x00",  # posts and a summary
])
def test_malformed_page_streams_are_refused(stream: bytes) -> None:
    with pytest.raises(BadResponse):
        pages.parse_stream(stream)


def test_secrets_are_not_in_reprs() -> None:
    body, pending = request()
    opened = exchange.open_request(body, owner_fp=OWNER.fp, slots=slots())
    for obj in (ASKER.own, pending, opened):
        assert ASKER.own.transport_secret.hex() not in repr(obj)
        assert repr(ASKER.own.transport_secret) not in repr(obj)


# --- attack 3: key-compromise impersonation, forward secrecy -----------------------------

def _forged_message1(owner_secret: bytes, victim_public: bytes, e: noise.Keypair,
                     payload: bytes) -> bytes:
    """Message 1 "from" ``victim`` made with the OWNER's secret (ss = DH(o, A) = DH(a, O))."""
    sym = noise.SymmetricState(noise.PROTOCOL_NAME)
    owner_public = crypto.x25519_public(owner_secret)
    sym.mix_hash(exchange.prologue(OWNER.fp))
    sym.mix_hash(owner_public)
    sym.mix_hash(e.public)
    sym.mix_key(crypto.x25519(e.secret, owner_public))
    enc_s = sym.encrypt_and_hash(victim_public)
    sym.mix_key(crypto.x25519(owner_secret, victim_public))
    return (b"\x02" + exchange.key_id(owner_public) + e.public + enc_s
            + sym.encrypt_and_hash(payload))


def test_kci_holder_of_the_owners_key_cannot_read_the_response_to_an_impersonation() -> None:
    """Attack 3: Mallory stole the owner's transport secret and asks as ASKER (pinned)."""
    e = noise.generate_keypair()
    payload = exchange.request_payload(ASKER.own.pub_document, exchange.encode_request(
        owner_fp=OWNER.fp, epoch=None, after=0, summary=False, limit=10,
        nonce=os.urandom(24), time=NOW))
    forged = _forged_message1(OWNER.own.transport_secret, ASKER.static.public, e, payload)
    opened = exchange.open_request(forged, owner_fp=OWNER.fp, slots=slots())
    assert opened.asker_static == ASKER.static.public   # message 1 cannot tell (IK, by design)
    response = answer(forged, [b"a private post for ASKER"])
    head = pages.split_messages(response)[0]
    # Mallory knows e and o; message 2 needs se = DH(e_o, A) = DH(a, E_o): every key
    # she can compute leaves it closed.
    e_o = head[:32]
    for guess in (crypto.x25519(e.secret, e_o), crypto.x25519(OWNER.own.transport_secret, e_o),
                  crypto.x25519(OWNER.own.transport_secret, ASKER.static.public)):
        sym = _mallory_state(e, payload, OWNER.own.transport_secret)
        sym.mix_hash(e_o)
        sym.mix_key(crypto.x25519(e.secret, e_o))
        sym.mix_key(guess)
        with pytest.raises(CannotDecrypt):
            sym.decrypt_and_hash(head[32:])
    assert b"a private post" not in response


def _mallory_state(e: noise.Keypair, payload: bytes, owner_secret: bytes
                   ) -> noise.SymmetricState:
    sym = noise.SymmetricState(noise.PROTOCOL_NAME)
    owner_public = crypto.x25519_public(owner_secret)
    sym.mix_hash(exchange.prologue(OWNER.fp))
    sym.mix_hash(owner_public)
    sym.mix_hash(e.public)
    sym.mix_key(crypto.x25519(e.secret, owner_public))
    sym.encrypt_and_hash(ASKER.static.public)
    sym.mix_key(crypto.x25519(owner_secret, ASKER.static.public))
    sym.encrypt_and_hash(payload)
    return sym


def test_recorded_exchange_stays_closed_when_both_long_term_keys_leak() -> None:
    """Attack 3: both static secrets leak after the exchange; the response stays closed.

    Message 1's payload is NOT forward-secret against the owner's key (stated in
    docs/threats.md): the leak opens it, as shown first.
    """
    body, _ = request()
    response = answer(body, [b"the secret page"])
    leaked = noise.HandshakeState.responder(exchange.prologue(OWNER.fp), OWNER.static)
    assert ASKER.own.pub_document in leaked.read_message(body[M1:])      # who asked: exposed
    head = pages.split_messages(response)[0]
    for secret in (ASKER.own.transport_secret, OWNER.own.transport_secret):
        for other in (ASKER.static.public, OWNER.static.public, head[:32], body[M1:M1 + 32]):
            sym = noise.SymmetricState(noise.PROTOCOL_NAME)
            sym.mix_key(crypto.x25519(secret, other))
            with pytest.raises(CannotDecrypt):
                sym.decrypt_and_hash(head[32:])
    # the asker's side replayed with its long-term key but a fresh ephemeral: closed
    replay = noise.HandshakeState.initiator(exchange.prologue(OWNER.fp), ASKER.static,
                                            OWNER.key.transport_public)
    replay.write_message(b"")
    with pytest.raises(CannotDecrypt):
        replay.read_message(head)
    assert b"the secret page" not in response


# --- attack 7: padding -------------------------------------------------------------------

def test_response_size_is_a_bucket_and_does_not_depend_on_content_within_it() -> None:
    sizes = set()
    for posts in ([], [b"p" * 10], [b"p" * 200, b"q" * 200], [b"a private post" * 20]):
        body, pending = request()
        response = answer(body, posts)
        assert exchange.open_response(response, pending, max_bytes=10**7).posts == posts
        sizes.add(len(response))
    assert sizes == {1024}
    body, _ = request()
    assert len(answer(body, [b"x" * 1500])) == 2048
    body, _ = request()
    assert len(answer(body, [b"x" * 70_000])) == 128 * 1024   # several transport messages


@pytest.mark.parametrize("size", [1024, 1025, 2047, 65_537, 65_538, 65_554, 65_555, 131_074,
                                  200_000, 32 << 20])
def test_chunk_layout_fills_exactly(size: int) -> None:
    chunks = pages.chunk_sizes(size)
    assert sum(c + 18 for c in chunks) == size
    assert all(0 <= c <= pages.MAX_CHUNK for c in chunks)


def test_bucket_edges() -> None:
    assert pages.bucket(1, 10**9) == 1024
    assert pages.bucket(1024, 10**9) == 1024
    assert pages.bucket(1025, 10**9) == 2048
    assert pages.bucket(5000, 6000) == 6000          # the last bucket is the maximum
    assert pages.bucket(7000, 6000) == 7000          # never smaller than the content


def test_fit_page_edges() -> None:
    head = 300
    one = pages.body_bytes(head, pages.stream_bytes([1000]))
    assert pages.fit_page([1000, 1000], head, one) == (1, True)
    two = pages.body_bytes(head, pages.stream_bytes([1000, 1000]))
    assert pages.fit_page([1000, 1000], head, two) == (2, False)
    assert pages.fit_page([1000, 1000], head, two - 1) == (1, True)
    assert pages.fit_page([5000], head, 100) == (1, False)  # the first post always


def test_the_response_is_streamed_one_record_at_a_time() -> None:
    body, pending = request()
    opened = exchange.open_request(body, owner_fp=OWNER.fp, slots=slots())
    posts = [bytes([65 + n]) * 60_000 for n in range(5)]
    pulled: list[int] = []

    def records() -> Iterator[bytes]:
        yield pages.epoch_record(1)
        for n, post in enumerate(posts):
            pulled.append(n)
            yield pages.post_record(post, n + 1)

    writer = pages.PageWriter(opened.handshake, OWNER.own.pub_document, [len(p) for p in posts],
                              10**7, pages.EPOCH_BYTES)
    pieces = writer.pieces(records(), False)
    out = [next(pieces), next(pieces)]           # message 2, the first transport message
    assert len(pulled) <= 2 and all(len(p) <= 2 + 65_535 for p in out)
    out += list(pieces)
    got = exchange.open_response(b"".join(out), pending, max_bytes=10**7)
    assert got.posts == posts and sum(map(len, out)) == writer.size


# --- serving a feed on a node ------------------------------------------------------------

@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, _cheap_kdf: None) -> dict[str, Any]:
    """A node with one own identity (OWN), a few posts, ASKER and MALLORY known to it."""
    dd = make_datadir(tmp_path_factory.mktemp("feeds") / "node",
                      budget_prefix_requests=10**6, budget_prefix48_requests=10**6,
                      budget_asker_requests=10**6)
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


def node_owner(node: dict[str, Any]) -> Party:
    return Party(b"", OwnKeys(node["own"], b"", b""), node["key"])


def ask_raw(node: dict[str, Any], asker: Party = ASKER, *, dd: DataDir | None = None,
            remote: str = "192.0.2.1", **kw: Any) -> tuple[bytes, PendingRequest]:
    now = int(time.time())
    body, pending = request(asker, node_owner(node), now=now, **kw)
    got = serve_feed(dd or node["dd"], node["own"], body, now=now, remote=remote)
    return got.read(), pending


def ask(node: dict[str, Any], asker: Party = ASKER, **kw: Any) -> exchange.FeedResponse:
    raw, pending = ask_raw(node, asker, **kw)
    return exchange.open_response(raw, pending, max_bytes=10**7)


def test_serves_public_and_addressed_posts_oldest_first(node: dict[str, Any]) -> None:
    raws = node["raws"]
    got = ask(node)
    assert (got.posts, got.more) == ([raws[0], raws[1], raws[4]], False)
    assert got.owner_pub == node["key"].to_bytes()        # the owner's current certificate
    assert ask(node, MALLORY).posts == [raws[0], raws[2], raws[3], raws[4]]


def test_pages_continue_after_the_cursor(node: dict[str, Any]) -> None:
    first = ask(node, limit=2)
    assert (first.posts, first.more) == (node["raws"][:2], True)
    rest = ask(node, epoch=first.epoch, after=first.positions[-1], limit=2)
    assert (rest.posts, rest.more) == ([node["raws"][4]], False)
    assert rest.epoch == first.epoch and rest.positions[0] > first.positions[-1]
    other = ask(node, epoch=first.epoch + 1, after=first.positions[-1], limit=2)
    assert (other.posts, other.more, other.epoch) == ([], False, first.epoch)  # compare sets
    summary = ask(node, summary=True, limit=10)
    assert [p for p, _ in summary.summary] == first.positions + rest.positions
    assert summary.summary[0][1] == hashlib.sha1(node["raws"][0]).digest()[:8]


def test_a_stranger_gets_public_posts_only_and_leaves_nothing(node: dict[str, Any]) -> None:
    """Pinned askers: a stranger claiming to be an addressee is no addressee here."""
    dd, raws = node["dd"], node["raws"]
    stranger = party()
    before = sorted(p.name for p in dd.identities.rglob("*"))
    assert ask(node, stranger).posts == [raws[0], raws[4]]
    assert sorted(p.name for p in dd.identities.rglob("*")) == before
    now = int(time.time())
    assert Budgets(dd).used("asker:" + stranger.fp, now=now) == (0, 0)
    assert Budgets(dd).used("stranger:" + prefixes("192.0.2.1")[0], now=now)[0] >= 1


def test_attack2_an_old_certificate_of_a_pinned_asker_is_refused(node: dict[str, Any]) -> None:
    """Attack 2: the node holds serial 2 of a device; serial 1 (a leaked old key) is refused."""
    ids = Identities(node["dd"])
    old = party(serial=1)
    new = old.rotated(2)
    ids.import_pub(new.own.pub_document)               # the pin: serial 2
    with pytest.raises(NotAuthenticated):
        ask(node, old)
    conflicting = old.rotated(2)                        # serial 2 again, another key
    with pytest.raises(NotAuthenticated):
        ask(node, conflicting)
    assert ids.pub_document(new.fp) == new.own.pub_document
    assert ask(node, new).posts                         # the pinned key works


def test_a_newer_certificate_of_a_pinned_asker_updates_the_pin(node: dict[str, Any]) -> None:
    ids = Identities(node["dd"])
    first = party(serial=5)
    ids.import_pub(first.own.pub_document)
    rotated = first.rotated(6)
    assert ask(node, rotated).posts
    assert ids.public_key(first.fp, touch=False).devices == rotated.key.devices
    with pytest.raises(NotAuthenticated):               # the old key is no longer the pin
        ask(node, first)


def test_a_pinned_askers_key_not_in_its_document_is_refused(node: dict[str, Any]) -> None:
    """Message 1 made with a key its .pub does not certify (Noise authenticates the key)."""
    liar = dataclasses.replace(ASKER, own=dataclasses.replace(
        ASKER.own, transport_secret=MALLORY.own.transport_secret))
    now = int(time.time())
    hs = noise.HandshakeState.initiator(exchange.prologue(node["own"]), liar.static,
                                        node["key"].transport_public)
    body = b"\x02" + exchange.key_id(node["key"].transport_public) + hs.write_message(
        exchange.request_payload(ASKER.own.pub_document, exchange.encode_request(
            owner_fp=node["own"], epoch=None, after=0, summary=False, limit=10,
            nonce=os.urandom(24), time=now)))
    with pytest.raises(NotAuthenticated):
        serve_feed(node["dd"], node["own"], body, now=now, remote="192.0.2.1")


def test_verified_pub_cache_is_keyed_by_the_authenticated_static_key(
        node: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The asker's .pub is verified once per (static key, document): a repeat asker skips
    the Ed25519 check; a request carrying that same document under another static key
    misses the cache (its document is verified again) and fails."""
    parsed: list[bytes] = []
    real = keys.parse_pub

    def spy(data: bytes | str, **kw: Any) -> keys.PublicKey:
        if data == ASKER.own.pub_document:    # not the owner's own (its key table)
            parsed.append(data)
        return real(data, **kw)

    ask(node)                                  # ASKER authenticated once: remembered
    now = int(time.time())
    again, pending = request(ASKER, node_owner(node), now=now)
    monkeypatch.setattr(keys, "parse_pub", spy)
    raw = serve_feed(node["dd"], node["own"], again, now=now, remote="192.0.2.1").read()
    assert exchange.open_response(raw, pending, max_bytes=10**7).owner_pub \
        == node["key"].to_bytes() and parsed == []
    monkeypatch.undo()
    liar = dataclasses.replace(ASKER, own=dataclasses.replace(
        ASKER.own, transport_secret=MALLORY.own.transport_secret))
    hs = noise.HandshakeState.initiator(exchange.prologue(node["own"]), liar.static,
                                        node["key"].transport_public)
    body = b"\x02" + exchange.key_id(node["key"].transport_public) + hs.write_message(
        exchange.request_payload(ASKER.own.pub_document, exchange.encode_request(
            owner_fp=node["own"], epoch=None, after=0, summary=False, limit=10,
            nonce=os.urandom(24), time=now)))
    monkeypatch.setattr(keys, "parse_pub", spy)
    with pytest.raises(NotAuthenticated):
        serve_feed(node["dd"], node["own"], body, now=now, remote="192.0.2.1")
    assert parsed == [ASKER.own.pub_document]


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


def test_blocked_asker_gets_an_ordinary_empty_page(node: dict[str, Any]) -> None:
    dd = node["dd"]
    Identities(dd).block(MALLORY.fp)
    try:
        blocked, pending = ask_raw(node, MALLORY)
    finally:
        Identities(dd).unblock(MALLORY.fp)
    got = exchange.open_response(blocked, pending, max_bytes=10**6)
    assert (got.posts, got.more) == ([], False)
    nothing_new, _ = ask_raw(node, party(), after=exchange.MAX_TIME)
    assert len(blocked) == len(nothing_new)
    assert ask(node, MALLORY).posts  # served again once unblocked


def test_a_request_is_served_once(node: dict[str, Any]) -> None:
    now = int(time.time())
    body, _ = request(ASKER, node_owner(node), now=now)
    serve_feed(node["dd"], node["own"], body, now=now).read()
    with pytest.raises(Replay):
        serve_feed(node["dd"], node["own"], body, now=now)
    fresh = DataDir(node["dd"].root, {}, environ={})  # another process's view after a restart
    with pytest.raises(Replay):
        serve_feed(fresh, node["own"], body, now=now)


def test_stale_request_is_refused_before_its_nonce_is_recorded(node: dict[str, Any]) -> None:
    store = NonceStore(node["dd"])
    body, _ = request(ASKER, node_owner(node), now=NOW)
    before = store.count()
    with pytest.raises(Replay):
        serve_feed(node["dd"], node["own"], body, now=NOW + WINDOW + 1)
    assert store.count() == before


def test_response_size_bound_cuts_the_page(tmp_path: Path) -> None:
    dd = make_datadir(tmp_path / "n", max_post_bytes=5000)
    ids = Identities(dd)
    own = ids.create(PASSWORD)
    seed = ids.open_seed(own, PASSWORD)
    raws = [build_post(seed, {"CREATED_TIME": NOW + n, "TEXT": str(n) * 3000})
            for n in range(3)]
    Ingestor(dd, now=NOW + 10).ingest_many(raws, author=own)
    head = noise.MESSAGE2_OVERHEAD + len(ids.pub_document(own))
    limit = pages.body_bytes(head, pages.stream_bytes([len(raws[0]), len(raws[1])]))
    limit = max(limit, 5000 + 4 + 4096)
    small = DataDir(dd.root, {"max_response_bytes": limit, "max_post_bytes": 5000}, environ={})
    tiny = {"own": own, "key": ids.public_key(own), "dd": small}
    raw, pending = ask_raw(tiny)
    got = exchange.open_response(raw, pending, max_bytes=limit)
    assert (got.posts, got.more) == (raws[:2], True) and len(raw) == limit


# --- attack 4: one answer, same work, no cache read before authentication ----------------

def _non_authenticating_bodies(node: dict[str, Any]) -> list[bytes]:
    good_for_mallory, _ = request(ASKER, MALLORY)         # a real request, to another key
    return [b"", os.urandom(64), os.urandom(exchange.REQUEST_BYTES),
            b"\x01" + os.urandom(exchange.REQUEST_BYTES - 1), good_for_mallory,
            request(ASKER, node_owner(node))[0][:-1]]


def test_attack4_one_answer_whatever_the_fingerprint(node: dict[str, Any]) -> None:
    """Hosted, known but not hosted, blocked, unknown: one exception, one message."""
    dd, ids = node["dd"], Identities(node["dd"])
    blocked = party()
    ids.import_pub(blocked.own.pub_document)
    ids.block(blocked.fp)
    answers = set()
    for fp in (node["own"], MALLORY.fp, blocked.fp, party().fp):
        for body in _non_authenticating_bodies(node):
            with pytest.raises(NotAuthenticated) as err:
                serve_feed(dd, fp, body, remote="192.0.2.7")
            answers.add((type(err.value), err.value.message, err.value.field, err.value.status))
    assert answers == {(NotAuthenticated, "The feed request could not be authenticated.",
                        None, 400)}


def test_attack4_same_work_with_a_decoy_and_no_cache_read(node: dict[str, Any],
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """The structure: exactly one slot tried for every request (the key id's, else a
    decoy), decoys for a fingerprint not hosted here, nothing about the asker (its
    .pub, pins, blocks) read before it authenticates; only the own identities' key
    table, whatever the fingerprint."""
    tried: list[bytes] = []
    real_responder = noise.HandshakeState.responder
    read: list[str] = []
    own = set(Identities(node["dd"]).own_fingerprints())

    def spy_responder(prologue: bytes, s: noise.Keypair, **kw: Any) -> noise.HandshakeState:
        tried.append(s.public)
        return real_responder(prologue, s, **kw)

    def spy(name: str) -> Any:
        real = getattr(Identities, name)

        def hook(self: Identities, fp: str, *args: Any, **kw: Any) -> Any:
            read.append(fp)
            return real(self, fp, *args, **kw)
        return hook

    def no_authentication(*args: Any) -> Any:
        raise AssertionError("authenticate() reached")

    monkeypatch.setattr(noise.HandshakeState, "responder", staticmethod(spy_responder))
    monkeypatch.setattr(feeds, "authenticate", no_authentication)
    for name in ("public_key", "exists", "is_blocked", "pub_document", "private_key"):
        monkeypatch.setattr(Identities, name, spy(name))
    decoys = {k.public for k in ownkeys.served(node["dd"], party().fp).slots}
    hosted = {k.public for k in ownkeys.served(node["dd"], node["own"]).slots}
    assert node["key"].transport_public in hosted and len(decoys) == exchange.KEY_SLOTS
    for fp, expected in ((node["own"], hosted), (MALLORY.fp, decoys), (party().fp, decoys)):
        for body in _non_authenticating_bodies(node):
            tried.clear()
            with pytest.raises(NotAuthenticated):
                serve_feed(node["dd"], fp, body, remote="192.0.2.8")
            assert len(tried) == 1 and tried[0] in expected | {exchange._MISS.public}
    assert set(read) <= own


# --- attack 7: budgets -------------------------------------------------------------------

def test_attack7_prefix_budget_is_checked_before_decryption(tmp_path: Path) -> None:
    dd = make_datadir(tmp_path / "n", budget_prefix_requests=3, budget_window=60)
    t0 = NOW - NOW % 60
    for _ in range(3):
        with pytest.raises(NotAuthenticated):
            serve_feed(dd, "ab" * 32, b"junk", remote="198.51.100.9", now=t0)
    with pytest.raises(RateLimited) as err:
        serve_feed(dd, "ab" * 32, b"junk", remote="198.51.100.200", now=t0 + 5)  # same /24
    assert err.value.retry_after == 55 and err.value.status == 429
    with pytest.raises(NotAuthenticated):                 # another /24, and the next window
        serve_feed(dd, "ab" * 32, b"junk", remote="198.51.101.9", now=t0 + 5)
    with pytest.raises(NotAuthenticated):
        serve_feed(dd, "ab" * 32, b"junk", remote="198.51.100.9", now=t0 + 60)


def test_ipv6_prefixes_count_per_64_and_per_48(tmp_path: Path) -> None:
    assert prefixes("2001:db8:1:2:3::4") == ["net6:2001:db8:1:2::/64", "net6:2001:db8:1::/48"]
    assert prefixes("::ffff:192.0.2.77") == ["net4:192.0.2.0/24"]
    assert prefixes("not an address") == ["other:not an address"]
    dd = make_datadir(tmp_path / "n", budget_prefix_requests=100, budget_prefix48_requests=2)
    for n in range(2):
        with pytest.raises(NotAuthenticated):
            serve_feed(dd, "ab" * 32, b"x", remote=f"2001:db8:1:{n}::1", now=NOW)
    with pytest.raises(RateLimited):          # a third /64 in the same /48
        serve_feed(dd, "ab" * 32, b"x", remote="2001:db8:1:9::1", now=NOW)


def test_budget_table_full_in_one_window_fails_closed(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budgets, "SLOTS", 4)
    monkeypatch.setattr(budgets, "PROBES", 4)
    dd = make_datadir(tmp_path / "n")
    store = Budgets(dd)
    for n in range(4):
        store.spend([budgets.Charge(f"k{n}", 1, 0, 10, 0)], now=NOW)
    with pytest.raises(RateLimited):
        store.spend([budgets.Charge("k9", 1, 0, 10, 0)], now=NOW)
    assert store.used("k1", now=NOW) == (1, 0)
    store.spend([budgets.Charge("k9", 1, 0, 10, 0)], now=NOW + 3600)   # old windows free up
    assert store.used("k9", now=NOW + 3600) == (1, 0)


def test_a_refused_spend_spends_nothing(tmp_path: Path) -> None:
    store = Budgets(make_datadir(tmp_path / "n"))
    ok, over = budgets.Charge("a", 1, 100, 5, 1000), budgets.Charge("b", 1, 0, 0, 0)
    with pytest.raises(RateLimited):
        store.spend([ok, over], now=NOW)
    assert store.used("a", now=NOW) == (0, 0)
    store.spend([ok], now=NOW)
    assert store.used("a", now=NOW) == (1, 100)


def test_s2_served_askers_on_a_contacts_prefix_cannot_lock_the_contact_out(
        node: dict[str, Any]) -> None:
    """Review finding S2: the prefix budget counts only requests that get no page.

    Strangers and other contacts on the contact's /24 (or /64) are served well past
    the prefix budget, each against its own asker budget, and the contact is still
    served; requests that fail (here: not authenticated, replayed) spend the
    prefix, and once it is spent the prefix is refused before any decryption.
    """
    dd = DataDir(node["dd"].root, {"budget_prefix_requests": 3,
                                   "budget_prefix48_requests": 3,
                                   "budget_asker_requests": 10**6}, environ={})
    for net in ("198.51.100.", "2001:db8:5:6::"):
        strangers = [party() for _ in range(4)]
        for i in range(8):                          # 8 > 3 served requests on the prefix
            ask_raw(node, strangers[i % 4], dd=dd, remote=f"{net}{10 + i}")
            ask_raw(node, MALLORY, dd=dd, remote=f"{net}{30 + i}")
        assert ask(node, ASKER, dd=dd, remote=f"{net}99").owner_pub == node["key"].to_bytes()
        now = int(time.time())
        replayed, _ = request(ASKER, node_owner(node), now=now)
        serve_feed(dd, node["own"], replayed, now=now, remote=f"{net}99").read()
        for body, error in ((replayed, Replay), (b"junk", NotAuthenticated),
                            (replayed, Replay)):    # no page: each counted on the prefix
            with pytest.raises(error):
                serve_feed(dd, node["own"], body, now=now, remote=f"{net}7")
        with pytest.raises(RateLimited):            # 3 failures: refused, undecrypted
            ask(node, ASKER, dd=dd, remote=f"{net}99")


def test_attack7_asker_byte_budget(node: dict[str, Any]) -> None:
    small = DataDir(node["dd"].root, {"budget_asker_bytes": 2048,
                                      "budget_prefix_requests": 10**6,
                                      "budget_asker_requests": 10**6}, environ={})
    someone = party()
    Identities(small).import_pub(someone.own.pub_document)
    ask_raw(node, someone, dd=small)
    ask_raw(node, someone, dd=small)              # 2 x 1 KiB: the budget, exactly
    with pytest.raises(RateLimited) as err:
        ask_raw(node, someone, dd=small)
    assert 1 <= (err.value.retry_after or 0) <= small.settings["budget_window"]


def test_served_slots_follow_a_rotation(node: dict[str, Any]) -> None:
    dd, ids = node["dd"], Identities(node["dd"])
    before = ownkeys.served(dd, node["own"]).slots[0].public
    ids.rotate_transport(node["own"], PASSWORD)
    ownkeys.forget()
    after = [k.public for k in ownkeys.served(dd, node["own"]).slots]
    assert after[1] == before and after[0] != before       # current, then the previous
    old = node_owner(node)                                  # an asker still pinning the old key
    assert ask(node, ASKER).owner_pub == ids.pub_document(node["own"])
    assert old.key.transport_public == before
    node["key"] = ids.public_key(node["own"])
    got = ask(node)
    assert got.owner_pub == node["key"].to_bytes()


# --- keys of others, inside the exchange -----------------------------------------------

def test_keys_of_reshared_authors_are_served_only_to_who_received_them(
        tmp_path: Path) -> None:
    """The seed's "ask the user that gave you the content", without an oracle: the owner
    hands out the key of X only to an asker who may see a reshare of X's post."""
    dd = make_datadir(tmp_path / "n")
    ids = Identities(dd)
    own = ids.create(PASSWORD)
    seed = ids.open_seed(own, PASSWORD)
    x, y, friend = party(), party(), party()
    for p in (x, y, friend):
        ids.import_pub(p.own.pub_document)
    by_x = build_post(x.seed, {"CREATED_TIME": NOW, "TEXT": "x's words"})
    by_y = build_post(y.seed, {"CREATED_TIME": NOW, "TEXT": "y's words"})
    Ingestor(dd, now=NOW + 100).ingest_many([
        build_post(seed, {"CREATED_TIME": NOW + 1, "RESHARED_POST": by_x.decode()}),
        build_post(seed, {"CREATED_TIME": NOW + 2, "RESHARED_POST": by_y.decode(),
                          "TO_FINGERPRINT": friend.fp})], author=own)
    node = {"own": own, "key": ids.public_key(own), "dd": dd}

    def keys_for(asker: Party, wanted: list[str]) -> list[bytes]:
        now = int(time.time())
        body, pending = exchange.build_request(
            asker=asker.own, owner_fp=own, owner_transport=node["key"].transport_public,
            after=exchange.MAX_TIME, limit=1, now=now, want_keys=wanted)
        got = exchange.open_response(serve_feed(dd, own, body, now=now).read(), pending,
                                     max_bytes=10**6)
        assert got.posts == []
        return got.keys

    assert keys_for(friend, [x.fp, y.fp]) == sorted([x.own.pub_document, y.own.pub_document],
                                                    key=lambda d: keys.parse_pub(d).fingerprint)
    assert keys_for(party(), [x.fp, y.fp]) == [x.own.pub_document]   # a stranger: public only
    assert keys_for(friend, [ASKER.fp]) == []                          # held, never reshared
    for bad in ([x.fp] * 2, [party().fp for _ in range(exchange.MAX_KEYS + 1)], ["x"]):
        with pytest.raises(BadInput):
            keys_for(friend, bad)


# --- the optional members (docs/protocol.md, Invites and several nodes of one identity) -------

def test_the_optional_invite_and_reply_members_round_trip() -> None:
    reply = "http://" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ":65535"
    body, _ = exchange.build_request(asker=ASKER.own, owner_fp=OWNER.fp,
                                     owner_transport=OWNER.key.transport_public, after=0,
                                     limit=10, now=NOW, invite=bytes(range(16)),
                                     reply=reply)
    assert len(body) == exchange.REQUEST_BYTES  # the longest address fits in the same size
    opened = exchange.open_request(body, owner_fp=OWNER.fp, slots=slots())
    req = exchange.parse_request(opened, now=NOW, window=WINDOW, max_limit=10)
    assert (req.invite, req.reply) == (bytes(range(16)), reply)
    plain = exchange.parse_request(exchange.open_request(request()[0], owner_fp=OWNER.fp,
                                                         slots=slots()),
                                   now=NOW, window=WINDOW, max_limit=10)
    assert (plain.invite, plain.reply) == (None, None)


@pytest.mark.parametrize("change", [{"invite": "c2hvcnQ"}, {"invite": 7}, {"invite": None},
                                    {"reply": "ftp://host:1"}, {"reply": 8889},
                                    {"reply": "http://host:8889/path"}, {"invites": "x"}])
def test_the_optional_members_are_checked(change: dict[str, Any]) -> None:
    _refused_with(change)


@pytest.mark.parametrize("where", [0, 1, -1])
def test_a_request_payload_whose_padding_is_not_zero_does_not_open(where: int) -> None:
    """The padding after the request JSON must be zeros, its first byte and its last."""
    json_doc = exchange.encode_request(owner_fp=OWNER.fp, epoch=None, after=0, summary=False,
                                       limit=10, nonce=bytes(24), time=NOW)
    pub = ASKER.own.pub_document
    payload = bytearray(exchange.request_payload(pub, json_doc))
    end = 2 + len(pub) + 2 + len(json_doc)
    assert not any(payload[end:])
    payload[end if where == 0 else end + 1 if where == 1 else len(payload) - 1] = 1
    hs = noise.HandshakeState.initiator(exchange.prologue(OWNER.fp), ASKER.static,
                                        OWNER.key.transport_public)
    body = (b"\x02" + exchange.key_id(OWNER.key.transport_public)
            + hs.write_message(bytes(payload)))
    with pytest.raises(NotAuthenticated):
        exchange.open_request(body, owner_fp=OWNER.fp, slots=slots())


@pytest.mark.parametrize("where", [0, 500, 1023])
def test_a_page_stream_whose_padding_is_not_zero_is_refused(where: int) -> None:
    stream = bytearray(EPOCH1 + POST_AT + b"\x00\x00" + bytes(1024))
    assert pages.parse_stream(bytes(stream)).posts == [(7, b"p")]
    stream[len(EPOCH1) + len(POST_AT) + 2 + where] = 0x80
    with pytest.raises(BadResponse, match="padding"):
        pages.parse_stream(bytes(stream))


def test_the_smallest_peer_max_body_admits_a_feed_request(tmp_path: Path) -> None:
    """A node whose peer_max_body is below a feed request's size could never be synced
    with (every request a 413; found by the end-of-stop tester): the setting's floor is
    above it, and one byte under the floor is refused when the settings are read."""
    from app.core.base import config
    floor = next(s for s in config.SETTINGS if s.name == "peer_max_body").low
    assert floor is not None and exchange.REQUEST_BYTES <= floor
    assert config.load(tmp_path, overrides={"peer_max_body": floor})["peer_max_body"] == floor
    with pytest.raises(BadInput, match="peer_max_body"):
        config.load(tmp_path, overrides={"peer_max_body": floor - 1})
