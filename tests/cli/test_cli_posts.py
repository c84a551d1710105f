"""The post commands of ``diwan`` through click's CliRunner, over a temporary data directory.

Outcomes are checked on disk (``posts/<FP>/<SHA1>`` and its SHA-1, the
signature with plain PyNaCl) and, for ``--json``, against the admin API's
answer for the same data directory. Two identities are created once for the
module (Argon2id is slow); tests that need an order among posts give
``--time`` explicitly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from nacl.signing import VerifyKey

from app.cli import main
from app.core.base.datadir import DataDir
from app.core.posts.ingest import Ingestor
from tests.helpers.clients import make_admin_client
from tests.helpers.images import PNG

PW_A = "password of ahmed"
PW_B = "password of basant"
OTHER = "ab" * 32
T0 = 1_700_000_000


def run(data_dir: Path, *args: str, input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(main, ["--data-dir", str(data_dir), *args], input=input,
                              catch_exceptions=False)


def ok(data_dir: Path, *args: str, input: str | bytes | None = None) -> str:
    result = run(data_dir, *args, input=input)
    assert result.exit_code == 0, result.output
    return result.stdout


def ok_json(data_dir: Path, *args: str, input: str | None = None) -> Any:
    return json.loads(ok(data_dir, "--json", *args, input=input))


def assert_error(result: Result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.output


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Node:
    """The module's data directory, its two own identities and their password files."""

    def __init__(self, root: Path, a: str, b: str, pw_a: Path, pw_b: Path) -> None:
        self.root, self.a, self.b = root, a, b
        self.pw = {a: pw_a, b: pw_b}

    def post(self, who: str, command: str, *args: str, input: str | None = None) -> str:
        """Run a writing command as ``who``; returns the SHA-1 it printed."""
        out = ok(self.root, *command.split(), who, *args, "--password-file", str(self.pw[who]),
                 input=input)
        sha = out.strip()
        assert len(sha) == 40 and int(sha, 16) >= 0, out
        return sha

    def post_json(self, who: str, command: str, *args: str) -> dict[str, Any]:
        return ok_json(self.root, *command.split(), who, *args, "--password-file",
                       str(self.pw[who]))

    def file(self, author: str, sha: str) -> Path:
        return self.root / "posts" / author / sha

    def files(self) -> set[Path]:
        return {p for p in (self.root / "posts").rglob("*") if p.is_file()}

    def attrs(self, author: str, sha: str) -> dict[str, Any]:
        p1 = self.file(author, sha).read_text("ascii").split(".")[0]
        return json.loads(b64url(p1))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Node:
    base = tmp_path_factory.mktemp("cliposts")
    root = base / "node"
    ok(root, "init")
    a = ok(root, "identity", "create", "--password-stdin", input=PW_A + "\n").strip()
    b = ok(root, "identity", "create", "--password-stdin", input=PW_B + "\n").strip()
    (base / "pw_a").write_text(PW_A + "\n")
    (base / "pw_b").write_text(PW_B + "\n")
    return Node(root, a, b, base / "pw_a", base / "pw_b")


@pytest.fixture(scope="module")
def api(node: Node) -> Any:
    return make_admin_client(node.root)


def verify_with_pynacl(node: Node, author: str, raw: bytes) -> None:
    lines = (node.root / "identities" / f"{author}.pub").read_text("ascii").splitlines()
    key = b64url(next(line.split(" ", 1)[1] for line in lines if line.startswith("sign ")))
    p1, fp, sig = raw.decode("ascii").split(".")
    assert fp == author
    # SIG is over CTX_POST || P1 (docs/protocol.md); raises if it does not verify
    VerifyKey(key).verify(b"diwan/v2/post\x00" + p1.encode("ascii"), b64url(sig))


# --- post --------------------------------------------------------------------------------

def test_post_stores_a_signed_file_named_by_its_sha1(node: Node) -> None:
    sha = node.post(node.a, "post", "hello world", "--time", str(T0))
    raw = node.file(node.a, sha).read_bytes()
    assert hashlib.sha1(raw).hexdigest() == sha
    assert not raw.endswith(b"\n")
    assert int(node.file(node.a, sha).stat().st_mtime) == T0
    verify_with_pynacl(node, node.a, raw)
    assert node.attrs(node.a, sha) == {"TEXT": "hello world", "CREATED_TIME": T0}


def test_post_json_is_the_api_answer(node: Node, api: Any) -> None:
    out = node.post_json(node.a, "post", "json please", "--attr", "LINK_URL=https://x.org/",
                         "--attr", "EVENT_TIME=1234")
    assert set(out) == {"sha1", "new", "post"} and out["new"] is True
    assert out["post"] == api.get(f"/posts/{out['sha1']}").json
    attributes = out["post"]["attributes"]
    assert attributes["LINK_URL"] == {"type": "URL", "known": True, "value": "https://x.org/"}
    assert attributes["EVENT_TIME"]["value"] == 1234  # TIME values are integers
    assert out["post"]["kind"] == "post" and out["post"]["public"] is True
    assert node.file(node.a, out["sha1"]).is_file()


def test_post_with_the_prompted_password(node: Node) -> None:
    result = run(node.root, "post", node.b, "typed at the prompt", input=PW_B + "\n")
    assert result.exit_code == 0, result.output
    sha = result.stdout.strip().splitlines()[-1]
    assert node.attrs(node.b, sha)["TEXT"] == "typed at the prompt"
    assert PW_B not in result.output


def test_media_files_become_typed_attributes(node: Node, tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(PNG)
    (tmp_path / "blob").write_bytes(b"\x00\x01 not a known format")
    out = node.post_json(node.a, "post", "pictures", "--media", f"photo={tmp_path / 'x.png'}",
                         "--media", f"DOC={tmp_path / 'blob'}")
    attributes = out["post"]["attributes"]
    assert attributes["PHOTO_PNG"]["media"] == "image"
    assert attributes["PHOTO_PNG"]["size"] == len(PNG)
    assert attributes["DOC_BIN"]["media"] == "other"
    stored = node.attrs(node.a, out["sha1"])
    assert b64url(stored["PHOTO_PNG"]) == PNG
    assert b64url(stored["DOC_BIN"]) == b"\x00\x01 not a known format"


def test_text_from_stdin(node: Node) -> None:
    sha = node.post(node.a, "post", "-", input="first line\nsecond line\n")
    assert node.attrs(node.a, sha)["TEXT"] == "first line\nsecond line"


def test_the_same_post_twice_is_stored_once(node: Node) -> None:
    first = node.post(node.a, "post", "once", "--time", str(T0 + 5))
    again = node.post_json(node.a, "post", "once", "--time", str(T0 + 5))
    assert again["sha1"] == first and again["new"] is False


# --- reply, message, reshare ---------------------------------------------------------------

def test_reply_is_a_comment_addressed_to_the_parents_author(node: Node) -> None:
    root = node.post(node.a, "post", "a root")
    out = node.post_json(node.b, "reply", root, "nice one")
    sha = out["sha1"]
    assert node.file(node.b, sha).is_file()  # in the commenter's own feed
    assert hashlib.sha1(node.file(node.b, sha).read_bytes()).hexdigest() == sha
    assert out["post"]["kind"] == "comment"
    assert out["post"]["recipients"] == [node.a] and out["post"]["replies_to"] == [root]
    stored = node.attrs(node.b, sha)
    assert stored["TO_FINGERPRINT"] == node.a and stored["REPLY_POSTSHA"] == root
    reaction = node.post_json(node.b, "reply", root, "👍🏽")["post"]
    assert reaction["is_reaction"] is True and out["post"]["is_reaction"] is False


def test_message_to_several_fingerprints(node: Node) -> None:
    out = node.post_json(node.a, "message", "to you both", "--to", node.b, "--to", OTHER)
    post = out["post"]
    assert post["kind"] == "message" and post["public"] is False
    assert post["recipients"] == sorted([node.b, OTHER])
    stored = node.attrs(node.a, out["sha1"])
    assert {stored["TO_FINGERPRINT"], stored["TO2_FINGERPRINT"]} == {node.b, OTHER}
    convs = ok_json(node.root, "conversations")["conversations"]
    conv = next(c for c in convs if set(c["participants"]) == {node.a, node.b, OTHER})
    assert conv["last"]["sha1"] == out["sha1"]
    page = ok_json(node.root, "conversation", conv["id"])
    assert [m["sha1"] for m in page["messages"]][:1] == [out["sha1"]]
    human = ok(node.root, "conversations")
    assert conv["id"] in human and "to you both" in human


def test_message_needs_a_recipient(node: Node) -> None:
    before = node.files()
    result = run(node.root, "message", node.a, "to nobody", "--password-file",
                 str(node.pw[node.a]))
    assert result.exit_code == 2 and "--to" in result.output
    assert node.files() == before


def test_reshare_holds_the_whole_post_and_verifies(node: Node) -> None:
    root = node.post(node.a, "post", "worth resharing")
    out = node.post_json(node.b, "reshare", root, "look at this")
    inner = out["post"]["attributes"]["RESHARED_POST"]["post"]
    assert inner["sha1"] == root and inner["author"] == node.a
    assert out["post"]["reshared"] is True
    stored = node.attrs(node.b, out["sha1"])
    assert stored["RESHARED_POST"].encode("ascii") == node.file(node.a, root).read_bytes()
    assert stored["TEXT"] == "look at this"
    verify_with_pynacl(node, node.a, stored["RESHARED_POST"].encode("ascii"))
    raw = node.file(node.b, out["sha1"]).read_bytes()
    dd = DataDir(node.root, environ={})
    assert Ingestor(dd).verify(raw).sha1 == out["sha1"]  # the whole pipeline, nested included
    bare = node.post_json(node.a, "reshare", out["sha1"])["post"]  # no commentary, nested 2
    assert "TEXT" not in bare["attributes"]
    assert bare["attributes"]["RESHARED_POST"]["post"]["attributes"]["RESHARED_POST"][
        "post"]["sha1"] == root


# --- profiles ----------------------------------------------------------------------------

def test_profile_set_and_show_round_trip(node: Node, tmp_path: Path, api: Any) -> None:
    (tmp_path / "me.png").write_bytes(PNG)
    public = node.post_json(node.a, "profile set", "--name", "Ahmed",
                            "--birthdate", "1990-02-03", "--workplace", "Cairo University",
                            "--phone", "+20 100 000", "--email", "ahmed@example.org",
                            "--picture", str(tmp_path / "me.png"), "--time", str(T0 + 10))
    assert public["post"]["kind"] == "profile" and public["post"]["public"] is True
    stored = node.attrs(node.a, public["sha1"])
    assert stored["PROFILENAME"] == "Ahmed" and stored["BIRTHDATE"] == "1990-02-03"
    assert stored["WORKPLACE"] == "Cairo University" and stored["PHONE"] == "+20 100 000"
    assert stored["EMAIL"] == "ahmed@example.org" and b64url(stored["PROFILEPICTURE"]) == PNG
    private = node.post(
        node.a, "profile set", "--name", "Ahmed (for Basant)", "--birthdate", "1990-02-04",
        "--to", node.b,
        "--time", str(T0 + 20))
    assert node.attrs(node.a, private)["TO_FINGERPRINT"] == node.b

    shown = ok_json(node.root, "profile", "show", node.a)  # as this node's own identities
    assert shown == api.get(f"/profiles/{node.a}").json
    assert shown["sha1"] == private and shown["public"] is False
    assert shown["attributes"]["PROFILENAME"]["value"] == "Ahmed (for Basant)"
    as_other = ok_json(node.root, "profile", "show", node.a, "--viewer", OTHER)
    assert as_other["sha1"] == public["sha1"]
    assert as_other["attributes"]["PROFILEPICTURE"]["media"] == "image"
    human = ok(node.root, "profile", "show", node.a, "--viewer", OTHER)
    assert "PROFILENAME: Ahmed" in human
    assert f"[PROFILEPICTURE: image PNG, {len(PNG)} bytes]" in human

    book = ok_json(node.root, "contacts-book")
    assert book == api.get("/contacts-book").json
    card = next(c for c in book["contacts"] if c["fingerprint"] == node.a)
    assert card["name"] == "Ahmed (for Basant)" and card["phones"] == []  # a whole profile
    birthdays = ok_json(node.root, "birthdays")
    assert birthdays == api.get("/birthdays").json
    assert [b["birthdate"] for b in birthdays["birthdays"] if b["fingerprint"] == node.a] == [
        "1990-02-04"]
    assert "1990-02-04" in ok(node.root, "birthdays")
    assert "Ahmed (for Basant)" in ok(node.root, "contacts-book")


def test_profile_set_needs_a_field_and_show_an_existing_profile(node: Node) -> None:
    before = node.files()
    assert_error(run(node.root, "profile", "set", node.b, "--password-file",
                     str(node.pw[node.b])), 2, "profile field")
    assert_error(run(node.root, "profile", "set", node.b, "--birthdate", "1990-13-01",
                     "--password-file", str(node.pw[node.b])), 2, "BIRTHDATE")
    assert node.files() == before
    assert_error(run(node.root, "profile", "show", OTHER), 3, "no profile")


# --- reading -----------------------------------------------------------------------------

def test_timeline_is_the_api_timeline_newest_first(node: Node, api: Any) -> None:
    node.post(node.b, "post", "for the timeline")
    node.post(node.a, "post", "for the timeline too")
    out = ok_json(node.root, "timeline", "--limit", "500")
    assert out == api.get("/posts?limit=500").json
    keys = [(p["created"], p["sha1"]) for p in out["posts"]]
    assert keys == sorted(keys, reverse=True) and len(keys) == len(node.files())
    human = ok(node.root, "timeline", "--limit", "1").splitlines()
    assert human[0].split("  ")[1] == out["posts"][0]["author_name"]
    assert out["posts"][0]["sha1"] in human[0]
    cursor = ok_json(node.root, "timeline", "--limit", "1")["next_cursor"]
    assert human[-1] == f"next cursor: {cursor}"


def test_timeline_pages_never_skip_or_repeat(node: Node) -> None:
    for i in range(3):  # posts sharing one timestamp
        node.post(node.b, "post", f"same second {i}", "--time", str(T0 + 30))
    everything = [p["sha1"] for p in ok_json(node.root, "timeline", "--limit", "500")["posts"]]
    seen, cursor = [], None
    while True:
        page = ok_json(node.root, "timeline", "--limit", "2",
                       *(["--cursor", cursor] if cursor else []))
        seen += [p["sha1"] for p in page["posts"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything


def test_timeline_filters(node: Node) -> None:
    mine = node.post(node.b, "post", "by basant")
    comment = node.post(node.b, "reply", mine, "self comment")
    by_b = ok_json(node.root, "timeline", "--author", node.b, "--limit", "500")["posts"]
    assert {p["author"] for p in by_b} == {node.b} and mine in {p["sha1"] for p in by_b}
    comments = ok_json(node.root, "timeline", "--kind", "comment", "--limit", "500")["posts"]
    assert {p["kind"] for p in comments} == {"comment"}
    assert comment in {p["sha1"] for p in comments}
    two = ok_json(node.root, "timeline", "--kind", "comment", "--kind", "profile",
                  "--limit", "500")["posts"]
    assert {p["kind"] for p in two} <= {"comment", "profile"} and comment in {
        p["sha1"] for p in two}
    ok(node.root, "group", "create", "friends")
    ok(node.root, "group", "add", "friends", node.b)
    friends = ok_json(node.root, "timeline", "--group", "friends", "--limit", "500")["posts"]
    assert {p["author"] for p in friends} == {node.b}
    assert ok(node.root, "timeline", "--author", OTHER).strip() == "no posts"


def test_show_decoded_and_raw(node: Node, api: Any) -> None:
    sha = node.post(node.a, "post", "show me", "--attr", "TITLE_TEXT=a title")
    shown = ok_json(node.root, "show", sha)
    assert shown == api.get(f"/posts/{sha}").json and shown["verified"] is True
    result = run(node.root, "show", sha, "--raw")
    assert result.exit_code == 0 and result.stdout_bytes == node.file(node.a, sha).read_bytes()
    human = ok(node.root, "show", sha)
    assert f"sha1:     {sha}" in human and f"author:   {shown['author_name']} ({node.a})" in human
    assert "show me" in human and "TITLE_TEXT: a title" in human


def test_thread_nests_replies(node: Node, api: Any) -> None:
    root = node.post(node.a, "post", "thread root", "--time", str(T0 + 100))
    r1 = node.post(node.b, "reply", root, "first reply", "--time", str(T0 + 101))
    r11 = node.post(node.a, "reply", r1, "reply to the reply", "--time", str(T0 + 102))
    r111 = node.post(node.b, "reply", r11, "deeper", "--time", str(T0 + 103))
    r2 = node.post(node.b, "reply", root, "second reply", "--time", str(T0 + 104))
    out = ok_json(node.root, "thread", root)
    assert out == api.get(f"/posts/{root}/replies").json
    assert [(r["post"]["sha1"], r["depth"], r["parent"]) for r in out["replies"]] == [
        (r1, 1, root), (r11, 2, r1), (r111, 3, r11), (r2, 1, root)]
    human = ok(node.root, "thread", root).splitlines()

    def indent_of(sha: str) -> int:
        line = next(line for line in human if sha in line and "re:" not in line)
        return len(line) - len(line.lstrip(" "))

    assert [indent_of(s) for s in (root, r1, r11, r111, r2)] == [0, 4, 8, 12, 4]
    assert node.attrs(node.a, r11)["TO_FINGERPRINT"] == node.b  # to the parent's author


def test_reindex_after_losing_the_index_gives_the_same_timeline(node: Node) -> None:
    before = ok_json(node.root, "timeline", "--limit", "500")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{node.root / 'state' / 'index.sqlite3'}{suffix}").unlink(missing_ok=True)
    out = ok_json(node.root, "reindex")
    assert out == {"indexed": len(node.files()), "removed_temps": 0}
    assert ok_json(node.root, "timeline", "--limit", "500") == before
    assert ok(node.root, "reindex").strip() == f"indexed {len(node.files())} posts"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{node.root / 'state' / 'index.sqlite3'}{suffix}").unlink(missing_ok=True)
    result = run(node.root, "--json", "reindex", "--workers", "2")
    assert json.loads(result.stdout)["indexed"] == len(node.files())
    assert "verifying" in result.stderr  # the progress bar
    assert ok_json(node.root, "timeline", "--limit", "500") == before


def test_delete_post(node: Node) -> None:
    sha = node.post(node.b, "post", "short-lived")
    out = ok_json(node.root, "delete-post", sha, "--password-file", str(node.pw[node.b]))
    assert out == {"ok": True, "changed": True, "sha1": sha, "record": out["record"],
                   "deleted": [sha]}
    assert node.file(node.b, out["record"]).exists()  # the signed deletion record stays
    assert not node.file(node.b, sha).exists()
    assert sha not in {p["sha1"] for p in ok_json(node.root, "timeline", "--limit", "500")[
        "posts"]}
    assert_error(run(node.root, "show", sha), 3, "deleted by its author")
    assert_error(run(node.root, "delete-post", sha), 3, "no post")


def test_edit_then_delete_every_version(node: Node) -> None:
    sha = node.post(node.a, "post", "first words")
    out = ok_json(node.root, "edit", sha, "better words", "--password-file",
                  str(node.pw[node.a]))
    new = out["sha1"]
    assert out["post"]["edited"] is True and out["post"]["latest"] == new
    assert [v["sha1"] for v in out["post"]["versions"]] == [sha, new]
    shown = {p["sha1"] for p in ok_json(node.root, "timeline", "--limit", "500")["posts"]}
    assert new in shown and sha not in shown
    assert "edited:" in ok(node.root, "show", sha)
    gone = ok_json(node.root, "delete-post", new, "--password-file", str(node.pw[node.a]))
    assert sorted(gone["deleted"]) == sorted([sha, new])
    assert not node.file(node.a, sha).exists() and not node.file(node.a, new).exists()


def test_human_output_escapes_control_characters(node: Node) -> None:
    newest = str(int(time.time()) + 200)  # newer than every other post (skew allows 300 s)
    node.post(node.b, "post", "\x1b[2Jred\u202eevil\rcarriage", "--time", newest)
    out = ok(node.root, "timeline", "--author", node.b, "--limit", "1")
    assert "\x1b" not in out and "\u202e" not in out and "\r" not in out
    assert "\\u001b[2Jred\\u202eevil\\u000dcarriage" in out


# --- bad input: a clear error, a non-zero exit, nothing written ------------------------------

@pytest.mark.parametrize(("args", "code", "fragment"), [
    (["post", "not-a-fp", "x"], 3, "AS_FP 'not-a-fp': no petname or key by that name"),
    (["post", "not/a/fp", "x"], 2, "AS_FP 'not/a/fp' is not a fingerprint"),
    (["post", "abc", "x"], 2, "AS_FP 'abc': a fingerprint prefix needs at least 8"),
    (["post", OTHER, "x"], 3, "unknown identity"),
    (["post", "{a}", "x", "--to", "nope"], 3, "--to 'nope': no petname or key by that name"),
    (["post", "{a}", "x", "--to", "no pe"], 2, "--to 'no pe' is not a fingerprint"),
    (["post", "{a}", "x", "--media", "P=/no/such/file"], 2, "/no/such/file"),
    (["post", "{a}", "x", "--media", "no-equals-sign"], 2, "NAME=PATH"),
    (["post", "{a}", "x", "--attr", "lower_text=x"], 2, "--attr"),
    (["post", "{a}", "x", "--attr", "X_PNG=AAAA"], 2, "X_PNG"),
    (["post", "{a}", "x", "--attr", "WHEN_TIME=soon"], 2, "integer"),
    (["post", "{a}", "x", "--attr", "TEXT=y"], 2, "twice"),
    (["post", "{a}", "x", "--time", "99999999999"], 2, "future"),
    (["post", "{a}"], 2, "empty"),
    (["reply", "{a}", "123abc", "x"], 2, "SHA '123abc' is not a post SHA-1"),
    (["reply", "{a}", "0" * 40, "x"], 3, "no post"),
    (["reshare", "{a}", "f" * 40], 3, "no post"),
    (["message", "{a}", "x", "--to", "{b}", "--to", "AB" * 32], 2, "is not a fingerprint"),
])
def test_bad_input_is_refused_before_the_password(node: Node, args: list[str], code: int,
                                                  fragment: str) -> None:
    before = node.files()
    args = [a.format(a=node.a, b=node.b) for a in args]
    # no password is given: a check that passed would prompt and fail on empty input
    assert_error(run(node.root, *args, input=""), code, fragment)
    assert node.files() == before


def test_wrong_password_writes_nothing(node: Node, tmp_path: Path) -> None:
    target = node.post(node.a, "post", "a post to reply to")
    before = node.files()
    (tmp_path / "wrong").write_text("not the password\n")
    assert_error(run(node.root, "post", node.a, "x", "--password-file", str(tmp_path / "wrong")),
                 5, "password is wrong")
    assert_error(run(node.root, "reply", node.b, target, "x",
                     "--password-stdin", input=PW_A + "\n"), 5, "password is wrong")
    assert node.files() == before


def test_stdin_cannot_hold_both_the_text_and_the_password(node: Node) -> None:
    before = node.files()
    assert_error(run(node.root, "post", node.a, "-", "--password-stdin", input=PW_A + "\nx\n"),
                 2, "stdin")
    assert node.files() == before


def test_media_larger_than_a_post_is_refused(node: Node, tmp_path: Path) -> None:
    limit = DataDir(node.root, environ={}).settings["max_post_bytes"]
    big = tmp_path / "big.bin"
    with big.open("wb") as f:
        f.truncate(limit + 1)
    before = node.files()
    assert_error(run(node.root, "post", node.a, "x", "--media", f"BIG={big}", input=""),
                 2, "max_post_bytes")
    assert node.files() == before


@pytest.mark.parametrize("args", [
    ["show", "xyz"], ["thread", "XYZ"], ["delete-post", "1" * 39], ["timeline", "--author", "x!"],
    ["timeline", "--cursor", "bogus"], ["conversation", "123"], ["profile", "show", "no pe"],
    ["profile", "show", OTHER, "--viewer", "abc"],
])
def test_bad_read_arguments(node: Node, args: list[str]) -> None:
    result = run(node.root, *args)
    assert result.exit_code == 2 and result.stderr.startswith("error: "), result.output


def test_reading_missing_things(node: Node) -> None:
    assert_error(run(node.root, "timeline", "--author", "x"), 3, "no petname or key")
    assert_error(run(node.root, "profile", "show", "nope"), 3, "no petname or key")
    assert_error(run(node.root, "profile", "show", OTHER, "--viewer", "deadbeef00"), 3,
                 "no key here starts with it")
    assert_error(run(node.root, "show", "e" * 40), 3, "no post")
    assert_error(run(node.root, "thread", "e" * 40), 3, "no post")
    assert_error(run(node.root, "conversation", "0" * 32), 3, "no conversation")
    assert_error(run(node.root, "timeline", "--group", "nosuchgroup"), 3, "nosuchgroup")


def test_posting_as_a_known_but_not_own_identity_is_refused(node: Node, tmp_path: Path) -> None:
    other_root = tmp_path / "other"
    ok(other_root, "init")
    ok(other_root, "identity", "import", str(node.root / "identities" / f"{node.a}.pub"))
    result = run(other_root, "post", node.a, "impostor", input=PW_A + "\n")
    assert result.exit_code == 5 and result.stderr.startswith("error: ")
    assert not (other_root / "posts" / node.a).exists() or not os.listdir(
        other_root / "posts" / node.a)


def test_reindex_removes_temporaries_left_by_a_crash(
        node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from app.core.base import fsio

    node.post(node.a, "post", "kept through the clean-up")
    real = node.files()
    one = sorted(real)[0]
    crashed = [one.parent / f"{fsio.TEMP_PREFIX}{one.name}.0a1b2c",
               node.root / "state" / f"{fsio.TEMP_PREFIX}index.0"]
    for path in crashed:
        path.write_bytes(b"half a post")
    assert ok_json(node.root, "reindex")["removed_temps"] == 0  # too young to be a crash's
    assert all(p.exists() for p in crashed)
    clock = time.time() + 3600
    monkeypatch.setattr(fsio.time, "time", lambda: clock)
    out = ok_json(node.root, "reindex")
    assert out == {"indexed": len(real), "removed_temps": 2}
    assert not any(p.exists() for p in crashed) and node.files() == real


def test_a_name_from_someone_else_reaches_no_terminal_raw(node: Node) -> None:
    """Every human line passes one cleaner (app/cli/base.py): a profile name is shown in
    tables, headers and lists, not only post text (found by the end-of-stop tester: a
    contact's name cleared the screen of whoever ran ``diwan contact list``)."""
    evil = "Ev\x1b[2Jil\u202e\r\u2028x"
    node.post_json(node.b, "profile set", "--name", evil, "--password-file",
                   str(node.pw[node.b]))
    node.post(node.b, "post", "hello", "--time", str(int(time.time()) + 250))
    for args in (["timeline", "--limit", "3"], ["identity", "list"]):
        out = ok(node.root, *args)
        assert not any(c in out for c in "\x1b\u202e\r\u2028"), (args, out)
    assert "Ev\\u001b[2Jil\\u202e\\u000d\\u2028x" in ok(node.root, "timeline", "--limit", "3")
