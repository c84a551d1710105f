"""LAN discovery's blinded tags and announcement record (pure: nothing is multicast here;
tests/integration/test_netns.py runs the real thing inside namespaces)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.base import crypto
from app.core.network import lan

VECTORS = json.loads((Path(__file__).parents[2] / "data" / "lan" / "tags.json").read_text())


@pytest.mark.parametrize("case", VECTORS, ids=lambda c: f"{c['fingerprint'][:8]}-{c['day']}")
def test_known_answers(case: dict[str, str]) -> None:
    assert lan.tag(case["fingerprint"], case["day"]) == case["tag"]


def test_a_strangers_fingerprint_matches_no_announced_tag() -> None:
    """What an observer who knows only other fingerprints can match: nothing."""
    mine = ["4b1073a3c74e29a3" * 4, "1" * 64]
    day = "2026-11-30"
    announced = set(lan.tags_in(lan.txt_record(lan.padded_tags(mine, day, 8))))
    assert {lan.tag(fp, day) for fp in mine} <= announced
    for stranger in ("2" * 64, "00" * 32, "4b1073a3c74e29a3" * 3 + "4b1073a3c74e29a4"):
        assert lan.tag(stranger, day) not in announced
    # the same fingerprint on another day is another tag: yesterday's list tells nothing today
    assert lan.tag(mine[0], "2026-12-01") not in announced


def test_the_tag_list_has_a_fixed_size_whatever_the_number_of_identities() -> None:
    day = "2026-11-30"
    sizes = {len(lan.padded_tags([f"{i:064x}" for i in range(n)], day, 8)) for n in range(9)}
    assert sizes == {8}
    assert len(lan.padded_tags([f"{i:064x}" for i in range(9)], day, 8)) == 16
    record = lan.txt_record(lan.padded_tags([], day, 8))
    assert set(record) == {"v"} | {f"t{i}" for i in range(8)}
    assert all(len(v) == 16 for k, v in record.items() if k != "v")


def test_malformed_tags_in_a_heard_record_are_ignored() -> None:
    heard = {b"v": b"1", b"t0": b"00112233aabbccdd", b"t1": b"short", b"x": b"00112233aabbccdd",
             b"t2": b"ZZ112233aabbccdd", "t3": None}
    assert lan.tags_in(heard) == {"00112233aabbccdd"}


def test_the_day_is_the_utc_day() -> None:
    assert lan.utc_day(0) == "1970-01-01"
    assert lan.utc_day(86399) == "1970-01-01" and lan.utc_day(86400) == "1970-01-02"
    assert lan.utc_day(0, -1) == "1969-12-31"


def test_the_tag_key_must_be_a_fingerprint() -> None:
    with pytest.raises(ValueError):
        crypto.lan_tag(b"short", "2026-01-01")

