"""app/core/timeline.py: threads, conversations, profiles, birthdays and the contacts book."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.base.errors import BadInput, NotFound
from app.core.identity.identities import Identities
from app.core.posts.codec import Post
from app.core.posts.listing import conversation_id
from app.core.posts.timeline import Timeline
from tests.helpers.post_kit import PostKit

PASSWORD = "correct horse battery staple"


class Kit(PostKit):
    seed_prefix = "timeline-author"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.timeline = Timeline(self.dd, self.index)

    def block(self, fp: str) -> None:
        Identities(self.dd).block(fp)


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[Kit]:
    k = Kit(tmp_path / "node")
    yield k
    k.index.close()


def reply(kit: Kit, fp: str, t: int, to: Post, text: str = "re") -> Post:
    return kit.post(fp, t, TEXT=text, REPLY_POSTSHA=to.sha1, TO_FINGERPRINT=to.author)


# --- the timeline through Timeline (group filter, default page size) ----------------------------

def test_timeline_page_filters_by_group_and_uses_the_default_page_size(kit: Kit) -> None:
    a, b, c = kit.author(1), kit.author(2), kit.author(3)
    ids = Identities(kit.dd)
    ids.create_group("family")
    ids.add_member("family", a)
    ids.add_member("family", c)
    posts = [kit.post(fp, t, TEXT=str(t)) for t, fp in enumerate([a, b, c] * 5)]
    page = kit.timeline.page(group="family", kinds=["post"])
    assert len(page.items) == kit.dd.settings["page_size"]
    assert {e.author for e in page.items} == {a, c}
    assert kit.timeline.page(group="family", authors=[b, c], limit=50).items == [
        e for e in kit.timeline.page(authors=[c], limit=50).items]
    assert len(kit.timeline.page(limit=50).items) == len(posts)
    with pytest.raises(NotFound):
        kit.timeline.page(group="nobody")
    with pytest.raises(BadInput):
        kit.timeline.page(group="../etc")


# --- threads ------------------------------------------------------------------------------------

def test_replies_nest_without_limit_oldest_first(kit: Kit) -> None:
    a, b, c = kit.author(1), kit.author(2), kit.author(3)
    root = kit.post(a, 1, TEXT="root")
    r1 = reply(kit, b, 3, root)
    r2 = reply(kit, c, 2, root)
    r11 = reply(kit, c, 4, r1, "\U0001f602")
    chain = [r11]
    for t in range(5, 205):  # 200 levels deeper
        chain.append(reply(kit, [a, b][t % 2], t, chain[-1]))
    kit.post(a, 9, TEXT="unrelated")
    thread = kit.timeline.replies(root.sha1)
    assert thread.root_entry is not None and thread.root_entry.sha1 == root.sha1
    assert [n.entry.sha1 for n in thread.replies] == [r2.sha1, r1.sha1]
    node = thread.replies[1].replies[0]
    assert node.entry.sha1 == r11.sha1 and node.entry.is_reaction and node.depth == 2
    walked = [n.entry.sha1 for n in thread.walk()]
    assert walked == [r2.sha1, r1.sha1] + [p.sha1 for p in chain]
    assert max(n.depth for n in thread.walk()) == 202
    assert not any(hasattr(n, "count") for n in thread.walk())


def test_replies_leave_out_blocked_authors_and_vanished_files(kit: Kit) -> None:
    a, b, c = kit.author(1), kit.author(2), kit.author(3)
    root = kit.post(a, 1, TEXT="root")
    from_b = reply(kit, b, 2, root)
    under_b = reply(kit, a, 3, from_b)
    from_c = reply(kit, c, 4, root)
    kept = reply(kit, a, 5, root)
    kit.block(b)
    (kit.dd.posts / c / from_c.sha1).unlink()
    thread = kit.timeline.replies(root.sha1)
    assert [n.entry.sha1 for n in thread.walk()] == [kept.sha1]
    assert under_b.sha1 not in {n.entry.sha1 for n in thread.walk()}


def test_replies_to_a_post_not_held_here_still_form_a_thread(kit: Kit) -> None:
    a = kit.author(1)
    missing = "e" * 40
    r = kit.post(a, 1, TEXT="re", REPLY_POSTSHA=missing, TO_FINGERPRINT=kit.author(2))
    thread = kit.timeline.replies(missing)
    assert thread.root_entry is None and [n.entry.sha1 for n in thread.replies] == [r.sha1]
    with pytest.raises(BadInput):
        kit.timeline.replies("not-a-sha")


# --- conversations ----------------------------------------------------------------------------

def test_messages_are_grouped_by_participant_set(kit: Kit) -> None:
    a, b, c = kit.author(1), kit.author(2), kit.author(3)
    ab1 = kit.post(a, 10, TEXT="hi b", TO_FINGERPRINT=b)
    ab2 = kit.post(b, 11, TEXT="hi a", TO_FINGERPRINT=a)
    abc = kit.post(a, 12, TEXT="hi all", X_FINGERPRINT=b, Y_FINGERPRINT=c)
    kit.post(a, 13, TEXT="public")
    reply(kit, b, 14, abc)  # a comment is not a message
    pair_id = hashlib.sha256(",".join(sorted([a, b])).encode()).hexdigest()[:32]
    assert conversation_id([b, a, b]) == pair_id
    convs = kit.timeline.conversations([b])
    assert [(cv.id, cv.last.sha1) for cv in convs] == [
        (conversation_id([a, b, c]), abc.sha1), (pair_id, ab2.sha1)]
    assert convs[1].participants == sorted([a, b])
    assert [cv.id for cv in kit.timeline.conversations([c])] == [conversation_id([a, b, c])]
    assert kit.timeline.conversations([kit.author(4)]) == []
    page = kit.timeline.conversation(pair_id, limit=1)
    assert [e.sha1 for e in page.items] == [ab2.sha1] and page.next_cursor
    rest = kit.timeline.conversation(pair_id, limit=1, cursor=page.next_cursor)
    assert [e.sha1 for e in rest.items] == [ab1.sha1] and rest.next_cursor is None


def test_conversation_ids_are_checked(kit: Kit) -> None:
    with pytest.raises(BadInput) as info:
        kit.timeline.conversation("../../etc/passwd")
    assert info.value.field == "id"
    with pytest.raises(NotFound):
        kit.timeline.conversation("0" * 32)


def test_conversations_default_to_own_identities(kit: Kit) -> None:
    me = Identities(kit.dd).create(PASSWORD)
    other, stranger = kit.author(2), kit.author(3)
    mine = kit.post(other, 5, TEXT="to me", TO_FINGERPRINT=me)
    kit.post(other, 6, TEXT="not to me", TO_FINGERPRINT=stranger)
    assert [cv.last.sha1 for cv in kit.timeline.conversations()] == [mine.sha1]


# --- profiles ------------------------------------------------------------------------------------

def test_each_viewer_sees_the_newest_profile_meant_for_it(kit: Kit) -> None:
    owner, v, w, x = kit.author(1), kit.author(2), kit.author(3), kit.author(4)
    public = kit.post(owner, 10, PROFILENAME="Ahmed")
    for_v = kit.post(owner, 20, PROFILENAME="Ahmed (for V)", TO_FINGERPRINT=v)
    for_w = kit.post(owner, 30, PROFILENAME="Ahmed (for W)", TO_FINGERPRINT=w)
    kit.post(owner, 40, TEXT="a plain post is not a profile")

    def seen(viewer: str | None) -> str | None:
        profile = kit.timeline.current_profile(owner, viewer)
        return None if profile is None else profile["sha1"]

    assert seen(None) == public.sha1 and seen(x) == public.sha1
    assert seen(v) == for_v.sha1 and seen(w) == for_w.sha1
    profile = kit.timeline.current_profile(owner, v)
    assert profile is not None and profile["attributes"]["PROFILENAME"] == "Ahmed (for V)"
    newer_public = kit.post(owner, 50, PROFILENAME="Ahmed again")
    assert seen(v) == newer_public.sha1 and seen(None) == newer_public.sha1
    assert kit.timeline.current_profile(kit.author(5), None) is None


def test_only_addressed_profiles_mean_none_for_the_public(kit: Kit) -> None:
    owner, v = kit.author(1), kit.author(2)
    kit.post(owner, 10, PROFILENAME="secret", TO_FINGERPRINT=v)
    assert kit.timeline.current_profile(owner, None) is None
    assert kit.timeline.current_profile(owner, v) is not None
    kit.block(owner)
    assert kit.timeline.current_profile(owner, v) is None


def test_contacts_book_and_birthdays_come_from_current_profiles(kit: Kit) -> None:
    me = Identities(kit.dd).create(PASSWORD)
    a, b, c, d = kit.author(1), kit.author(2), kit.author(3), kit.author(4)
    kit.post(a, 10, PROFILENAME="Zahra", BIRTHDATE="1990-03-01", HOME_PHONE="+20 100 1",
             WORK_EMAIL="z@example.org", WORKPLACE="Cairo Library")
    kit.post(b, 10, PROFILENAME="Basant (public)", BIRTHDATE="1985-12-24")
    kit.post(b, 11, PROFILENAME="Basant", BIRTHDATE="1985-12-25", MOBILE_PHONE="+20 111 2",
             HOME_PHONE="+20 2 3", TO_FINGERPRINT=me)
    kit.post(c, 12, PROFILENAME="Camal", BIRTHDATE="2000-02-29", TO_FINGERPRINT=d)
    kit.post(c, 11, PROFILENAME="Camal public")
    book = kit.timeline.contacts_book()
    assert [card["name"] for card in book] == ["Basant", "Camal public", "Zahra"]
    basant = book[0]
    assert basant["fingerprint"] == b and basant["birthdate"] == "1985-12-25"
    assert basant["phones"] == ["+20 2 3", "+20 111 2"]
    assert book[2]["emails"] == ["z@example.org"] and book[2]["workplaces"] == ["Cairo Library"]
    birthdays = kit.timeline.birthdays(today=dt.date(2025, 12, 20))
    assert [(x["name"], x["next"], x["days_until"]) for x in birthdays] == [
        ("Basant", "2025-12-25", 5), ("Zahra", "2026-03-01", 71)]
    kit.block(a)
    assert [card["name"] for card in kit.timeline.contacts_book()] == ["Basant", "Camal public"]


def test_a_29_february_birthday_falls_on_28_february_in_common_years(kit: Kit) -> None:
    c = kit.author(3)
    kit.post(c, 12, PROFILENAME="Leap", BIRTHDATE="2000-02-29")
    got = kit.timeline.birthdays(today=dt.date(2025, 2, 1))
    assert [(x["next"], x["days_until"]) for x in got] == [("2025-02-28", 27)]
    got = kit.timeline.birthdays(today=dt.date(2027, 12, 1))
    assert got[0]["next"] == "2028-02-29"


def test_read_returns_the_decoded_post_or_none_if_gone(kit: Kit) -> None:
    a = kit.author(1)
    post = kit.post(a, 1, TEXT="hello")
    entry = kit.index.get(post.sha1)
    assert entry is not None
    assert kit.timeline.read(entry).attributes["TEXT"] == "hello"
    os.unlink(kit.dd.posts / a / post.sha1)
    assert kit.timeline.read(entry) is None
