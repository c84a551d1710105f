"""app/core/ingest.py: verification order, storage, batches, keys and concurrency.

Every rejection asserts the reason and that nothing at all appeared under posts/.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest

from app.core.base import crypto, fsio
from app.core.base.datadir import DataDir
from app.core.base.encoding import b64e
from app.core.base.errors import BadPost, PeerError, Reason
from app.core.identity import keys
from app.core.identity.identities import Identities
from app.core.posts.codec import build_post
from app.core.posts.index import Index
from app.core.posts.ingest import Ingestor, post_path
from app.core.posts.reconcile import verify_file
from tests.helpers.datadirs import make_datadir

T0 = 1_700_000_000
SEEDS = {n: hashlib.sha256(b"ingest test author " + n.encode()).digest() for n in "ABCD"}
PUBS = {n: keys.certify(s, crypto.transport_public(hashlib.sha256(b"t" + s).digest()))
        for n, s in SEEDS.items()}
FP = {n: p.fingerprint for n, p in PUBS.items()}
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


class FakeIndex:
    def __init__(self, fail: BaseException | None = None) -> None:
        self.added: list[Any] = []
        self.fail = fail

    def add_many(self, posts: Any) -> int:
        if self.fail:
            raise self.fail
        self.added.extend(posts)
        return len(self.added)


def post(author: str = "A", **attrs: Any) -> bytes:
    return build_post(SEEDS[author], {"CREATED_TIME": T0, "TEXT": "hello", **attrs})


def signed(payload: bytes, author: str = "A", signer: str | None = None) -> bytes:
    """Any payload bytes as a post by ``author``, signed by ``signer`` (default: author)."""
    p1 = b64e(payload)
    sig = b64e(crypto.sign(SEEDS[signer or author], crypto.CTX_POST, p1.encode()))
    return f"{p1}.{FP[author]}.{sig}".encode()


def reshare_chain(levels: int) -> bytes:
    raw = post(TEXT="the original")
    for i in range(levels):
        raw = post(TEXT=f"level {i + 1}", SHARED_POST=raw.decode())
    return raw


def make_node(root: Path, known: str = "AB", **settings: Any) -> tuple[DataDir, Ingestor]:
    dd = make_datadir(root, **settings)
    for name in known:
        Identities(dd).import_pub(PUBS[name].to_bytes())
    return dd, Ingestor(dd, index=FakeIndex(), now=T0)


@pytest.fixture
def node(tmp_path: Path) -> tuple[DataDir, Ingestor]:
    return make_node(tmp_path / "node")


def everything_under(dd: DataDir) -> list[str]:
    return sorted(str(p.relative_to(dd.posts)) for p in dd.posts.rglob("*"))


def rejected(ingestor: Ingestor, raw: bytes, **kw: Any) -> str:
    with pytest.raises(BadPost) as err:
        ingestor.ingest(raw, **kw)
    assert everything_under(ingestor.dd) == []
    assert err.value.message  # a message a user can act on
    return err.value.reason


# --- accepting ------------------------------------------------------------------------

def test_ingest_stores_the_exact_bytes_at_fp_sha_with_mtime(node: Any) -> None:
    dd, ingestor = node
    raw = post(TEXT="first")
    result = ingestor.ingest(raw)
    path = dd.posts / FP["A"] / hashlib.sha1(raw).hexdigest()
    assert path == post_path(dd, FP["A"], result.sha1)
    assert path.read_bytes() == raw
    assert path.stat().st_mtime == T0 == result.created
    assert result.new and result.author == FP["A"] and result.post.raw == raw
    assert everything_under(dd) == [FP["A"], f"{FP['A']}/{result.sha1}"]
    assert ingestor.index.added == [result.post]  # type: ignore[union-attr]


def test_same_post_twice_is_a_no_op(node: Any) -> None:
    dd, ingestor = node
    raw = post()
    first = ingestor.ingest(raw)
    path = post_path(dd, FP["A"], first.sha1)
    before = path.stat()
    again = ingestor.ingest(raw, author=FP["A"], name=first.sha1)
    assert not again.new and again.sha1 == first.sha1
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    batch = ingestor.ingest_many([raw, raw])
    assert [r.new for r in batch.accepted] == [False, False]
    assert path.stat().st_ino == before.st_ino


def test_ingest_many_mixed_batch(node: Any) -> None:
    dd, ingestor = node
    one, two = post(TEXT="one"), post("B", TEXT="two")
    tampered = one.replace(b"E", b"F", 1)
    batch = ingestor.ingest_many([one, tampered, two, one, b"junk"])
    assert [(r.sha1, r.new) for r in batch.accepted] == [
        (hashlib.sha1(one).hexdigest(), True), (hashlib.sha1(two).hexdigest(), True),
        (hashlib.sha1(one).hexdigest(), False)]
    assert [i for i, _ in batch.rejected] == [1, 4]
    assert batch.rejected[1][1] == Reason.MALFORMED
    for r in batch.accepted:
        assert post_path(dd, r.author, r.sha1).read_bytes() == r.post.raw
        assert post_path(dd, r.author, r.sha1).stat().st_mtime == T0
    assert len(everything_under(dd)) == 4  # two folders, two files, no temporaries
    assert {p.sha1 for p in ingestor.index.added} == {r.sha1 for r in batch.accepted}


def test_ingest_many_with_an_expected_author(node: Any) -> None:
    _, ingestor = node
    batch = ingestor.ingest_many([post("A"), post("B")], author=FP["A"])
    assert len(batch.accepted) == 1 and batch.rejected == [(1, Reason.WRONG_AUTHOR)]


def test_ingest_many_all_rejected_writes_nothing(node: Any) -> None:
    dd, ingestor = node
    batch = ingestor.ingest_many([post("C"), b"", b"x.y.z", post()[:-2]])
    assert batch.accepted == [] and [r for _, r in batch.rejected] == [
        Reason.UNKNOWN_AUTHOR, Reason.MALFORMED, Reason.MALFORMED, Reason.BAD_BASE64]
    assert everything_under(dd) == []
    assert ingestor.ingest_many([]).accepted == []


# --- every rejection writes nothing ------------------------------------------------

def test_every_single_byte_change_is_rejected(node: Any) -> None:
    dd, ingestor = node
    raw = post(TEXT="tamper with me")
    for i in range(len(raw)):
        for new in {raw[i] ^ 1, ord("A") if raw[i] != ord("A") else ord("B")}:
            changed = raw[:i] + bytes([new]) + raw[i + 1:]
            batch = ingestor.ingest_many([changed])
            assert batch.accepted == [], (i, new)
    assert everything_under(dd) == []


CASES: dict[str, tuple[Callable[[], tuple[bytes, dict[str, Any]]], str]] = {
    "wrong name": (lambda: (post(), {"name": "0" * 40}), Reason.WRONG_NAME),
    "uppercase name": (lambda: (post(), {"name": hashlib.sha1(post()).hexdigest().upper()}),
                       Reason.WRONG_NAME),
    "wrong directory": (lambda: (post(), {"author": FP["B"]}), Reason.WRONG_AUTHOR),
    "signed by another key": (lambda: (signed(b'{"CREATED_TIME":1}', "A", signer="B"), {}),
                              Reason.BAD_SIGNATURE),
    "unknown author": (lambda: (post("C"), {}), Reason.UNKNOWN_AUTHOR),
    "bad key name": (lambda: (signed(b'{"CREATED_TIME":1,"mood_FEELING":"x"}'), {}),
                     Reason.BAD_KEY),
    "bad key in unknown type": (lambda: (signed(b'{"CREATED_TIME":1,"A__FEELING":"x"}'), {}),
                                Reason.BAD_KEY),
    "duplicate key": (lambda: (signed(b'{"CREATED_TIME":1,"CREATED_TIME":1}'), {}),
                      Reason.BAD_JSON),
    "no created time": (lambda: (signed(b'{"TEXT":"x"}'), {}), Reason.NO_CREATED_TIME),
    "boolean created time": (lambda: (signed(b'{"CREATED_TIME":true}'), {}),
                             Reason.NO_CREATED_TIME),
    "padded base64": (lambda: (post().replace(b".", b"=.", 1), {}), Reason.BAD_BASE64),
    "standard base64 alphabet": (lambda: (signed(b'{"CREATED_TIME":1,"TEXT":"\xfb\xff"}')
                                          .replace(b"-", b"+").replace(b"_", b"/"), {}),
                                 Reason.BAD_BASE64),
    "bad magic bytes": (lambda: (post(PHOTO_PNG=b64e(JPEG)), {}), Reason.BAD_MEDIA),
    "media not base64url": (lambda: (post(PHOTO_JPG="/9j/4AAQ"), {}), Reason.BAD_MEDIA),
    "bad fingerprint value": (lambda: (post(TO_FINGERPRINT=FP["B"].upper()), {}),
                              Reason.BAD_ATTRIBUTE),
    "unknown type with a null": (lambda: (signed(b'{"CREATED_TIME":1,"X_NEW":null}'), {}),
                                 Reason.BAD_ATTRIBUTE),
    "nested reshare with a bad signature": (
        lambda: (post(SHARED_POST=signed(b'{"CREATED_TIME":1}', "B", signer="A").decode()), {}),
        Reason.BAD_RESHARE),
    "nested reshare by an unknown author": (
        lambda: (post(SHARED_POST=post("C").decode()), {}), Reason.BAD_RESHARE),
    "nested reshare with bad media": (
        lambda: (post(SHARED_POST=post("B", X_GIF=b64e(PNG)).decode()), {}),
        Reason.BAD_RESHARE),
    "nested reshare from the future": (
        lambda: (post(SHARED_POST=post("B", CREATED_TIME=T0 + 10_000).decode()), {}),
        Reason.BAD_RESHARE),
    "deep nesting": (lambda: (reshare_chain(5), {}), Reason.TOO_DEEP),
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_rejections_write_nothing(node: Any, case: str) -> None:
    make, reason = CASES[case]
    raw, kw = make()
    assert rejected(node[1], raw, **kw) == reason
    if not kw:  # the same through a batch
        assert node[1].ingest_many([raw]).rejected == [(0, reason)]
        assert everything_under(node[0]) == []


def test_size_cap_at_the_edge(tmp_path: Path) -> None:
    raw = post(TEXT="x" * 1000)
    _, small = make_node(tmp_path / "small", max_post_bytes=len(raw) - 1)
    assert rejected(small, raw) == Reason.TOO_LARGE
    dd, exact = make_node(tmp_path / "exact", max_post_bytes=len(raw))
    assert exact.ingest(raw).new
    assert post_path(dd, FP["A"], hashlib.sha1(raw).hexdigest()).read_bytes() == raw


def test_future_time_at_the_edge(node: Any) -> None:
    dd, ingestor = node
    skew = dd.settings["max_time_skew"]
    assert rejected(ingestor, post(CREATED_TIME=T0 + skew + 1)) == Reason.FUTURE_TIME
    assert ingestor.ingest(post(CREATED_TIME=T0 + skew)).new
    assert ingestor.ingest(post(CREATED_TIME=0)).new  # the past has no limit


def test_now_may_be_a_function(tmp_path: Path) -> None:
    dd, _ = make_node(tmp_path)
    clock = [T0 - 1000]
    ingestor = Ingestor(dd, index=FakeIndex(), now=lambda: clock[0])
    with pytest.raises(BadPost):
        ingestor.ingest(post())
    clock[0] = T0
    assert ingestor.ingest(post()).new


def test_nesting_at_the_depth_limit(tmp_path: Path) -> None:
    dd, ingestor = make_node(tmp_path)
    limit = dd.settings["max_reshare_depth"]
    result = ingestor.ingest(reshare_chain(limit))
    assert result.new and result.post.reshared is not None
    assert rejected(Ingestor(make_node(tmp_path / "b")[0], now=T0, index=FakeIndex()),
                    reshare_chain(limit + 1)) == Reason.TOO_DEEP
    _, shallow = make_node(tmp_path / "c", max_reshare_depth=1)
    assert rejected(shallow, reshare_chain(2)) == Reason.TOO_DEEP
    assert shallow.ingest(reshare_chain(1)).new


def test_reshared_post_is_not_stored(node: Any) -> None:
    dd, ingestor = node
    inner = post("B", TEXT="inner")
    outer = ingestor.ingest(post(SHARED_POST=inner.decode()))
    assert everything_under(dd) == [FP["A"], f"{FP['A']}/{outer.sha1}"]


# --- the order of the checks ---------------------------------------------------------

def test_checks_run_in_the_documented_order(tmp_path: Path) -> None:
    bad_json_bad_sig = signed(b"not json", "A", signer="B")
    bad_json = signed(b"not json")
    bad_attr_future = post(TO_FINGERPRINT="x", CREATED_TIME=T0 + 10_000)
    raw = post()
    dd, ingestor = make_node(tmp_path, max_post_bytes=len(bad_json_bad_sig) - 1)
    assert rejected(ingestor, bad_json_bad_sig) == Reason.TOO_LARGE  # size before all
    _, ingestor = make_node(tmp_path / "2")
    assert rejected(ingestor, (raw + b"x").replace(b".", b"..", 1),
                    author=FP["B"]) == Reason.MALFORMED  # structure before author
    assert rejected(ingestor, bad_json_bad_sig, author=FP["B"]) == Reason.WRONG_AUTHOR
    assert rejected(ingestor, bad_json_bad_sig) == Reason.BAD_SIGNATURE  # sig before JSON
    assert rejected(ingestor, bad_json, name="0" * 40) == Reason.WRONG_NAME  # name before JSON
    assert rejected(ingestor, bad_attr_future) == Reason.FUTURE_TIME  # time before types
    Identities(ingestor.dd).block(FP["A"])
    assert rejected(ingestor, post(TO_FINGERPRINT="x")) == Reason.BAD_ATTRIBUTE  # types first
    assert rejected(ingestor, raw) == Reason.BLOCKED


def test_blocked_authors_and_blocked_reshared_authors(node: Any) -> None:
    dd, ingestor = node
    Identities(dd).block(FP["B"])
    assert rejected(ingestor, post("B")) == Reason.BLOCKED
    assert rejected(ingestor, post(SHARED_POST=post("B").decode())) == Reason.BLOCKED
    assert ingestor.verify(post("B"), check_blocked=False).author == FP["B"]


# --- keys -----------------------------------------------------------------------------

def test_key_lookup_imports_a_matching_key_once_per_batch(node: Any) -> None:
    dd, _ = node
    asked: list[str] = []

    def lookup(fp: str) -> bytes | None:
        asked.append(fp)
        return PUBS["C"].to_bytes()
    ingestor = Ingestor(dd, index=FakeIndex(), key_lookup=lookup, now=T0)
    batch = ingestor.ingest_many([post("C", TEXT="1"), post("C", TEXT="2")])
    assert len(batch.accepted) == 2 and asked == [FP["C"]]
    assert Identities(dd).pub_path(FP["C"]).read_bytes() == PUBS["C"].to_bytes()


def test_key_lookup_for_a_reshared_author(node: Any) -> None:
    dd, _ = node
    ingestor = Ingestor(dd, index=FakeIndex(), now=T0,
                        key_lookup={FP["C"]: PUBS["C"].to_bytes()}.get)
    result = ingestor.ingest(post(SHARED_POST=post("C").decode()))
    assert result.new and Identities(dd).exists(FP["C"])
    assert not (dd.posts / FP["C"]).exists()


@pytest.mark.parametrize("answer", ["other key", "garbage", "none", "error"])
def test_key_lookup_failures_mean_unknown_author(node: Any, answer: str) -> None:
    dd, _ = node

    def lookup(fp: str) -> bytes | None:
        if answer == "error":
            raise PeerError("unreachable")
        return {"other key": PUBS["D"].to_bytes(), "garbage": b"x", "none": None}[answer]
    ingestor = Ingestor(dd, index=FakeIndex(), key_lookup=lookup, now=T0)
    assert rejected(ingestor, post("C")) == Reason.UNKNOWN_AUTHOR
    assert not Identities(dd).exists(FP["C"]) and not Identities(dd).exists(FP["D"])


def test_no_key_is_fetched_for_a_blocked_author(tmp_path: Path) -> None:
    dd, _ = make_node(tmp_path, known="ABC")
    Identities(dd).block(FP["C"])
    Identities(dd).delete(FP["C"])  # the blocked copy stays
    asked: list[str] = []
    ingestor = Ingestor(dd, index=FakeIndex(), now=T0,
                        key_lookup=lambda fp: asked.append(fp) or PUBS["C"].to_bytes())
    assert rejected(ingestor, post("C")) == Reason.BLOCKED
    assert asked == []


def test_keys_used_are_touched(node: Any) -> None:
    dd, ingestor = node
    ids = Identities(dd)
    for name in "AB":
        os.utime(ids.pub_path(FP[name]), (1000, 1000))
    ingestor.ingest_many([post(SHARED_POST=post("B").decode()), post(TEXT="2")])
    assert ids.pub_path(FP["A"]).stat().st_mtime > 1000
    assert ids.pub_path(FP["B"]).stat().st_mtime > 1000


def test_a_damaged_pub_file_means_unknown_author(node: Any) -> None:
    dd, _ = node
    Identities(dd).pub_path(FP["B"]).write_bytes(b"damaged")
    assert rejected(Ingestor(dd, index=FakeIndex(), now=T0), post("B")) == Reason.UNKNOWN_AUTHOR


# --- files found on disk ----------------------------------------------------------------

def test_verify_file(node: Any) -> None:
    dd, ingestor = node
    result = ingestor.ingest(post())
    path = post_path(dd, FP["A"], result.sha1)
    found = verify_file(dd, path)
    assert found is not None and found.raw == result.post.raw
    Identities(dd).block(FP["A"])
    assert verify_file(dd, path) is not None  # blocked since: still a valid file
    other = post(TEXT="other")
    misplaced = dd.posts / FP["B"] / hashlib.sha1(other).hexdigest()
    misplaced.parent.mkdir()
    misplaced.write_bytes(other)
    assert verify_file(dd, misplaced) is None
    misnamed = dd.posts / FP["A"] / ("0" * 40)
    misnamed.write_bytes(other)
    assert verify_file(dd, misnamed) is None
    assert verify_file(dd, dd.posts / FP["A"] / "not-a-sha") is None
    assert verify_file(dd, dd.posts / FP["A"] / ("1" * 40)) is None  # missing
    damaged = bytearray(other)
    damaged[5] ^= 1
    right_name = dd.posts / FP["A"] / hashlib.sha1(bytes(damaged)).hexdigest()
    right_name.write_bytes(bytes(damaged))
    assert verify_file(dd, right_name) is None


# --- index and failures -------------------------------------------------------------------

def test_index_failure_does_not_lose_the_post(node: Any) -> None:
    dd, _ = node
    ingestor = Ingestor(dd, index=FakeIndex(sqlite3.OperationalError("locked")), now=T0)
    result = ingestor.ingest(post())
    assert post_path(dd, FP["A"], result.sha1).exists()


def test_the_default_index_indexes_what_is_ingested(node: Any) -> None:
    dd, _ = node
    ingestor = Ingestor(dd, now=T0)
    result = ingestor.ingest(post())
    assert result.new
    assert isinstance(ingestor.index, Index)
    assert ingestor.index.get(result.sha1) is not None


def test_a_failing_write_leaves_nothing_behind(node: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    dd, ingestor = node
    real_add = fsio.BatchWriter.add
    calls = []

    def add(self: fsio.BatchWriter, *a: Any, **kw: Any) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_add(self, *a, **kw)
    monkeypatch.setattr(fsio.BatchWriter, "add", add)
    with pytest.raises(OSError):
        ingestor.ingest_many([post(TEXT=str(i)) for i in range(5)])
    assert [p for p in dd.posts.rglob("*") if p.is_file()] == []


# --- several processes at once ----------------------------------------------------------

def _ingest_in_process(root: str, raws: list[bytes], start_at: float) -> list[bool]:
    dd = DataDir(Path(root), environ={})
    ingestor = Ingestor(dd, index=FakeIndex(), now=T0)
    while time.time() < start_at:
        time.sleep(0.001)
    half = len(raws) // 2
    first = ingestor.ingest_many(raws[:half])
    singles = [ingestor.ingest(raw).new for raw in raws[half:]]
    return [r.new for r in first.accepted] + singles


def test_several_processes_ingest_the_same_posts_at_once(tmp_path: Path) -> None:
    dd, _ = make_node(tmp_path, known="ABCD")
    raws = [post("ABCD"[i % 4], TEXT=f"post {i}") for i in range(240)]
    start_at = time.time() + 2
    with ProcessPoolExecutor(3, mp_context=get_context("spawn")) as pool:
        runs = [pool.submit(_ingest_in_process, str(dd.root), raws, start_at) for _ in range(3)]
        results = [f.result(timeout=120) for f in runs]
    # each post was written by exactly one of the processes
    assert [sum(col) for col in zip(*results, strict=True)] == [1] * len(raws)
    files = [p for p in dd.posts.rglob("*") if p.is_file()]
    assert len(files) == len(raws)
    assert not [p for p in files if fsio.is_temp_name(p.name)]
    assert all(verify_file(dd, p) is not None for p in files)
