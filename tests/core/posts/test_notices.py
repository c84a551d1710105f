"""Notifications (replies, messages, contacts' first posts), their read state, and the
timeline's reading mark (issue 12, Notifications)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.base.errors import BadInput
from app.core.posts.listing import encode_cursor
from app.core.posts.notices import NoticeState, ReadingMark, notices
from tests.helpers.post_kit import PostKit


def test_replies_messages_and_first_posts_newest_arrival_first(tmp_path: Path) -> None:
    kit = PostKit(tmp_path / "n")
    me, ali, bea, cam = (kit.author(i) for i in range(4))
    mine = kit.post(me, 100, TEXT="my post")
    kit.post(me, 101, TEXT="my own reply", REPLY_POSTSHA=mine.sha1)  # own: not a notice
    first = kit.post(bea, 50, TEXT="bea's first")  # old CREATED_TIME, arrives after mine
    kit.post(bea, 60, TEXT="bea's second")
    reply = kit.post(ali, 110, TEXT="nice", REPLY_POSTSHA=mine.sha1)
    message = kit.post(cam, 90, TEXT="psst", TO_FINGERPRINT=me)
    both = kit.post(ali, 120, TEXT="re, privately", REPLY_POSTSHA=mine.sha1, TO_FINGERPRINT=me)
    found = notices(kit.index, [me], [bea], limit=10)
    assert [(n.kind, n.entry.sha1) for n in found] == [
        ("reply", both.sha1), ("message", message.sha1), ("reply", reply.sha1),
        ("first", first.sha1)]
    assert [n.entry.sha1 for n in notices(kit.index, [me], [bea], limit=10, hide=[ali])] \
        == [message.sha1, first.sha1]  # muted authors are left out
    assert len(notices(kit.index, [me], [bea], limit=2)) == 2
    assert notices(kit.index, [], [bea], limit=10) == []


def test_mark_read_keeps_later_arrivals_unread_and_stays_bounded(tmp_path: Path) -> None:
    kit = PostKit(tmp_path / "n")
    me, ali = kit.author(0), kit.author(1)
    state = NoticeState(kit.dd)
    p1 = kit.post(ali, 1, TEXT="a", TO_FINGERPRINT=me)
    shown = notices(kit.index, [me], [], limit=10)
    upto = max(n.order for n in shown)
    p2 = kit.post(ali, 2, TEXT="b", TO_FINGERPRINT=me)  # arrives while the page is open
    listed = notices(kit.index, [me], [], limit=10)
    assert state.mark_read(listed, upto) == 1
    assert [n.entry.sha1 for n in state.unread(listed)] == [p2.sha1]
    assert state.seen() == {p1.sha1}
    kit.post(ali, 3, TEXT="c", TO_FINGERPRINT=me)
    listed = notices(kit.index, [me], [], limit=1)  # p1 and p2 fall off the list
    state.mark_read(listed, max(n.order for n in listed))
    assert state.seen() == {listed[0].entry.sha1}  # marks of unlisted ones are forgotten
    assert (kit.dd.state / "notifications.json").stat().st_mode & 0o777 == 0o600


def test_the_reading_mark_only_moves_forward(tmp_path: Path) -> None:
    kit = PostKit(tmp_path / "n")
    mark = ReadingMark(kit.dd)
    assert mark.get() is None
    mark.set(encode_cursor(200, "b" * 40))
    mark.set(encode_cursor(100, "c" * 40))
    assert mark.position() == (200, "b" * 40)
    with pytest.raises(BadInput):
        mark.set("not a cursor")
    (kit.dd.state / "reading.json").write_text('{"home": "garbage"}')
    assert mark.get() is None
