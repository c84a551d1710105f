"""Names on the admin API (issue 11): path fingerprints by unique prefix, petnames,
display names beside listed fingerprints; the peer port never resolves prefixes."""

from __future__ import annotations

from pathlib import Path

from app import create_peer_app
from tests.helpers.clients import AdminClient, assert_error, make_admin_client
from tests.helpers.datadirs import PASSWORD
from tests.helpers.strangers import new_stranger


def _stranger(admin: AdminClient) -> str:
    return admin.identities.import_pub(new_stranger().document)


def test_a_unique_prefix_in_the_path_is_the_fingerprint(tmp_path: Path) -> None:
    admin = make_admin_client(tmp_path / "n")
    fp = admin.identities.create(PASSWORD)
    full = admin.get(f"/identities/{fp}")
    assert full.status_code == 200
    assert admin.get(f"/identities/{fp[:8]}").get_json() == full.get_json()
    assert admin.get(f"/identities/{fp[:40]}").get_json() == full.get_json()
    twin = fp[:10] + ("0" if fp[10] != "0" else "1") + fp[11:]
    (admin.dd.identities / f"{twin}.pub").write_bytes(b"")
    body = assert_error(admin.get(f"/identities/{fp[:10]}"), 400, "fp")
    assert "ambiguous" in body["message"] and fp[:16] in body["message"]
    assert_error(admin.get(f"/identities/{'f' * 8 if fp[0] != 'f' else 'e' * 8}"), 404, "fp")
    assert_error(admin.get(f"/identities/{fp[:7]}"), 400, "fp")


def test_an_unauthenticated_prefix_learns_nothing(tmp_path: Path) -> None:
    admin = make_admin_client(tmp_path / "n")
    fp = admin.identities.create(PASSWORD)
    answers = {p: admin.get(f"/identities/{p}", auth=False)
               for p in (fp, fp[:8], "0123456789", fp[:10])}
    assert {r.status_code for r in answers.values()} == {401}
    assert len({r.get_data() for r in answers.values()}) == 1


def test_the_peer_port_never_resolves_prefixes(tmp_path: Path) -> None:
    admin = make_admin_client(tmp_path / "n")
    fp = admin.identities.create(PASSWORD)
    peer = create_peer_app({"data_dir": str(admin.dd.root)}).test_client()
    assert peer.get(f"/identities/{fp}").status_code == 200
    assert peer.get(f"/identities/{fp[:8]}").status_code in (400, 404)
    assert peer.get(f"/identities/{fp[:8]}").get_data() != peer.get(
        f"/identities/{fp}").get_data()


def test_petnames_and_display_names(tmp_path: Path) -> None:
    admin = make_admin_client(tmp_path / "n")
    me = admin.identities.create(PASSWORD)
    other = _stranger(admin)
    assert admin.put(f"/petnames/{other}", json={"petname": "basant"}).status_code == 200
    assert admin.put(f"/petnames/{other[:8]}", json={"petname": "basant"}).status_code == 200
    assert admin.get("/petnames").get_json() == {
        "petnames": [{"fingerprint": other, "petname": "basant"}]}
    assert_error(admin.put(f"/petnames/{me}", json={"petname": "Basant"}), 409)
    assert_error(admin.put(f"/petnames/{me}", json={"petname": "deadbeef01"}), 400, "petname")
    assert_error(admin.put(f"/petnames/{me}", json={"petname": "a b"}), 400, "petname")
    made = admin.post("/posts", json={"fingerprint": me, "password": PASSWORD, "text": "hi",
                                      "to": [other]})
    assert made.status_code == 201, made.get_json()
    post = made.get_json()["post"]
    assert post["author_name"] == me[:16] and post["recipient_names"] == ["basant"]
    listed = admin.get("/posts").get_json()["posts"][0]
    assert listed["recipient_names"] == ["basant"]
    conversations = admin.get("/conversations").get_json()["conversations"]
    assert sorted(conversations[0]["participant_names"]) == sorted(["basant", me[:16]])
    assert admin.delete(f"/petnames/{other}").status_code == 204
    assert admin.get("/petnames").get_json() == {"petnames": []}
    again = admin.get(f"/posts/{post['sha1']}").get_json()
    assert again["recipient_names"] == [other[:16]]


def test_identity_lists_carry_display_names(tmp_path: Path) -> None:
    admin = make_admin_client(tmp_path / "n")
    me = admin.identities.create(PASSWORD)
    other = new_stranger()
    admin.identities.import_pub(other.document)
    admin.put(f"/petnames/{other.fp}", json={"petname": "camal"})
    listed = {i["fingerprint"]: i["display_name"]
              for i in admin.get("/identities").get_json()["identities"]}
    assert listed == {me: me[:16], other.fp: "camal"}
    assert admin.get(f"/identities/{other.fp}").get_json()["display_name"] == "camal"
