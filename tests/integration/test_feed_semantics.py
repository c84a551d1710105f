"""Issue 9 with three real nodes (gunicorn admin and peer, scheduler, 127.0.0.1): edits and
deletions travel, a local deletion sticks, a reply in a private conversation stays in it.

Basant's changes are a list (:data:`BASANT_CHANGES`): each makes one change on her node
and returns the check that Ahmed's and Camal's nodes show it; one sync of each follower
must satisfy every check. Another change (a post written with an old CREATED_TIME, say)
is one more function in that list.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from .test_three_nodes import PW, Person, following_each_other

pytestmark = [pytest.mark.integration, pytest.mark.slow]
Check = Callable[[Person], None]  # run on a follower after its sync: asserts what it shows


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Person]]:
    # the scheduler stays out of the way: every sync here is one the test asks for
    yield from following_each_other(tmp_path_factory.mktemp("semantics"),
                                    {"sync_interval": 3600, "max_page_size": 50})


def status_of(person: Person, sha: str) -> int:
    return int(person.node.admin("GET", f"/posts/{sha}").status_code)


def edit_a_post(b: Person, followers: list[Person]) -> Check:
    """Basant edits a post her followers hold: they keep both versions, show the new one
    as edited, and list only the new one."""
    old = b.post(text="the meeting is at 5")
    for f in followers:
        f.sync(b)
    new = b.api("POST", f"/posts/{old}/edit", 201,
                json={"password": PW["basant"], "text": "the meeting is at 6"})["sha1"]

    def check(f: Person) -> None:
        shown = f.api("GET", f"/posts/{new}")
        assert shown["edited"] is True and shown["latest"] == new
        assert [v["sha1"] for v in shown["versions"]] == [old, new]
        assert f.api("GET", f"/posts/{old}")["attributes"]["TEXT"]["value"] == \
            "the meeting is at 5"  # the earlier text stays one step away
        listed = {p["sha1"] for p in f.api("GET", f"/posts?author={b.fp}&limit=50")["posts"]}
        assert new in listed and old not in listed
    return check


def delete_a_post(b: Person, followers: list[Person]) -> Check:
    """Basant deletes a post her followers hold (with Ahmed's reply to it): it is gone
    from their nodes, file included, and shown as deleted by its author; the reply stays."""
    doomed = b.post(text="I should not have said that")
    for f in followers:
        f.sync(b)
    a = next(f for f in followers if f.name == "ahmed")
    reply = a.post(text="hm", reply_to=doomed)
    b.sync(a)
    out = b.api("DELETE", f"/posts/{doomed}", json={"password": PW["basant"]})
    assert out["deleted"] == [doomed] and status_of(b, doomed) == 410

    def check(f: Person) -> None:
        assert status_of(f, doomed) == 410
        assert not (f.node.root / "posts" / b.fp / doomed).exists()
        assert (f.node.root / "posts" / b.fp / out["record"]).exists()
        if f is a:
            thread = f.api("GET", f"/posts/{doomed}/replies")
            assert thread["root_deleted"] is True
            assert [r["post"]["sha1"] for r in thread["replies"]] == [reply]
    return check


def write_a_backdated_post(b: Person, followers: list[Person]) -> Check:
    """Fault 1: after her followers synced, Basant writes a post dated an hour back, then a
    normal one; the next sync brings both (the cursor is her node's storage order, not
    CREATED_TIME)."""
    for f in followers:
        f.sync(b)
    backdated = b.post(text="written an hour ago", created_time=int(time.time()) - 3600)
    normal = b.post(text="written now")

    def check(f: Person) -> None:
        assert status_of(f, backdated) == 200 and status_of(f, normal) == 200
    return check


BASANT_CHANGES: list[Callable[[Person, list[Person]], Check]] = [
    edit_a_post, delete_a_post, write_a_backdated_post]


def test_basants_edit_and_deletion_reach_both_within_one_sync(
        people: dict[str, Person]) -> None:
    a, b, c = people["ahmed"], people["basant"], people["camal"]
    checks = [change(b, [a, c]) for change in BASANT_CHANGES]
    for follower in (a, c):
        follower.sync(b)  # one sync
        for check in checks:
            check(follower)


def test_a_post_deleted_here_never_comes_back(people: dict[str, Person]) -> None:
    """Fault 2: Ahmed removes Basant's post from his node; neither the next sync (the post
    lies within the overlap) nor a full one brings it back."""
    a, b = people["ahmed"], people["basant"]
    sha = b.post(text="Ahmed does not want this one")
    a.sync(b)
    assert status_of(a, sha) == 200
    a.api("DELETE", f"/posts/{sha}", 204)
    assert status_of(a, sha) == 404
    a.sync(b)
    assert status_of(a, sha) == 404
    statuses = a.api("POST", "/sync", json={"fingerprint": b.fp, "full": True})["statuses"]
    assert statuses[0]["last_error"] is None
    assert status_of(a, sha) == 404
    assert not (a.node.root / "posts" / b.fp / sha).exists()
    assert status_of(b, sha) == 200  # Basant's own copy is hers


def test_a_reply_to_a_private_message_never_reaches_the_comment_group(
        people: dict[str, Person]) -> None:
    """Ahmed shares his comments with a group holding Camal; his reply to Basant's private
    message still goes to Basant only."""
    a, b, c = people["ahmed"], people["basant"], people["camal"]
    a.api("PUT", "/groups/commenters", (200, 201))
    a.api("PUT", f"/groups/commenters/{c.fp}", (200, 201))
    a.api("PUT", f"/identities/{a.fp}/settings", json={"share_comments_with": "commenters"})
    private = b.post(text="just between us", to=[a.fp])
    a.sync(b)
    reply = a.post(text="of course", reply_to=private)
    public = b.post(text="an open question")
    a.sync(b)
    open_reply = a.post(text="an open answer", reply_to=public)
    b.sync(a)
    c.sync(a)
    c.api("POST", "/sync", json={"fingerprint": a.fp, "full": True})
    assert status_of(b, reply) == 200
    assert status_of(c, reply) == 404 and status_of(c, private) == 404
    assert status_of(c, open_reply) == 200  # the group does get comments on public posts
