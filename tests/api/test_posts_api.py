"""Admin post routes through the Flask test client: every kind created, stored, read back."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest

from app.core.base import crypto
from app.core.identity import keys
from app.core.identity.identities import Identities
from app.core.posts import codec as posts
from tests.helpers.clients import AdminClient, assert_error, make_admin_client
from tests.helpers.datadirs import snapshot
from tests.helpers.images import PNG
from tests.helpers.strangers import new_stranger

PW = "pw-ahmed-long-enough"
PW2 = "pw-basant-long-enough"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    client = make_admin_client(tmp_path_factory.mktemp("node"))
    a = client.post("/identities", json={"password": PW}).json["fingerprint"]
    b = client.post("/identities", json={"password": PW2}).json["fingerprint"]
    return {"c": client, "a": a, "b": b}


def _file(client: AdminClient, author: str, sha: str) -> Path:
    return client.dd.posts / author / sha


def _post(node: dict[str, Any], who: str = "a", **body: Any) -> dict[str, Any]:
    fp, pw = (node["a"], PW) if who == "a" else (node["b"], PW2)
    r = node["c"].post("/posts", json={"fingerprint": fp, "password": pw, **body})
    assert r.status_code == 201, r.json
    return r.json


def test_public_post_is_stored_as_the_format_says(node: dict[str, Any]) -> None:
    out = _post(node, text="hello", created_time=1_700_000_000)
    path = _file(node["c"], node["a"], out["sha1"])
    raw = path.read_bytes()
    assert hashlib.sha1(raw).hexdigest() == out["sha1"]
    p1, fp, sig = raw.decode("ascii").split(".")
    assert fp == node["a"] and not raw.endswith(b"\n")
    assert int(path.stat().st_mtime) == 1_700_000_000
    pub = keys.parse_pub(node["c"].dd.identities.joinpath(f"{fp}.pub").read_bytes())
    signature = posts.decode_post(raw, max_bytes=10**6).signature
    assert crypto.verify(pub.sign, crypto.CTX_POST, p1.encode(), signature)
    assert out["post"]["kind"] == "post" and out["post"]["public"] is True
    got = node["c"].get(f"/posts/{out['sha1']}").json
    assert got["attributes"]["TEXT"]["value"] == "hello" and got["verified"] is True
    assert node["c"].get(f"/posts/{out['sha1']}/raw").data == raw


def test_comment_message_group_message_profile_reshare(node: dict[str, Any]) -> None:
    root = _post(node, text="root")["sha1"]
    comment = _post(node, "b", text="nice", reply_to=root)["post"]
    assert comment["kind"] == "comment" and comment["recipients"] == [node["a"]]
    assert comment["replies_to"] == [root]
    reaction = _post(node, "b", text="👍🏽", reply_to=root)["post"]
    assert reaction["is_reaction"] is True and comment["is_reaction"] is False
    nested = _post(node, text="thanks", reply_to=comment["sha1"])["post"]
    assert nested["kind"] == "comment"
    message = _post(node, text="hi", to=[node["b"]])["post"]
    assert message["kind"] == "message" and message["recipients"] == [node["b"]]
    other = "ab" * 32
    group = _post(node, text="all", to=[node["b"], other])["post"]
    assert sorted(group["recipients"]) == sorted([node["b"], other])
    prof = _post(node, profile={"name": "Ahmed", "birthdate": "1990-02-03"})["post"]
    assert prof["kind"] == "profile"
    reshare = _post(node, "b", text="look", reshare=root)["post"]
    inner = reshare["attributes"]["RESHARED_POST"]["post"]
    assert inner["sha1"] == root and inner["author"] == node["a"]
    thread = node["c"].get(f"/posts/{root}/replies").json
    depths = {r["post"]["sha1"]: r["depth"] for r in thread["replies"]}
    assert depths[comment["sha1"]] == 1 and depths[nested["sha1"]] == 2
    convs = node["c"].get("/conversations").json["conversations"]
    assert {frozenset(c["participants"]) for c in convs} >= {
        frozenset([node["a"], node["b"]]), frozenset([node["a"], node["b"], other])}
    conv = next(c for c in convs if len(c["participants"]) == 3)
    msgs = node["c"].get(f"/conversations/{conv['id']}").json["messages"]
    assert [m["sha1"] for m in msgs] == [group["sha1"]]
    profile = node["c"].get(f"/profiles/{node['a']}").json
    assert profile["attributes"]["PROFILENAME"]["value"] == "Ahmed"
    names = [c["name"] for c in node["c"].get("/contacts-book").json["contacts"]]
    assert "Ahmed" in names
    assert node["c"].get("/birthdays").json["birthdays"][0]["birthdate"] == "1990-02-03"


def test_multipart_media_is_served_with_its_type(node: dict[str, Any]) -> None:
    c = node["c"]
    r = c.post("/posts", data={"fingerprint": node["a"], "password": PW, "text": "pic",
                               "photo": (io.BytesIO(PNG), "x.png")},
               content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    sha = r.json["sha1"]
    assert r.json["post"]["attributes"]["PHOTO_PNG"]["media"] == "image"
    m = c.get(f"/posts/{sha}/media/PHOTO_PNG")
    assert m.status_code == 200 and m.data == PNG and m.mimetype == "image/png"
    assert c.get(f"/posts/{sha}/media/TEXT").status_code == 400
    assert c.get(f"/posts/{sha}/media/NOPE_PNG").status_code == 404
    assert c.get(f"/posts/{sha}/media/..").status_code in (400, 404)


def test_media_in_any_base64_is_stored_canonical(node: dict[str, Any]) -> None:
    """Issue 11: media as the base64 tool prints it (padded, +/) or as base64url."""
    import base64

    png = PNG + bytes([0xfb, 0xff, 0xfe])  # bytes whose base64 uses '+' or '/'
    standard = base64.b64encode(png).decode()
    assert "+" in standard or "/" in standard
    urlsafe = base64.urlsafe_b64encode(png).decode()
    canonical = urlsafe.rstrip("=")
    for value in (standard, standard.rstrip("="), urlsafe, canonical):
        r = node["c"].post("/posts", json={"fingerprint": node["a"], "password": PW,
                                           "attributes": {"PIC_PNG": value}})
        assert r.status_code in (200, 201), r.json
        m = node["c"].get(f"/posts/{r.json['sha1']}/media/PIC_PNG")
        assert m.data == png
        raw = node["c"].get(f"/posts/{r.json['sha1']}/raw").data
        p1 = base64.urlsafe_b64decode(raw.split(b".")[0] + b"=" * (-len(raw.split(b".")[0]) % 4))
        assert canonical.encode() in p1 and b"+" not in p1.split(b"PIC_PNG")[1][:80]
    for bad in (standard + "=", "ab=c", standard.replace("A", "-", 1) + "+", "****"):
        r = node["c"].post("/posts", json={"fingerprint": node["a"], "password": PW,
                                           "attributes": {"PIC_PNG": bad}})
        assert r.status_code == 400, (bad, r.json)


def test_bad_inputs_are_4xx_and_write_nothing(node: dict[str, Any]) -> None:
    c, a = node["c"], node["a"]
    before = snapshot(c.dd.root, "posts")
    cases = [
        ({"fingerprint": a, "password": "wrong", "text": "x"}, 403),
        ({"fingerprint": "ab" * 32, "password": PW, "text": "x"}, 404),
        ({"fingerprint": a[:10], "password": PW, "text": "x"}, 400),
        ({"fingerprint": a, "password": PW, "attributes": {"bad key": "x"}}, 400),
        ({"fingerprint": a, "password": PW, "attributes": {"X_PNG": "AAAA"}}, 400),
        ({"fingerprint": a, "password": PW, "attributes": {"CREATED_TIME": "soon"}}, 400),
        ({"fingerprint": a, "password": PW, "created_time": 4_000_000_000}, 400),
        ({"fingerprint": a, "password": PW, "reply_to": "0" * 40}, 404),
        ({"fingerprint": a, "password": PW, "reshare": "zz"}, 400),
        ({"fingerprint": a, "password": PW, "to": ["../../etc"]}, 400),
        ({"fingerprint": a, "password": PW, "profile": {"birthdate": "1990-13-45"}}, 400),
        ({"fingerprint": a, "password": PW, "surprise": 1}, 400),
    ]
    for body, status in cases:
        r = c.post("/posts", json=body)
        assert r.status_code == status, (body, r.json)
        assert r.json["message"]
    assert c.post("/posts", data="nope", content_type="application/json").status_code == 400
    assert snapshot(c.dd.root, "posts") == before
    for path in ("/posts/zz", "/posts/" + "0" * 40, "/posts/" + "0" * 40 + "/raw",
                 "/posts?limit=0", "/posts?cursor=xyz", "/posts?kind=likes",
                 "/posts?author=abc", "/posts?group=..", "/conversations/zz",
                 "/profiles/abc", "/profiles/" + "cd" * 32):
        r = c.get(path)
        assert 400 <= r.status_code < 500, (path, r.status_code)


def test_not_own_identity_cannot_post(tmp_path: Path) -> None:
    c = make_admin_client(tmp_path / "n")
    doc = new_stranger(bytes(range(32)), bytes(range(1, 33))).document.decode()
    fp = c.post("/identities", json={"public_key": doc}).json["fingerprint"]
    os.utime(c.dd.identities / f"{fp}.pub", (1_000_000_000, 1_000_000_000))  # a touch shows
    before = snapshot(c.dd.root)
    r = c.post("/posts", json={"fingerprint": fp, "password": "x", "text": "hi"})
    assert r.status_code == 403
    assert_error(r, 403)
    assert snapshot(c.dd.root) == before  # no post stored, indexed or logged


def test_timeline_filters_and_cursor(tmp_path: Path) -> None:
    c = make_admin_client(tmp_path / "t")
    a = c.post("/identities", json={"password": PW}).json["fingerprint"]
    node = {"c": c, "a": a, "b": a}
    made = [_post(node, text=f"p{i}", created_time=1_700_000_000 + i // 3)["sha1"]
            for i in range(9)]
    _post(node, text="m", to=["ab" * 32], created_time=1_700_000_100)
    seen: list[str] = []
    cursor = None
    while True:
        q = "/posts?kind=post&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = c.get(q).json
        seen += [p["sha1"] for p in page["posts"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))
    kinds = {p["kind"] for p in c.get("/posts?kind=message").json["posts"]}
    assert kinds == {"message"}
    assert c.get(f"/posts?author={a}&limit=100").json["posts"].__len__() == 10
    assert c.put("/groups/fam").status_code == 200
    assert c.get("/posts?group=fam").json["posts"] == []
    c.put(f"/groups/fam/{a}")
    assert len(c.get("/posts?group=fam&limit=50").json["posts"]) == 10


def test_import_delete_and_reimport(tmp_path: Path) -> None:
    c = make_admin_client(tmp_path / "i")
    pub = new_stranger(bytes(range(32)), bytes(range(1, 33)))
    seed = pub.seed
    c.post("/identities", json={"public_key": pub.document.decode()})
    raw = posts.build_post(seed, {"TEXT": "from elsewhere", "CREATED_TIME": 1_700_000_000})
    r = c.post("/posts/import", json={"post": raw.decode()})
    assert r.status_code == 201 and r.json["new"] is True
    sha = r.json["sha1"]
    assert c.post("/posts/import", json={"post": raw.decode()}).json["new"] is False
    tampered = raw[:-3] + (b"A" if raw[-3:-2] != b"A" else b"B") + raw[-2:]
    assert c.post("/posts/import", json={"post": tampered.decode()}).status_code == 400
    assert c.delete(f"/posts/{sha}").status_code == 204
    assert not (c.dd.posts / pub.fp / sha).exists()
    assert c.get(f"/posts/{sha}").status_code == 404
    assert c.delete(f"/posts/{sha}").status_code == 404


def test_comment_sharing_setting(tmp_path: Path) -> None:
    c = make_admin_client(tmp_path / "s")
    a = c.post("/identities", json={"password": PW}).json["fingerprint"]
    assert c.get(f"/identities/{a}/settings").json["share_comments_with"] is None
    assert c.put(f"/identities/{a}/settings",
                 json={"share_comments_with": "friends"}).status_code == 404
    c.put("/groups/friends")
    r = c.put(f"/identities/{a}/settings", json={"share_comments_with": "friends"})
    assert r.status_code == 200 and r.json["share_comments_with"] == "friends"
    assert c.put(f"/identities/{a}/settings",
                 json={"share_comments_with": "blocked"}).status_code == 400
    assert c.put(f"/identities/{a}/settings",
                 json={"share_comments_with": "../x"}).status_code == 400
    assert c.get(f"/identities/{'ab' * 32}/settings").status_code == 404
    r = c.put(f"/identities/{a}/settings", json={"share_comments_with": None})
    assert r.json["share_comments_with"] is None
    assert os.path.exists(c.dd.state)


def test_multipart_profile_picture_sets_the_profile(node: dict[str, Any]) -> None:
    c = node["c"]
    r = c.post("/posts", data={"fingerprint": node["a"], "password": PW,
                               "profile": '{"name": "Pic"}',
                               "profilepicture": (io.BytesIO(PNG), "me.png")},
               content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    post = r.json["post"]
    assert post["kind"] == "profile" and "PROFILEPICTURE" in post["attributes"]
    m = c.get(f"/posts/{r.json['sha1']}/media/PROFILEPICTURE")
    assert m.data == PNG and m.mimetype == "image/png"


def test_a_reply_to_a_private_post_stays_among_its_participants(
        node: dict[str, Any]) -> None:
    """Issue 9 (private stays private): a reply to a message is addressed to exactly the
    message's participants; nobody else may be added; the reply is never a public comment."""
    third = new_stranger()
    Identities(node["c"].dd).import_pub(third.document)
    msg = _post(node, "a", text="just us two", to=[node["b"]])
    reply = _post(node, "b", text="agreed", reply_to=msg["sha1"])
    assert reply["post"]["recipients"] == [node["a"]]
    assert reply["post"]["public"] is False
    group = _post(node, "a", text="three of us", to=[node["b"], third.fp])
    reply = _post(node, "b", text="all of us", reply_to=group["sha1"])
    assert sorted(reply["post"]["recipients"]) == sorted([node["a"], third.fp])
    before = snapshot(node["c"].dd.root, "posts")
    r = node["c"].post("/posts", json={"fingerprint": node["b"], "password": PW2,
                                       "text": "leak", "reply_to": msg["sha1"],
                                       "to": [third.fp]})
    assert_error(r, 403, "to")
    assert snapshot(node["c"].dd.root, "posts") == before


def test_a_private_post_cannot_be_reshared(node: dict[str, Any]) -> None:
    msg = _post(node, "a", text="for b only", to=[node["b"]])
    before = snapshot(node["c"].dd.root, "posts")
    r = node["c"].post("/posts", json={"fingerprint": node["b"], "password": PW2,
                                       "reshare": msg["sha1"]})
    body = assert_error(r, 403, "reshare")
    assert "private post cannot be reshared" in body["message"]
    assert snapshot(node["c"].dd.root, "posts") == before
    public = _post(node, "a", text="for everyone")
    assert _post(node, "b", reshare=public["sha1"])["post"]["reshared"] is True


# --- deletion and edits (issue 9) ---------------------------------------------------------

def test_deleting_an_own_post_signs_a_record_addressed_like_the_post(
        node: dict[str, Any]) -> None:
    c = node["c"]
    sha = _post(node, text="for Basant only", to=[node["b"]])["sha1"]
    assert_error(c.delete(f"/posts/{sha}"), 400, "password")  # no signature, no deletion
    assert_error(c.delete(f"/posts/{sha}", json={"password": "wrong-password"}), 403)
    assert c.get(f"/posts/{sha}").status_code == 200  # nothing happened yet
    out = c.delete(f"/posts/{sha}", json={"password": PW}).json
    assert out["sha1"] == sha and out["deleted"] == [sha]
    record = posts.decode_post(_file(c, node["a"], out["record"]).read_bytes(), max_bytes=10**6)
    assert record.kind == "deletion" and record.deletes == (sha,)
    assert record.recipients == {node["b"]}  # exactly the deleted post's audience
    assert not _file(c, node["a"], sha).exists()
    gone = c.get(f"/posts/{sha}")
    assert gone.status_code == 410 and gone.json["status"] == "deleted"
    assert c.delete(f"/posts/{sha}", json={"password": PW}).status_code == 404
    assert c.get(f"/posts/{out['record']}").json["kind"] == "deletion"
    listed = {p["sha1"] for p in c.get("/posts?limit=100").json["posts"]}
    assert out["record"] not in listed and sha not in listed


def test_edit_route_keeps_the_addressing_and_marks_the_post_edited(
        node: dict[str, Any]) -> None:
    c = node["c"]
    root = _post(node, "b", text="a question")["sha1"]
    first = _post(node, text="my answer", reply_to=root)["sha1"]
    r = c.post(f"/posts/{first}/edit", json={"password": PW, "text": "my better answer"})
    assert r.status_code == 201, r.json
    new = r.json["post"]
    assert new["replies_to"] == [root] and new["recipients"] == [node["b"]]
    assert new["edited"] is True and [v["sha1"] for v in new["versions"]] == [first,
                                                                             new["sha1"]]
    old = c.get(f"/posts/{first}").json
    assert old["attributes"]["TEXT"]["value"] == "my answer" and old["latest"] == new["sha1"]
    thread = c.get(f"/posts/{root}/replies").json
    assert [x["post"]["sha1"] for x in thread["replies"]] == [new["sha1"]]
    assert_error(c.post(f"/posts/{root}/edit", json={"password": PW, "text": "mine now"}),
                 403)  # only its author signs an edit: this password does not open her key
    assert_error(c.post(f"/posts/{'0' * 40}/edit", json={"password": PW, "text": "x"}), 404)


def test_a_reshare_of_a_deleted_post_says_so(node: dict[str, Any]) -> None:
    c = node["c"]
    original = _post(node, "b", text="quotable")["sha1"]
    reshare = _post(node, text="see this", reshare=original)["sha1"]
    c.delete(f"/posts/{original}", json={"password": PW2})
    inner = c.get(f"/posts/{reshare}").json["attributes"]["RESHARED_POST"]["post"]
    assert inner["sha1"] == original and inner["deleted_by_author"] is True


@pytest.mark.parametrize("body, field", [
    ({"text": "\ud800x"}, "text"),
    ({"profile": {"name": "\udc00"}}, "profile"),
    ({"created_time": -1}, "created_time"),
])
def test_a_bad_field_is_named_as_the_request_names_it(node: dict[str, Any], body: dict[str, Any],
                                                      field: str) -> None:
    """A lone surrogate in the text is the text's fault, not 'attributes' (the codec's
    name); a created_time before 0 is refused by the schema, as the OpenAPI document
    says (its minimum was year 1). Found by the end-of-session tester."""
    c, a = node["c"], node["a"]
    r = c.post("/posts", json={"fingerprint": a, "password": PW, **body})
    assert r.status_code == 400, r.json
    assert field in r.json["errors"], r.json


def test_openapi_created_time_starts_at_0(node: dict[str, Any]) -> None:
    spec = node["c"].get("/openapi.json").json
    created = spec["components"]["schemas"]["CreatePost"]["properties"]["created_time"]
    assert created["minimum"] == 0
