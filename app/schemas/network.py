"""Schemas of the network lists and inputs: contacts, sync status, lying peers."""

from __future__ import annotations

from marshmallow import Schema, fields

from ..core.network.contacts import MAX_ADDRESS_CHARS, normalise_address
from . import identity as s
from .invites import InviteLinkOut, OwnNodeOut


class StatusOut(Schema):
    fingerprint = fields.String()
    address = fields.String(allow_none=True, metadata={
        "description": "the address that answered last (or was tried last)"})
    reach = fields.Dict(keys=fields.String(), values=fields.Dict(), metadata={
        "description": "each address tried: {ok: last success, failures, next: next attempt}"})
    identity = fields.String(allow_none=True)
    state = fields.String(metadata={"description": "never, ok, failing, or blocked"})
    last_attempt = fields.Float(allow_none=True)
    last_success = fields.Float(allow_none=True)
    last_error = fields.String(allow_none=True)
    failures = fields.Integer(metadata={"description": "failed syncs in a row"})
    next_attempt = fields.Float(allow_none=True, metadata={
        "description": "backing off until this unix time (null: due at the next run)"})
    posts_received = fields.Integer(metadata={"description": "new posts, all runs"})
    posts_last_run = fields.Integer()
    pages_last_run = fields.Integer()
    rejected = fields.Integer(metadata={"description": "posts refused, all runs"})
    rejected_last_run = fields.Integer()
    last_rejection = fields.String(allow_none=True)
    cursors = fields.Dict(keys=fields.String(), values=fields.Dict(), metadata={
        "description": "per serving node (the owner's device id): {epoch, after, identity}, "
                       "the position in that node's storage order the next sync asks after"})
    skipped = fields.String(allow_none=True, metadata={
        "description": "why this sync left the contact alone (blocked, backing off)"})


class StatusList(Schema):
    statuses = fields.List(fields.Nested(StatusOut))
    own_nodes = fields.List(fields.Nested(OwnNodeOut), metadata={
        "description": "the other nodes of own identities pulled in this sync"})


class SyncIn(Schema):
    fingerprint = s.Fingerprint(metadata={"description": "sync only this contact"})
    full = fields.Boolean(load_default=False, metadata={
        "description": "compare the whole feed with what is held (a summary) and fetch "
                       "whatever is missing, not only what is new"})


class LyingOut(Schema):
    address = fields.String()
    fingerprint = fields.String(metadata={"description": "the key that was asked for"})
    why = fields.String()
    when = fields.Float(metadata={"description": "unix time it was recorded"})


class LyingList(Schema):
    lying_peers = fields.List(fields.Nested(LyingOut))


class AddressQuery(Schema):
    address = fields.String(required=True)


class Address(s.Checked):
    """A node address ``http(s)://host:port``, returned normalised."""

    check = staticmethod(normalise_address)


class ContactIn(Schema):
    address = Address(required=True, metadata={
        "description": f"the contact's node (peer API), http://host:port, at most "
                       f"{MAX_ADDRESS_CHARS} characters"})
    identity = s.Fingerprint(required=True, metadata={
        "description": "the own identity that follows this contact (the only one it is asked as)"})
    replace = fields.Boolean(load_default=False, metadata={
        "description": "change an existing contact's address or identity (409 without it)"})


class ContactOut(Schema):
    fingerprint = fields.String()
    display_name = fields.String(metadata={
        "description": "how this node shows the contact: petname, profile name or short "
                       "fingerprint"})
    petname = fields.String(allow_none=True, metadata={
        "description": "the private name the owner gave this contact, if any"})
    address = fields.String()
    addresses = fields.List(fields.String(), metadata={"description": "the hand-set addresses"})
    learned = fields.List(fields.String(), metadata={
        "description": "addresses the contact's node told inside the exchange, or that LAN "
                       "discovery found and an exchange confirmed, newest first"})
    identity = fields.String()
    added = fields.Float(metadata={"description": "unix time the contact was added"})
    sync = fields.Nested(StatusOut, metadata={"description": "the contact's sync status"})
    invite = fields.Nested(InviteLinkOut, allow_none=True, metadata={
        "description": "where the invite this contact came from stands (null: none)"})
    created = fields.Boolean(metadata={"description": "PUT: whether the contact is new"})
    key_fetched = fields.Boolean(metadata={"description": "PUT: whether its key was fetched"})
    replaced = fields.String(allow_none=True, metadata={
        "description": "PUT: the address this replaced, if it changed"})


class ContactList(Schema):
    contacts = fields.List(fields.Nested(ContactOut))
