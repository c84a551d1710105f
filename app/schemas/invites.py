"""Schemas of invites and of moving an own identity between one's nodes."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from . import identity as s


class InviteIn(Schema):
    identity = s.Fingerprint(metadata={
        "description": "the own identity to invite to (needed if the node has several)"})
    password = s.password_field(required=True,
                                metadata={"description": "the identity's password (signs it)"})
    one_time_token = fields.Boolean(load_default=True, metadata={
        "description": "carry a one-time token: the friend's node is followed back on its "
                       "first request, so one invite makes a mutual follow"})
    expires_in = fields.Integer(validate=validate.Range(min=60, max=365 * 86400), metadata={
        "description": "seconds it stays valid (default: the invite_expiry setting)"})


class InviteOut(Schema):
    invite = fields.String(metadata={"description": "the one-line invite string"})
    fingerprint = fields.String()
    addresses = fields.List(fields.String())
    expires = fields.Integer(metadata={"description": "unix time it expires"})
    one_time_token = fields.Boolean()
    qr_svg = fields.String(metadata={"description": "the invite as a QR code (SVG)"})


class IssuedOut(Schema):
    id = fields.String(metadata={"description": "the first 16 hex of the token's SHA-256"})
    identity = fields.String()
    created = fields.Float()
    expires = fields.Integer()
    state = fields.String(metadata={"description": "waiting, used or expired"})
    used_by = fields.String(allow_none=True)
    used_at = fields.Float(allow_none=True)
    refused = fields.Integer(metadata={"description": "used or expired tokens presented"})
    last_refusal = fields.String(allow_none=True)


class IssuedList(Schema):
    invites = fields.List(fields.Nested(IssuedOut))


class RedeemIn(Schema):
    invite = fields.String(required=True, validate=validate.Length(min=1, max=8192),
                           metadata={"description": "an invite string (diwan-invite:...)"})
    identity = s.Fingerprint(metadata={
        "description": "the own identity that follows the inviter (needed if several)"})
    replace = fields.Boolean(load_default=False, metadata={
        "description": "change an existing contact's address or identity (409 without it)"})


class InviteLinkOut(Schema):
    role = fields.String(metadata={"description": "invitee (you redeemed) or inviter"})
    state = fields.String(metadata={"description": "waiting, connected or failed"})
    detail = fields.String(metadata={"description": "what it waits for, or why it failed"})


class ImportOwnIn(Schema):
    export = fields.Dict(required=True, metadata={
        "description": "the identity export file (diwan identity export), as a JSON object"})
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class ImportOwnOut(Schema):
    fingerprint = fields.String()
    device = fields.String(metadata={"description": "this node's new device id"})
    nodes = fields.List(fields.String(), metadata={
        "description": "the identity's other nodes, whose copy of the feed this node pulls"})


class OwnNodeOut(Schema):
    identity = fields.String()
    address = fields.String()
    state = fields.String(metadata={"description": "never, ok or failing"})
    posts_last_run = fields.Integer()
    last_error = fields.String(allow_none=True)
    last_success = fields.Float(allow_none=True)
