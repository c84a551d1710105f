"""Large batches check signatures on all cores; the outcome must equal one-by-one ingest."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.core.base import crypto, fsio
from app.core.base.datadir import DataDir
from app.core.identity import keys
from app.core.identity.identities import Identities
from app.core.posts import codec as posts
from app.core.posts.ingest import Ingestor

SEED_A, SEED_B = b"\x31" * 32, b"\x32" * 32


def _node(root: Path) -> DataDir:
    dd = DataDir(root, environ={})
    dd.initialise()
    for seed in (SEED_A, SEED_B):
        pub = keys.certify(seed, crypto.transport_public(seed[::-1]))
        Identities(dd).import_pub(pub.to_bytes())
    return dd


def _flip_sig(raw: bytes) -> bytes:
    last = raw[-2:-1]
    return raw[:-2] + (b"A" if last != b"A" else b"B") + raw[-1:]


def test_a_parallel_batch_rejects_exactly_what_single_ingest_rejects(tmp_path: Path) -> None:
    now = int(time.time())
    raws = [posts.build_post(SEED_A, {"TEXT": f"p{i}", "CREATED_TIME": now - i})
            for i in range(150)]
    raws[3] = _flip_sig(raws[3])                       # bad signature
    raws[70] = posts.build_post(SEED_B, {"TEXT": "x", "CREATED_TIME": now})  # wrong author
    raws[71] = b"not a post"                             # malformed
    raws[149] = _flip_sig(raws[149])
    raws[100] = raws[99]                                 # the same post twice
    fp_a = keys.certify(SEED_A, crypto.transport_public(SEED_A[::-1])).fingerprint
    batch = Ingestor(_node(tmp_path / "batch")).ingest_many(raws, author=fp_a)
    single_dd = _node(tmp_path / "single")
    expected = []
    for i, raw in enumerate(raws):
        try:
            Ingestor(single_dd).ingest(raw, author=fp_a)
        except Exception as exc:  # noqa: BLE001 - we compare the reasons
            expected.append((i, exc.reason))  # type: ignore[attr-defined]
    assert batch.rejected == expected
    assert [r for _, r in expected] == ["bad_signature", "wrong_author", "malformed",
                                        "bad_signature"]
    stored = {p.name for p in (tmp_path / "batch" / "posts" / fp_a).iterdir()}
    assert stored == {p.name for p in (tmp_path / "single" / "posts" / fp_a).iterdir()}
    assert len(stored) == 150 - 4 - 1


@pytest.mark.parametrize("fallback", [False, True])
def test_rename_noreplace_never_replaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         fallback: bool) -> None:
    if fallback:
        monkeypatch.setattr(fsio, "_renameat2", None)
    d = tmp_path / f"fb{fallback}"
    d.mkdir()
    (d / "old").write_bytes(b"old")
    (d / "new").write_bytes(b"new")
    with pytest.raises(FileExistsError):
        fsio.rename_noreplace(str(d / "new"), str(d / "old"))
    assert (d / "old").read_bytes() == b"old"
    (d / "new2").write_bytes(b"new2")
    fsio.rename_noreplace(str(d / "new2"), str(d / "fresh"))
    assert (d / "fresh").read_bytes() == b"new2" and not (d / "new2").exists()


@pytest.mark.parametrize("unnamed", [True, False])
def test_batch_writer_both_ways(tmp_path: Path, unnamed: bool) -> None:
    writer = fsio.BatchWriter(tmp_path)
    writer._tmpfile_ok = unnamed and writer._tmpfile_ok
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "taken").write_bytes(b"old")
    for i in range(300):  # more than _MAX_OPEN: named in two flushes
        writer.add(tmp_path / "d" / f"f{i}", b"x%d" % i, mtime=1_000_000 + i)
    writer.add(tmp_path / "d" / "taken", b"new")
    written = writer.commit()
    assert len(written) == 300 and tmp_path / "d" / "taken" not in written
    assert (tmp_path / "d" / "taken").read_bytes() == b"old"
    assert (tmp_path / "d" / "f7").read_bytes() == b"x7"
    assert int((tmp_path / "d" / "f7").stat().st_mtime) == 1_000_007
    assert sorted(p.name for p in (tmp_path / "d").iterdir() if p.name.startswith(".")) == []


def test_an_aborted_batch_leaves_nothing(tmp_path: Path) -> None:
    writer = fsio.BatchWriter(tmp_path)
    for i in range(10):
        writer.add(tmp_path / "d" / f"f{i}", b"data")
    writer.abort()
    assert list((tmp_path / "d").iterdir()) == []
