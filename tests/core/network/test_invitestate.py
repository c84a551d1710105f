"""Redeeming invites between nodes served over real HTTP on 127.0.0.1 (invitestate.py;
docs/protocol.md, Invites): one invite makes a mutual follow, its token works once and
not after expiry, and both sides always see where it stands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.base.datadir import DataDir
from app.core.base.errors import BadInvite, Conflict
from app.core.network import invitestate
from app.core.network.contacts import Contacts
from app.core.network.sync import StatusStore, sync_contact
from tests.helpers.live_peers import LivePeer, live_peer


@pytest.fixture
def three(tmp_path: Path) -> Iterator[tuple[LivePeer, LivePeer, LivePeer]]:
    with live_peer(tmp_path / "ahmed") as a, live_peer(tmp_path / "basant") as b, \
            live_peer(tmp_path / "camal") as c:
        yield a, b, c


def _state(dd: DataDir, fp: str) -> dict[str, Any] | None:
    contact = Contacts(dd).get(fp)
    return invitestate.link_state(dd, contact, StatusStore(dd).get(fp))


def test_one_invite_makes_a_mutual_follow(three: tuple[LivePeer, ...]) -> None:
    a, b, _ = three
    assert a.fp and b.fp
    text, invite = invitestate.make(a.dd, a.fp, a.seed())
    assert invite.addresses == (a.address,) and invite.token is not None
    contact, created, _ = invitestate.accept(b.dd, text, b.fp)
    assert created and contact.addresses == (a.address,) and b.ids.exists(a.fp)
    assert _state(b.dd, a.fp) == {"role": "invitee", "state": "waiting",
                                  "detail": "waiting to reach their node (the next sync "
                                            "sends the invite)"}
    assert Contacts(a.dd).find(b.fp) is None

    assert sync_contact(b.dd, a.fp).last_error is None   # carries the token
    back = Contacts(a.dd).get(b.fp)
    assert (back.address, back.identity) == (b.address, a.fp) and a.ids.exists(b.fp)
    assert [i["state"] for i in invitestate.issued(a.dd)] == ["used"]
    assert _state(b.dd, a.fp)["state"] == "waiting"      # type: ignore[index]
    assert _state(a.dd, b.fp)["state"] == "waiting"      # type: ignore[index]

    assert sync_contact(a.dd, b.fp).last_error is None   # the follow-back reaches Basant
    assert _state(a.dd, b.fp)["state"] == "connected"    # type: ignore[index]
    assert _state(b.dd, a.fp) == {"role": "invitee", "state": "connected",
                                  "detail": "you follow each other"}
    assert invitestate.hello(b.dd, Contacts(b.dd).get(a.fp)) == {}  # nothing more is sent


def test_the_token_works_once(three: tuple[LivePeer, ...]) -> None:
    a, b, c = three
    assert a.fp and b.fp and c.fp
    text, _ = invitestate.make(a.dd, a.fp, a.seed())
    invitestate.accept(b.dd, text, b.fp)
    invitestate.accept(c.dd, text, c.fp)       # the same invite, passed on
    assert sync_contact(b.dd, a.fp).last_error is None
    assert sync_contact(c.dd, a.fp).last_error is None
    assert Contacts(a.dd).fingerprints() == {b.fp}  # Camal was not followed back
    [made] = invitestate.issued(a.dd)
    assert (made["state"], made["used_by"], made["refused"]) == ("used", b.fp, 1)
    assert made["last_refusal"] == "used"
    assert _state(c.dd, a.fp)["state"] == "waiting"  # type: ignore[index]
    later = invitestate.link_state(c.dd, Contacts(c.dd).get(a.fp),
                                   StatusStore(c.dd).get(a.fp), now=made["expires"] + 1)
    assert later is not None and later["state"] == "failed"
    assert "did not follow back before the invite expired" in later["detail"]


def test_an_expired_or_foreign_token_does_nothing(three: tuple[LivePeer, ...]) -> None:
    a, b, c = three
    assert a.fp and b.fp and c.fp
    text, invite = invitestate.make(a.dd, a.fp, a.seed(), expiry=60)
    assert invite.token is not None
    pub = b.ids.pub_document(b.fp)
    after = invite.expires + 1
    assert invitestate.redeem(a.dd, a.fp, b.fp, pub, invite.token, b.address,
                              now=after) == "expired"
    assert invitestate.redeem(a.dd, c.fp, b.fp, pub, invite.token, b.address,
                              now=after - 2) == "unknown"           # made for Ahmed only
    assert invitestate.redeem(a.dd, a.fp, b.fp, pub, bytes(16), b.address,
                              now=after - 2) == "unknown"
    assert invitestate.redeem(a.dd, a.fp, b.fp, pub, invite.token, None,
                              now=after - 2) == "no reply address"
    assert Contacts(a.dd).fingerprints() == set() and not a.ids.exists(b.fp)
    assert invitestate.issued(a.dd, now=after)[0]["state"] == "expired"
    with pytest.raises(BadInvite, match="expired"):
        invitestate.accept(b.dd, text, b.fp, now=after)


def test_no_token_is_a_one_way_follow_and_an_unreachable_inviter_is_shown(
        three: tuple[LivePeer, ...]) -> None:
    a, b, _ = three
    assert a.fp and b.fp
    text, invite = invitestate.make(a.dd, a.fp, a.seed(), token=False)
    assert invite.token is None and invitestate.issued(a.dd) == []
    invitestate.accept(b.dd, text, b.fp)
    assert invitestate.hello(b.dd, Contacts(b.dd).get(a.fp)) == {}
    a.stop()
    st = sync_contact(b.dd, a.fp)
    assert st.last_error
    state = _state(b.dd, a.fp)
    assert state is not None and state["state"] == "failed"
    assert state["detail"].startswith("cannot sync with their node: ")


def test_an_existing_contact_elsewhere_needs_replace(three: tuple[LivePeer, ...]) -> None:
    a, b, c = three
    assert a.fp and b.fp
    b.ids.import_pub(a.ids.pub_document(a.fp))
    Contacts(b.dd).put(a.fp, c.address, b.fp)
    text, _ = invitestate.make(a.dd, a.fp, a.seed())
    with pytest.raises(Conflict, match="already followed"):
        invitestate.accept(b.dd, text, b.fp)
    contact, created, _ = invitestate.accept(b.dd, text, b.fp, replace=True)
    assert not created and contact.addresses == (a.address,)
