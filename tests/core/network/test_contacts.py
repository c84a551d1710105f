"""The address book: address validation, the locked JSON file, adding a contact."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest

from app.core.base.datadir import DataDir
from app.core.base.errors import (
    BadFingerprint,
    BadInput,
    Conflict,
    CorruptFile,
    LyingPeer,
    NotFound,
    PeerError,
)
from app.core.identity.identities import Identities
from app.core.network.contacts import MAX_ADDRESS_CHARS, Contacts, normalise_address
from app.core.network.keylookup import LyingPeers, add_contact
from tests.helpers.datadirs import PASSWORD, make_datadir
from tests.helpers.fake_peers import copy_node, other_key, session_with, text


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataDir, str]:
    dd = make_datadir(tmp_path_factory.mktemp("template"))
    return dd, Identities(dd).create(PASSWORD)


@pytest.fixture
def node(tmp_path: Path, template: tuple[DataDir, str]) -> tuple[DataDir, str]:
    dd, me = template
    return copy_node(tmp_path / "node", dd, [me]), me


@pytest.mark.parametrize("raw, expected", [
    ("http://127.0.0.1:8889", "http://127.0.0.1:8889"),
    ("HTTP://Node.Example.ORG:8889/", "http://node.example.org:8889"),
    ("https://example.org", "https://example.org:443"),
    ("http://example.org", "http://example.org:80"),
    ("http://[::1]:8889", "http://[::1]:8889"),
    ("http://[0:0:0:0:0:0:0:1]:1", "http://[::1]:1"),
    ("http://a:65535", "http://a:65535"),
    ("http://node.local.:8889", "http://node.local:8889"),
])
def test_addresses_are_normalised(raw: str, expected: str) -> None:
    assert normalise_address(raw) == expected


@pytest.mark.parametrize("raw", [
    "", None, 8889, "127.0.0.1:8889", "ftp://host:21", "file:///etc/passwd", "http://:8889",
    "http://user:pw@host:8889", "http://user@host:8889", "http://host:8889/feeds",
    "http://host:8889?x=1", "http://host:8889?", "http://host:8889#top", "http://host:0",
    "http://host:65536", "http://host:port", "http://ho st:8889", "http://host:8889\n",
    "http://-host:8889", "http://ex_ample.org:8889", "http://hôst:8889", "http://a..b:1",
    "http://" + "a" * 64 + ":1", "javascript:alert(1)",
])
def test_bad_addresses_name_the_field(raw: object) -> None:
    with pytest.raises(BadInput) as err:
        normalise_address(raw)
    assert err.value.field == "address"


def test_address_length_edges() -> None:
    host = ".".join(["a" * 63] * 3 + ["b" * 61])  # 253 characters: the longest host name
    assert normalise_address(f"http://{host}:1") == f"http://{host}:1"
    with pytest.raises(BadInput):
        normalise_address(f"http://{host}b:1")
    too_long = "http://" + "a" * (MAX_ADDRESS_CHARS - 8) + ":1"
    assert len(too_long) == MAX_ADDRESS_CHARS + 1
    with pytest.raises(BadInput, match="characters"):
        normalise_address(too_long)


def test_put_get_list_remove(node: tuple[DataDir, str]) -> None:
    dd, me = node
    book = Contacts(dd)
    fp, _, _ = other_key()
    contact, created = book.put(fp, "http://127.0.0.1:9000/", me)
    assert created and contact.address == "http://127.0.0.1:9000" and contact.identity == me
    again, created = book.put(fp, "http://127.0.0.1:9001", me)
    assert not created and again.added == contact.added
    assert [c.fingerprint for c in book.list()] == [fp]
    assert book.get(fp).addresses == ("http://127.0.0.1:9001",)
    path = dd.state / "contacts.json"
    assert json.loads(path.read_bytes()) == {fp: {"addresses": ["http://127.0.0.1:9001"],
                                                  "identity": me, "added": contact.added}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    book.remove(fp)
    assert book.list() == []
    with pytest.raises(NotFound):
        book.remove(fp)
    with pytest.raises(NotFound):
        book.get(fp)
    with pytest.raises(BadFingerprint):
        book.get("../../etc/passwd")


def test_corrupt_file_is_reported(node: tuple[DataDir, str]) -> None:
    dd, _ = node
    (dd.state / "contacts.json").write_text("{not json")
    with pytest.raises(CorruptFile):
        Contacts(dd).list()
    (dd.state / "contacts.json").write_text(json.dumps({"f" * 64: {"addresses": ["x"]}}))
    with pytest.raises(CorruptFile):
        Contacts(dd).list()


def test_concurrent_writers_lose_nothing(node: tuple[DataDir, str]) -> None:
    dd, me = node
    fps = [other_key()[0] for _ in range(16)]

    def add(fp: str) -> None:
        Contacts(dd).put(fp, "http://127.0.0.1:9000", me)

    threads = [threading.Thread(target=add, args=(fp,)) for fp in fps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {c.fingerprint for c in Contacts(dd).list()} == set(fps)


def test_check_new_refuses_impossible_contacts(node: tuple[DataDir, str]) -> None:
    dd, me = node
    book, ids = Contacts(dd), Identities(dd)
    fp, doc, _ = other_key()
    stranger, stranger_doc, _ = other_key()
    with pytest.raises(NotFound) as err:
        book.check_new(fp, stranger)
    assert err.value.field == "identity"
    ids.import_pub(stranger_doc)
    with pytest.raises(BadInput) as err2:
        book.check_new(fp, stranger)
    assert err2.value.field == "identity"
    with pytest.raises(Conflict):
        book.check_new(me, me)
    ids.import_pub(doc)
    ids.block(fp)
    with pytest.raises(Conflict, match="blocked"):
        book.check_new(fp, me)
    with pytest.raises(BadFingerprint):
        book.check_new(fp, "me")


def test_add_fetches_an_unknown_key(node: tuple[DataDir, str]) -> None:
    dd, me = node
    fp, doc, _ = other_key()
    session, transport = session_with(lambda call: text(200, doc))
    contact, created, fetched = add_contact(dd, fp, "http://10.1.2.3:8889", me,
                                                 session=session)
    assert created and fetched
    assert transport.urls() == [f"http://10.1.2.3:8889/identities/{fp}"]
    assert Identities(dd).pub_path(fp).read_bytes() == doc
    # known now: updating the contact asks nobody; a new address needs replace
    with pytest.raises(Conflict, match="already followed at http://10.1.2.3:8889"):
        add_contact(dd, fp, "http://10.1.2.3:8890", me, session=session)
    assert Contacts(dd).get(fp).address == "http://10.1.2.3:8889"
    add_contact(dd, fp, "http://10.1.2.3:8890", me, session=session, replace=True)
    assert Contacts(dd).get(fp).address == "http://10.1.2.3:8890"
    assert len(transport.calls) == 1


def test_add_with_a_wrong_key_stores_nothing_and_is_no_ban(node: tuple[DataDir, str]) -> None:
    """A wrong key over plain GET (forgeable by anyone on the path) is an ordinary error."""
    dd, me = node
    fp, doc, _ = other_key()
    liar, liar_doc, _ = other_key()
    answers = [liar_doc, doc]
    session, transport = session_with(lambda call: text(200, answers.pop(0)))
    with pytest.raises(PeerError) as err:
        add_contact(dd, fp, "http://10.9.9.9:8889", me, session=session)
    assert not isinstance(err.value, LyingPeer) and liar in err.value.message
    assert Contacts(dd).list() == []
    assert not Identities(dd).exists(fp) and not Identities(dd).exists(liar)
    assert LyingPeers(dd).list() == []
    contact, created, fetched = add_contact(dd, fp, "http://10.9.9.9:8889", me,
                                            session=session)  # asked again: works
    assert created and fetched and len(transport.calls) == 2
