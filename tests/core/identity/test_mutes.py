"""Muting: hidden from the timeline (not from the author's own page), never a block."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.base.errors import BadFingerprint, Conflict
from app.core.identity.identities import Identities
from app.core.identity.mutes import Mutes
from app.core.posts.timeline import Timeline
from tests.helpers.datadirs import PASSWORD
from tests.helpers.post_kit import PostKit


def test_muted_authors_leave_the_timeline_only(tmp_path: Path) -> None:
    kit = PostKit(tmp_path / "n")
    a, b = kit.author(1), kit.author(2)
    pa, pb = kit.post(a, 100, TEXT="a"), kit.post(b, 101, TEXT="b")
    mutes = Mutes(kit.dd)
    assert mutes.mute(b) and not mutes.mute(b)
    tl = Timeline(kit.dd, kit.index)
    assert [e.sha1 for e in tl.page().items] == [pa.sha1]
    assert [e.sha1 for e in tl.page(authors=[b]).items] == [pb.sha1]  # their own page
    assert not Identities(kit.dd).is_blocked(b)
    assert (kit.dd.state / "muted.json").stat().st_mode & 0o777 == 0o600
    assert mutes.unmute(b) and not mutes.unmute(b)
    assert len(tl.page().items) == 2


def test_mute_refuses_bad_and_own_keys(tmp_path: Path) -> None:
    kit = PostKit(tmp_path / "n")
    with pytest.raises(BadFingerprint):
        Mutes(kit.dd).mute("../../etc")
    own = Identities(kit.dd).create(PASSWORD)
    with pytest.raises(Conflict):
        Mutes(kit.dd).mute(own)
