"""Admin routes for the address book: whose feeds this node pulls, from where, as whom."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from ..core.network import invitestate
from ..core.network.contacts import Contact, Contacts
from ..core.network.keylookup import add_contact
from ..core.network.views import contact_view
from ..schemas import identity as s
from ..schemas.invites import RedeemIn
from ..schemas.network import ContactIn, ContactList, ContactOut
from ..web.api import Blueprint
from .invites import own_identity
from .names import display_names

blp = Blueprint("contacts", __name__, url_prefix="/contacts",
                description="The address book: contacts' node addresses and who follows them")


def book() -> Contacts:
    return Contacts(current_app.config["DIWAN"])


def _out(contact: Contact) -> dict[str, Any]:
    dd = current_app.config["DIWAN"]
    return contact_view(dd, contact, display_names())


@blp.route("", methods=["GET"])
@blp.response(200, ContactList)
def list_contacts() -> dict[str, Any]:
    """Every contact with its address, following identity, sync status and invite state."""
    return {"contacts": [_out(c) for c in book().list()]}


@blp.route("", methods=["POST"])
@blp.arguments(RedeemIn)
@blp.response(200, ContactOut)
def redeem_invite(body: dict[str, Any]) -> dict[str, Any]:
    """Follow a friend from their invite string: its key, addresses and signature are
    checked (400 ``bad_invite`` for a changed, damaged or expired invite) and its
    one-time token is sent on the next syncs, so their node follows back."""
    dd = current_app.config["DIWAN"]
    identity = own_identity(dd, body.get("identity"))
    contact, created, _ = invitestate.accept(dd, body["invite"], identity,
                                             replace=body["replace"])
    return {**_out(contact), "created": created, "key_fetched": False}


@blp.route("/<fp>")
class ContactItem(MethodView):
    @blp.arguments(s.FingerprintPath, location="view_args")
    @blp.response(200, ContactOut)
    def get(self, path: dict[str, str], fp: str) -> dict[str, Any]:
        """One contact."""
        return _out(book().get(path["fp"]))

    @blp.arguments(s.FingerprintPath, location="view_args")
    @blp.arguments(ContactIn)
    @blp.response(200, ContactOut)
    def put(self, path: dict[str, str], body: dict[str, Any], fp: str) -> dict[str, Any]:
        """Add or change a contact. An unknown key is fetched from ``address`` by fingerprint;
        a wrong answer is a 502 (unauthenticated: not recorded as a lie; try again)."""
        dd = current_app.config["DIWAN"]
        old = Contacts(dd).find(path["fp"])
        contact, created, fetched = add_contact(dd, path["fp"], body["address"],
                                                body["identity"], replace=body["replace"])
        replaced = old.address if old is not None and old.address != contact.address else None
        return {**_out(contact), "created": created, "key_fetched": fetched,
                "replaced": replaced}

    @blp.arguments(s.FingerprintPath, location="view_args")
    @blp.response(204)
    def delete(self, path: dict[str, str], fp: str) -> None:
        """Stop following a contact (its key and posts stay)."""
        book().remove(path["fp"])
