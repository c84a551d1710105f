"""Key lookup: the right key is stored; a wrong plain-GET answer is an ordinary, retried error
(attack 6); only nodes hosting a key are asked, and only those of the same own identity
(attack 5); a wrong key inside an authenticated exchange marks the peer as lying."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from app.core.base.datadir import DataDir
from app.core.base.encoding import b64d, b64e
from app.core.base.errors import LyingPeer, NotFound, PeerError
from app.core.identity.identities import Identities
from app.core.network.contacts import Contact, Contacts
from app.core.network.keylookup import KeyLookup, LyingPeers, fetch_key, make_key_lookup
from tests.helpers.datadirs import PASSWORD, make_datadir
from tests.helpers.fake_peers import Call, copy_node, other_key, routes, session_with, text

HONEST = "http://10.0.0.1:8889"
LIAR = "http://10.0.0.2:8889"
OTHER = "http://10.0.0.3:8889"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataDir, str]:
    dd = make_datadir(tmp_path_factory.mktemp("template"))
    return dd, Identities(dd).create(PASSWORD)


@pytest.fixture
def node(tmp_path: Path, template: tuple[DataDir, str]) -> DataDir:
    return copy_node(tmp_path / "node", template[0], [template[1]])


def serve(docs: dict[str, bytes]):  # type: ignore[no-untyped-def]
    """A key server holding ``docs`` (fingerprint -> .pub)."""
    def handle(call: Call):  # type: ignore[no-untyped-def]
        fp = call.url.rsplit("/", 1)[1]
        return text(200, docs[fp]) if fp in docs else text(404, '{"message": "no"}',
                                                          "application/json")
    return handle


def test_the_right_key_is_fetched_and_stored(node: DataDir) -> None:
    fp, doc, _ = other_key()
    session, transport = session_with(serve({fp: doc}))
    assert fetch_key(node, fp, [HONEST], session=session) == fp
    assert transport.urls() == [f"{HONEST}/identities/{fp}"]
    assert transport.calls[0].method == "GET"
    assert Identities(node).pub_path(fp).read_bytes() == doc
    fetch_key(node, fp, [HONEST], session=session)  # known: nobody is asked
    assert len(transport.calls) == 1


def broken(doc: bytes) -> bytes:
    """``doc`` with one bit of its certificate flipped (well formed, does not verify)."""
    lines = doc.decode().splitlines()
    fields = lines[2].split()
    cert = bytearray(b64d(fields[4]))
    cert[0] ^= 1
    return ("\n".join(lines[:2] + [" ".join(fields[:4] + [b64e(bytes(cert))])]) + "\n").encode()


def test_a_wrong_key_by_plain_get_is_an_ordinary_error_asked_again(node: DataDir) -> None:
    """Attack 6: one forged unauthenticated answer must not ban the address."""
    fp, doc, _ = other_key()
    wrong_fp, wrong_doc, _ = other_key()
    answers = [wrong_doc, doc]
    session, transport = session_with(lambda call: text(200, answers.pop(0)))
    with pytest.raises(PeerError) as err:
        fetch_key(node, fp, [LIAR], session=session)
    assert not isinstance(err.value, LyingPeer) and err.value.status == 502
    assert wrong_fp in err.value.message and "asked again" in err.value.message
    assert not Identities(node).exists(fp) and not Identities(node).exists(wrong_fp)
    assert list(node.identities.glob("*.pub")) == list(node.identities.glob(
        f"{Identities(node).own_fingerprints()[0]}.pub"))
    assert LyingPeers(node).list() == [] and not (node.state / "lying_peers.json").exists()
    assert fetch_key(node, fp, [LIAR], session=session) == fp  # retried, and now right
    assert len(transport.calls) == 2


def test_a_key_whose_certificate_does_not_verify_is_no_lie_either(node: DataDir) -> None:
    fp, doc, _ = other_key()
    session, _ = session_with(lambda call: text(200, broken(doc)))
    with pytest.raises(PeerError, match="does not verify") as err:
        fetch_key(node, fp, [LIAR], session=session)
    assert not isinstance(err.value, LyingPeer)
    assert not Identities(node).exists(fp)
    assert LyingPeers(node).list() == []


def test_an_answer_that_is_no_key_document_is_no_lie(node: DataDir) -> None:
    fp, _, _ = other_key()
    session, _ = session_with(lambda call: text(200, "<html>hello</html>", "text/html"))
    with pytest.raises(PeerError) as err:
        fetch_key(node, fp, [OTHER], session=session)
    assert not isinstance(err.value, LyingPeer)
    assert LyingPeers(node).list() == []


def test_unknown_and_failing_nodes(node: DataDir) -> None:
    fp, _, _ = other_key()
    session, _ = session_with(serve({}))
    with pytest.raises(NotFound):
        fetch_key(node, fp, [HONEST], session=session)
    session, _ = session_with(lambda call: text(500, '{"message": "boom"}', "application/json"))
    with pytest.raises(PeerError, match="HTTP 500: boom"):
        fetch_key(node, fp, [HONEST], session=session)

    def timeout(call: Call):  # type: ignore[no-untyped-def]
        raise requests.ReadTimeout("slow")

    session, _ = session_with(timeout)
    with pytest.raises(PeerError, match="did not answer"):
        fetch_key(node, fp, [HONEST], session=session)


def test_redirects_are_not_followed(node: DataDir) -> None:
    fp, doc, _ = other_key()
    session, transport = session_with(routes({
        HONEST: lambda call: (302, b"", {"Location": f"{OTHER}/identities/{fp}"}),
        OTHER: lambda call: text(200, doc)}))
    with pytest.raises(PeerError, match="HTTP 302"):
        fetch_key(node, fp, [HONEST], session=session)
    assert transport.urls() == [f"{HONEST}/identities/{fp}"]


@pytest.mark.parametrize("size, accepted", [(4096, True), (4097, False)])
def test_answer_size_cap_edge(node: DataDir, size: int, accepted: bool) -> None:
    fp, _, _ = other_key()
    session, _ = session_with(lambda call: text(200, b"x" * size))
    with pytest.raises(PeerError) as err:
        fetch_key(node, fp, [HONEST], session=session)
    # read whole (then refused as no key document) at the cap, cut off above it
    assert ("more than the 4096 bytes" in err.value.message) is not accepted
    assert node.settings["key_lookup_max_bytes"] == 4096


def follow(node: DataDir, fp: str, address: str, me: str | None = None) -> Contact:
    me = me or Identities(node).own_fingerprints()[0]
    Contacts(node).put(fp, address, me)
    return Contacts(node).get(fp)


def test_sync_lookups_ask_only_the_node_hosting_a_key(node: DataDir) -> None:
    """The source is asked for its own key only; another contact of the same own identity
    for its own key only; any other fingerprint nowhere (it comes inside the exchange)."""
    source, source_doc, _ = other_key()
    friend, friend_doc, _ = other_key()
    stranger, stranger_doc, _ = other_key()
    docs = {source: source_doc, friend: friend_doc, stranger: stranger_doc}
    session, transport = session_with(routes({HONEST: serve(docs), OTHER: serve(docs)}))
    follow(node, friend, OTHER)
    lookup = make_key_lookup(node, follow(node, source, HONEST), session=session)
    assert lookup(stranger) is None
    assert transport.calls == []
    assert lookup(source) == source_doc and lookup(friend) == friend_doc
    assert transport.urls() == [f"{HONEST}/identities/{source}", f"{OTHER}/identities/{friend}"]


def test_contacts_of_another_own_identity_are_never_asked(node: DataDir) -> None:
    """Attack 5 (unit): a lookup for content synced as A1 never reaches A2's contacts."""
    a2 = "a2" * 32  # another own identity's fingerprint, as recorded in the address book
    source, _, _ = other_key()
    their, their_doc, _ = other_key()
    session, transport = session_with(serve({their: their_doc}))
    follow(node, their, OTHER, me=a2)
    Identities(node).pub_path(their).unlink(missing_ok=True)
    lookup = make_key_lookup(node, follow(node, source, HONEST), session=session)
    assert lookup(their) is None
    assert OTHER not in " ".join(transport.urls())


def test_lookup_skips_liars_and_keeps_going(node: DataDir) -> None:
    fp, doc, _ = other_key()
    session, transport = session_with(routes({LIAR: serve({fp: doc}),
                                              HONEST: serve({fp: doc})}))
    LyingPeers(node).record(LIAR, other_key()[0], "served a wrong key in an exchange")
    lookup = KeyLookup(node, lambda _fp: [LIAR, HONEST], session=session)
    assert lookup(fp) == doc
    assert transport.urls() == [f"{HONEST}/identities/{fp}"]


def test_lookup_returns_none_and_remembers_misses(node: DataDir) -> None:
    fp, _, _ = other_key()
    session, transport = session_with(serve({}))
    lookup = make_key_lookup(node, follow(node, fp, HONEST), session=session)
    assert lookup(fp) is None and lookup(fp) is None
    assert len(transport.calls) == 1
    assert lookup("not a fingerprint") is None
    assert len(transport.calls) == 1


def test_an_unreachable_node_is_not_asked_again_in_one_lookup(node: DataDir) -> None:
    def down(call: Call):  # type: ignore[no-untyped-def]
        raise requests.ConnectionError("refused")

    session, transport = session_with(down)
    lookup = KeyLookup(node, lambda _fp: [HONEST], session=session)
    assert lookup(other_key()[0]) is None and lookup(other_key()[0]) is None
    assert len(transport.calls) == 1


@pytest.mark.parametrize("limit", [0, 2])
def test_lookup_limit_edge(tmp_path: Path, template: tuple[DataDir, str], limit: int) -> None:
    node = copy_node(tmp_path / "n", template[0], [template[1]], key_lookup_limit=limit)
    wanted = [other_key() for _ in range(limit + 1)]
    session, transport = session_with(serve({fp: doc for fp, doc, _ in wanted}))
    lookup = KeyLookup(node, lambda _fp: [HONEST], session=session)
    got = [lookup(fp) for fp, _, _ in wanted]
    assert got == [doc for _, doc, _ in wanted[:limit]] + [None]
    assert len(transport.calls) == limit


def test_blocked_keys_are_not_fetched(node: DataDir) -> None:
    fp, doc, _ = other_key()
    Identities(node).import_pub(doc)
    Identities(node).block(fp)
    Identities(node).pub_path(fp).unlink()
    session, transport = session_with(serve({fp: doc}))
    assert make_key_lookup(node, follow(node, fp, HONEST), session=session)(fp) is None
    assert transport.calls == []


# keys delivered inside the authenticated exchange -----------------------------------------

def test_a_key_delivered_in_the_exchange_is_used_without_asking_anyone(node: DataDir) -> None:
    fp, doc, _ = other_key()
    session, transport = session_with(serve({}))
    lookup = make_key_lookup(node, follow(node, other_key()[0], HONEST), session=session)
    assert lookup.offer_from_exchange(doc, fp) == fp
    assert not Identities(node).exists(fp)  # stored only when needed
    assert lookup(fp) == doc and Identities(node).exists(fp)
    assert transport.calls == [] and LyingPeers(node).list() == []


@pytest.mark.parametrize("limit", [0, 2])
def test_keys_delivered_in_the_exchange_limit_edge(tmp_path: Path, template: tuple[DataDir, str],
                                                   limit: int) -> None:
    node = copy_node(tmp_path / "n", template[0], [template[1]], key_lookup_limit=limit)
    offered = [other_key() for _ in range(limit + 1)]
    session, transport = session_with(serve({}))
    lookup = make_key_lookup(node, follow(node, other_key()[0], HONEST), session=session)
    for fp, doc, _ in offered:
        lookup.offer_from_exchange(doc, fp)
    assert [lookup(fp) for fp, _, _ in offered] == [doc for _, doc, _ in offered[:limit]] + [None]
    assert transport.calls == []


def test_a_wrong_key_inside_the_exchange_marks_the_peer_as_lying(node: DataDir) -> None:
    fp, _, _ = other_key()
    wrong_fp, wrong_doc, _ = other_key()
    lookup = make_key_lookup(node, follow(node, other_key()[0], HONEST))
    with pytest.raises(LyingPeer) as err:
        lookup.offer_from_exchange(wrong_doc, fp)
    assert wrong_fp in err.value.message
    [entry] = LyingPeers(node).list()
    assert entry["address"] == HONEST and entry["fingerprint"] == fp
    assert wrong_fp in entry["why"] and "authenticated exchange" in entry["why"]
    assert not Identities(node).exists(fp) and not Identities(node).exists(wrong_fp)
    with pytest.raises(LyingPeer, match="does not verify"):
        make_key_lookup(node, follow(node, other_key()[0], OTHER)).offer_from_exchange(
            broken(wrong_doc))
    assert [e["address"] for e in LyingPeers(node).list()] == [HONEST, OTHER]


def test_lying_peer_entries_of_the_old_rule_are_dropped(node: DataDir) -> None:
    """Entries made by one unauthenticated answer (before this rule) no longer count."""
    old = {LIAR: {"address": LIAR, "fingerprint": "ab" * 32, "why": "old", "when": 1.0}}
    (node.state / "lying_peers.json").write_text(json.dumps(old))
    assert LyingPeers(node).list() == [] and LyingPeers(node).get(LIAR) is None
    LyingPeers(node).record(HONEST, "cd" * 32, "served a wrong key in an exchange")
    stored = json.loads((node.state / "lying_peers.json").read_text())
    assert set(stored) == {HONEST} and stored[HONEST]["rule"] == "authenticated-exchange"


def test_forgiving_a_peer(node: DataDir) -> None:
    LyingPeers(node).record(LIAR, other_key()[0], "test")
    LyingPeers(node).forgive(LIAR + "/")
    assert LyingPeers(node).list() == []
    with pytest.raises(NotFound):
        LyingPeers(node).forgive(LIAR)


class Trickle(io.RawIOBase):
    """An answer that never ends, one byte at a time (a slow-loris peer)."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        time.sleep(0.01)
        buffer[0] = ord("x")
        return 1


def test_a_trickling_answer_is_cut_off_at_the_deadline(tmp_path: Path,
                                                      template: tuple[DataDir, str]) -> None:
    node = copy_node(tmp_path / "n", template[0], [template[1]], sync_timeout=1,
                     key_lookup_max_bytes=10**9)
    session, _ = session_with(lambda call: (200, Trickle(), {}))
    with pytest.raises(PeerError, match="took too long"):
        fetch_key(node, other_key()[0], [HONEST], session=session)
