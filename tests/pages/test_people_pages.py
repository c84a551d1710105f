"""The person page, muting, groups, identities and profiles pages (issue 12): rendering,
forms, and hostile content from others asserted inert in the HTML."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.base import crypto
from app.core.identity import keys, transport
from app.core.identity.identities import Identities
from app.core.identity.mutes import Mutes
from app.core.network.feeds import get_share_comments_group
from tests.helpers.datadirs import PASSWORD
from tests.helpers.web_pages import HOSTILE, HTML, PageNode, assert_inert, csrf


@pytest.fixture
def node(tmp_path: Path) -> PageNode:
    return PageNode(tmp_path / "node")


def test_a_person_page_shows_their_profile_posts_and_actions(node: PageNode) -> None:
    ali = node.stranger(1)
    node.post_as(ali, 100, PROFILENAME="Ali Baba", X_WORKPLACE="Souq")
    node.post_as(ali, 200, TEXT="hello from ali")
    Identities(node.dd).create_group("friends")
    html = node.page(f"/people/{ali}")
    assert "Ali Baba" in html and "hello from ali" in html and "Souq" in html
    for action in ("/people/name", "/people/block", "/people/mute", "/people/groups/member"):
        assert f'action="{action}"' in html
    assert f'href="/people/{ali}"' in node.page("/")  # authors link to their page
    node.page("/people/" + "0" * 64, 404)
    node.page("/people/not-a-fingerprint", 400)
    mine = node.page(f"/people/{node.me}")
    assert "One of your own identities" in mine and 'action="/people/mute"' not in mine


def test_hostile_profiles_and_posts_stay_text(node: PageNode) -> None:
    evil = node.stranger(2)
    node.post_as(evil, 100, PROFILENAME=HOSTILE, PHONE="1" + HOSTILE[:40],
                 EMAIL="a@" + HOSTILE[:60].replace(" ", "").replace("@", ""),
                 WORKPLACE=HOSTILE, BIRTHDATE="2000-02-29")
    node.post_as(evil, 200, TEXT=HOSTILE, X_WEBSITE="javascript:alert(5)",
                 X_NOTE="<b>bold</b>")
    node.my_post("mine", to=[evil])
    Identities(node.dd).create_group("g")
    Identities(node.dd).add_member("g", evil)
    for path in (f"/people/{evil}", "/", "/people/book", "/people/birthdays", "/people",
                 "/people/groups", "/chats", "/me/profiles", "/search?q=evil",
                 "/search?q=" + HOSTILE[:60]):
        html = node.page(path)
        assert_inert(html)
        assert "<b>bold" not in html
    person = node.page(f"/people/{evil}")
    assert "javascript:alert(5)" in person  # shown as text, never a link
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in person
    title = person.split("<title>")[1].split("</title>")[0]
    assert "\u202e" not in title and "\u2066" not in title  # no reordering the window title


def test_mute_hides_from_the_timeline_but_not_from_their_page(node: PageNode) -> None:
    ali = node.stranger(1)
    node.post_as(ali, 100, TEXT="ali speaks")
    assert "ali speaks" in node.page("/")
    r = node.form("/people/mute", {"fingerprint": ali, "action": "mute", "back": "person"})
    assert r.status_code == 303 and r.location == f"/people/{ali}"
    assert Mutes(node.dd).is_muted(ali) and not Identities(node.dd).is_blocked(ali)
    assert "ali speaks" not in node.page("/")
    assert "ali speaks" in node.page(f"/people/{ali}") and "Unmute" in node.page(f"/people/{ali}")
    node.form("/people/mute", {"fingerprint": ali, "action": "unmute"})
    assert "ali speaks" in node.page("/")
    assert node.form("/people/mute", {"fingerprint": ali, "action": "x"}).status_code == 400
    assert node.form("/people/mute", {"fingerprint": node.me, "action": "mute"}).status_code \
        == 409  # not one's own identity


def test_back_is_a_page_name_never_a_url(node: PageNode) -> None:
    ali = node.stranger(1)
    r = node.form("/people/name", {"fingerprint": ali, "petname": "Ali",
                                   "back": "https://evil.example/"})
    assert r.status_code == 303 and r.location == "/people"


def test_groups_create_add_remove_rename_delete(node: PageNode) -> None:
    ali, bea = node.stranger(1), node.stranger(2)
    ids = Identities(node.dd)
    assert node.form("/people/groups", {"name": "family"}).status_code == 303
    node.form("/people/groups/member", {"fingerprint": ali, "group": "family", "action": "add",
                                "back": "groups"})
    node.form("/people/groups/member", {"fingerprint": bea, "group": "family", "action": "add"})
    assert ids.members("family") == sorted([ali, bea])
    node.form("/me/settings", {"fingerprint": node.me, "share_comments_with": "family"})
    node.form("/people/groups/rename", {"name": "family", "new_name": "kin"})
    assert ids.groups() == ["blocked", "kin"] and ids.members("kin") == sorted([ali, bea])
    assert get_share_comments_group(node.dd, node.me) == "kin"  # the setting followed
    html = node.page("/people/groups")
    assert "kin" in html and f'href="/people/{ali}"' in html
    node.form("/people/groups/member", {"fingerprint": ali, "group": "kin", "action": "remove"})
    assert ids.members("kin") == [bea]
    rename = "/people/groups/rename"
    assert node.form(rename, {"name": "kin", "new_name": "../x"}).status_code == 400
    assert node.form(rename, {"name": "nope", "new_name": "y"}).status_code == 404
    node.form("/people/groups", {"name": "other"})
    assert node.form(rename, {"name": "kin", "new_name": "other"}).status_code == 409
    assert node.form("/people/groups/member", {"fingerprint": ali, "group": "blocked",
                                       "action": "add"}).status_code == 400
    node.form("/people/groups/delete", {"name": "kin"})
    assert "kin" not in ids.groups() and get_share_comments_group(node.dd, node.me) is None
    assert node.form("/people/groups/delete", {"name": "blocked"}).status_code == 403


def test_identities_switch_rotate_and_settings(node: PageNode) -> None:
    other = Identities(node.dd).create(PASSWORD)
    node.form("/me/switch", {"fingerprint": other})
    html = node.page("/me")
    assert html.index(other) < html.index(node.me) and "current" in html
    compose = node.page("/compose")
    assert compose.index(other) < compose.index(node.me)  # chosen first when writing
    wrong = node.form("/me/rotate", {"fingerprint": node.me, "password": "wrong" * 3})
    assert wrong.status_code == 403
    r = node.form("/me/rotate", {"fingerprint": node.me, "password": PASSWORD})
    assert r.status_code == 303 and "rotated=" in r.location
    assert len(Identities(node.dd).transport_keys(node.me)) == 2
    stranger = node.stranger(1)
    assert node.form("/me/switch", {"fingerprint": stranger}).status_code == 404
    assert node.form("/me/settings", {"fingerprint": node.me,
                                      "share_comments_with": "nogroup"}).status_code == 404


def test_identities_page_retires_another_node(node: PageNode) -> None:
    ids = Identities(node.dd)
    assert "Retire this node" not in node.page("/me")  # one node: nothing to retire
    lost = "0123456789abcdef"
    other = keys.DeviceCert(lost, 1, crypto.x25519_public(crypto.new_transport_secret()))
    transport.write_pub(ids, node.me, keys.with_device(
        ids.open_seed(node.me, PASSWORD), ids.public_key(node.me), other))
    html = node.page("/me")
    assert "Retire this node" in html and f'<option value="{lost}">' in html
    wrong = node.form("/me/retire", {"fingerprint": node.me, "device": lost,
                                     "password": "wrong" * 3})
    assert wrong.status_code == 403
    assert node.form("/me/retire", {"fingerprint": node.me, "device": "../x",
                                    "password": PASSWORD}).status_code == 400
    r = node.form("/me/retire", {"fingerprint": node.me, "device": lost, "password": PASSWORD})
    assert r.status_code == 303 and f"retired={lost}" in r.location
    retired = ids.public_key(node.me).device(lost)
    assert retired is not None and retired.serial == keys.RETIRED_SERIAL
    assert "Retire this node" not in node.page("/me")


def test_my_profiles_one_per_audience_side_by_side(node: PageNode) -> None:
    ali = node.stranger(1)
    r = node.form("/me/profiles", {"author": node.me, "to": "", "name": "Me In Public",
                                   "password": PASSWORD})
    assert r.status_code == 303
    node.form("/people/name", {"fingerprint": ali, "petname": "Ali"})
    node.form("/me/profiles", {"author": node.me, "to": ali, "name": "Me For Ali",
                               "phone": "+20 100", "birthdate": "1990-05-01",
                               "password": PASSWORD})
    html = node.page("/me/profiles")
    assert "Seen by everyone" in html and "Seen by <bdi>Ali</bdi>" in html
    assert html.index("Me In Public") < html.index("Me For Ali")
    assert "A new audience" in html
    empty = node.form("/me/profiles", {"author": node.me, "password": PASSWORD})
    assert empty.status_code == 400
    nopw = node.form("/me/profiles", {"author": node.me, "name": "x"})
    assert nopw.status_code == 400 and "password" in nopw.get_data(as_text=True)


def test_birthdays_and_address_book(node: PageNode) -> None:
    ali = node.stranger(1)
    node.post_as(ali, 100, PROFILENAME="Ali", PHONE="+20 555", EMAIL="ali@example.org",
                 BIRTHDATE="1980-01-02")
    book = node.page("/people/book")
    assert "+20 555" in book and "ali@example.org" in book and "1980-01-02" in book
    assert 'href="mailto' not in book
    assert "Ali" in node.page("/people/birthdays") and "days" in node.page("/people/birthdays")


def test_person_forms_need_csrf(node: PageNode) -> None:
    ali = node.stranger(1)
    for path, data in [("/people/mute", {"fingerprint": ali, "action": "mute"}),
                       ("/people/groups/member",
                        {"fingerprint": ali, "group": "g", "action": "add"}),
                       ("/people/groups", {"name": "g"}),
                       ("/people/groups/rename", {"name": "g"}),
                       ("/people/groups/delete", {"name": "g"}),
                       ("/me/switch", {"fingerprint": ali}),
                       ("/me/rotate", {"fingerprint": node.me, "password": PASSWORD}),
                       ("/me/retire", {"fingerprint": node.me, "device": "0" * 16,
                                       "password": PASSWORD}),
                       ("/me/settings", {"fingerprint": node.me}),
                       ("/me/profiles", {"author": node.me, "name": "x"})]:
        r = node.client.post(path, data=data, headers=HTML)
        assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True), path
        r = node.client.post(path, data={**data, "csrf_token": csrf(node.client)[:-2] + "xx"},
                             headers=HTML)
        assert r.status_code == 400, path
    assert not Mutes(node.dd).all() and Identities(node.dd).groups() == ["blocked"]
