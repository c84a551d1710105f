"""Admin routes for the address book: whose feeds this node pulls, from where, as whom."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields

from ..core.base.errors import BadInput
from ..core.network.contacts import MAX_ADDRESS_CHARS, Contact, Contacts, normalise_address
from ..core.network.sync import StatusStore
from ..web.api import Blueprint
from . import schemas as s
from .sync import StatusOut

blp = Blueprint("contacts", __name__, url_prefix="/contacts",
                description="The address book: contacts' node addresses and who follows them")


class Address(fields.String):
    """A node address ``http(s)://host:port``, returned normalised."""

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalise_address(text)
        except BadInput as exc:
            raise ValidationError(exc.message) from None


class ContactIn(Schema):
    address = Address(required=True, metadata={
        "description": f"the contact's node (peer API), http://host:port, at most "
                       f"{MAX_ADDRESS_CHARS} characters"})
    identity = s.Fingerprint(required=True, metadata={
        "description": "the own identity that follows this contact (the only one it is asked as)"})


class ContactOut(Schema):
    fingerprint = fields.String()
    address = fields.String()
    addresses = fields.List(fields.String())
    identity = fields.String()
    added = fields.Float(metadata={"description": "unix time the contact was added"})
    sync = fields.Nested(StatusOut, metadata={"description": "the contact's sync status"})
    created = fields.Boolean(metadata={"description": "PUT: whether the contact is new"})
    key_fetched = fields.Boolean(metadata={"description": "PUT: whether its key was fetched"})


class ContactList(Schema):
    contacts = fields.List(fields.Nested(ContactOut))


def book() -> Contacts:
    return Contacts(current_app.config["DIWAN"])


def _out(contact: Contact) -> dict[str, Any]:
    status = StatusStore(current_app.config["DIWAN"]).get(contact.fingerprint)
    return {**contact.to_dict(), "sync": status.to_dict()}


@blp.route("")
@blp.response(200, ContactList)
def list_contacts() -> dict[str, Any]:
    """Every contact with its address, following identity and sync status."""
    return {"contacts": [_out(c) for c in book().list()]}


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
        a node that answers with another key is recorded as a lying peer (502)."""
        contact, created, fetched = book().add(path["fp"], body["address"], body["identity"])
        return {**_out(contact), "created": created, "key_fetched": fetched}

    @blp.arguments(s.FingerprintPath, location="view_args")
    @blp.response(204)
    def delete(self, path: dict[str, str], fp: str) -> None:
        """Stop following a contact (its key and posts stay)."""
        book().remove(path["fp"])
