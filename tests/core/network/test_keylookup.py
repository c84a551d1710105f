"""Key lookup: the right key is stored, a lying node is recorded and never asked again."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from app.core.base.datadir import DataDir
from app.core.base.encoding import b64d, b64e
from app.core.base.errors import LyingPeer, NotFound, PeerError
from app.core.identity.identities import Identities
from app.core.network.contacts import Contacts
from app.core.network.keylookup import LyingPeers, fetch_key, make_key_lookup
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


def test_a_wrong_key_is_a_lie_recorded_and_never_asked_again(node: DataDir) -> None:
    fp, _, _ = other_key()
    wrong_fp, wrong_doc, _ = other_key()
    session, transport = session_with(lambda call: text(200, wrong_doc))
    with pytest.raises(LyingPeer) as err:
        fetch_key(node, fp, [LIAR], session=session)
    assert err.value.status == 502
    assert not Identities(node).exists(fp) and not Identities(node).exists(wrong_fp)
    assert list(node.identities.glob("*.pub")) == list(node.identities.glob(
        f"{Identities(node).own_fingerprints()[0]}.pub"))
    [entry] = LyingPeers(node).list()
    assert entry["address"] == LIAR and entry["fingerprint"] == fp
    assert wrong_fp in entry["why"] and entry["when"] > 0
    with pytest.raises(LyingPeer, match="recorded as a lying peer"):
        fetch_key(node, other_key()[0], [LIAR], session=session)
    assert len(transport.calls) == 1


def test_a_key_whose_certificate_does_not_verify_is_a_lie(node: DataDir) -> None:
    fp, doc, _ = other_key()
    lines = doc.decode().splitlines()
    cert = bytearray(b64d(lines[3].split()[1]))
    cert[0] ^= 1
    forged = "\n".join(lines[:3] + [f"certificate {b64e(bytes(cert))}"]) + "\n"
    session, _ = session_with(lambda call: text(200, forged))
    with pytest.raises(LyingPeer):
        fetch_key(node, fp, [LIAR], session=session)
    assert not Identities(node).exists(fp)
    assert "does not verify" in LyingPeers(node).list()[0]["why"]


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


def test_lookup_order_source_first_then_contacts(node: DataDir) -> None:
    me = Identities(node).own_fingerprints()[0]
    contact, contact_doc, _ = other_key()
    Identities(node).import_pub(contact_doc)
    Contacts(node).put(contact, OTHER, me)
    fp, doc, _ = other_key()
    session, transport = session_with(routes({HONEST: serve({}), OTHER: serve({fp: doc})}))
    lookup = make_key_lookup(node, HONEST, session=session)
    assert lookup(fp) == doc
    assert transport.urls() == [f"{HONEST}/identities/{fp}", f"{OTHER}/identities/{fp}"]
    assert Identities(node).exists(fp)


def test_lookup_skips_liars_and_keeps_going(node: DataDir) -> None:
    fp, doc, _ = other_key()
    _, wrong_doc, _ = other_key()
    session, _ = session_with(routes({LIAR: lambda call: text(200, wrong_doc),
                                      HONEST: serve({fp: doc})}))
    lookup = make_key_lookup(node, LIAR, session=session)
    lookup.addresses.append(HONEST)
    assert lookup(fp) == doc
    assert [e["address"] for e in LyingPeers(node).list()] == [LIAR]


def test_lookup_returns_none_and_remembers_misses(node: DataDir) -> None:
    fp, _, _ = other_key()
    session, transport = session_with(serve({}))
    lookup = make_key_lookup(node, HONEST, session=session)
    assert lookup(fp) is None and lookup(fp) is None
    assert len(transport.calls) == 1
    assert lookup("not a fingerprint") is None
    assert len(transport.calls) == 1


def test_an_unreachable_node_is_not_asked_again_in_one_lookup(node: DataDir) -> None:
    def down(call: Call):  # type: ignore[no-untyped-def]
        raise requests.ConnectionError("refused")

    session, transport = session_with(down)
    lookup = make_key_lookup(node, HONEST, session=session)
    assert lookup(other_key()[0]) is None and lookup(other_key()[0]) is None
    assert len(transport.calls) == 1


@pytest.mark.parametrize("limit", [0, 2])
def test_lookup_limit_edge(tmp_path: Path, template: tuple[DataDir, str], limit: int) -> None:
    node = copy_node(tmp_path / "n", template[0], [template[1]], key_lookup_limit=limit)
    wanted = [other_key() for _ in range(limit + 1)]
    session, transport = session_with(serve({fp: doc for fp, doc, _ in wanted}))
    lookup = make_key_lookup(node, HONEST, session=session)
    got = [lookup(fp) for fp, _, _ in wanted]
    assert got == [doc for _, doc, _ in wanted[:limit]] + [None]
    assert len(transport.calls) == limit


def test_blocked_keys_are_not_fetched(node: DataDir) -> None:
    fp, doc, _ = other_key()
    Identities(node).import_pub(doc)
    Identities(node).block(fp)
    Identities(node).pub_path(fp).unlink()
    session, transport = session_with(serve({fp: doc}))
    assert make_key_lookup(node, HONEST, session=session)(fp) is None
    assert transport.calls == []


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
