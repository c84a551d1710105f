"""Marshmallow schemas of the admin post, timeline and social routes."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from ..core.base import names
from ..core.base.strictjson import MAX_SAFE_INTEGER
from ..core.posts.attributes import TIME_MAX, TIME_MIN
from ..core.posts.codec import KINDS
from .identity import Fingerprint, Pattern, Text, password_field


def safe_integer(**kwargs: Any) -> fields.Integer:
    """An integer input (query or body) within ±(2^53 - 1), like every number that enters."""
    bound = validate.Range(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    return fields.Integer(strict=False, validate=[bound, *kwargs.pop("validate", [])], **kwargs)


def time_field(**kwargs: Any) -> fields.Integer:
    """A _TIME input: unix seconds within the range every part of the node can show."""
    return fields.Integer(validate=validate.Range(TIME_MIN, TIME_MAX), **kwargs)


def created_time_field(**kwargs: Any) -> fields.Integer:
    """``CREATED_TIME``: unix seconds from 0 (docs/protocol.md; the codec refuses earlier
    times), at most :data:`TIME_MAX` (and the node refuses more than 300 s ahead)."""
    return fields.Integer(validate=validate.Range(0, TIME_MAX), **kwargs)


class Sha(fields.String):
    """40 lowercase hex characters: a post's SHA-1 (documented with its pattern)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["metadata"] = {"pattern": f"^{names.SHA1_RE.pattern}$",
                              **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        text = super()._deserialize(value, attr, data, **kwargs)
        names.sha1(text, field=attr or "sha")
        return text


class ShaPath(Schema):
    sha = Sha(required=True)


class MediaPath(ShaPath):
    attribute = fields.String(required=True, validate=Pattern(
        r"[A-Z0-9]+(_[A-Z0-9]+)*", error="an attribute name like PHOTO_PNG"))


class ProfileIn(Schema):
    name = Text(validate=validate.Length(max=200))
    birthdate = Text(validate=validate.Length(max=10))
    workplace = Text(validate=validate.Length(max=200))
    phone = Text(validate=validate.Length(max=64))
    email = Text(validate=validate.Length(max=256))


class CreatePost(Schema):
    fingerprint = Fingerprint(required=True, metadata={"description": "own identity to post as"})
    password = password_field(required=True)
    attributes = fields.Dict(keys=fields.String(), load_default=dict,
                             metadata={"description": "raw attributes, NAME_TYPE -> value"})
    text = Text(metadata={"description": "the post body (TEXT)"})
    reply_to = Sha(metadata={"description": "SHA-1 of a stored post to comment on"})
    to = fields.List(Fingerprint(), load_default=list,
                     metadata={"description": "address the post to these identities"})
    reshare = Sha(metadata={"description": "SHA-1 of a stored post to reshare"})
    profile = fields.Nested(ProfileIn, metadata={"description": "profile fields"})
    created_time = created_time_field(metadata={
        "description": "CREATED_TIME (default: now; unix seconds from 0, at most 300 s ahead)"})


class ImportPost(Schema):
    post = fields.String(required=True, metadata={"description": "a whole post file P1.FP.SIG"})


class TimelineArgs(Schema):
    author = fields.List(Fingerprint(), metadata={"description": "only these authors"})
    group = fields.String(validate=Pattern(names.GROUP_RE.pattern))
    kind = fields.List(fields.String(validate=validate.OneOf(KINDS)))
    limit = safe_integer(validate=[validate.Range(min=1)])
    cursor = fields.String(validate=[validate.Length(max=200), Pattern("[A-Za-z0-9_-]*")],
                           metadata={"description": "next_cursor of the previous page"})


class PageArgs(Schema):
    limit = safe_integer(validate=[validate.Range(min=1)])
    cursor = fields.String(validate=[validate.Length(max=200), Pattern("[A-Za-z0-9_-]*")],
                           metadata={"description": "next_cursor of the previous page"})


class ConversationPath(Schema):
    id = fields.String(required=True, validate=Pattern(r"[0-9a-f]{16,64}"))


class FingerprintArg(Schema):
    fp = Fingerprint(required=True)


class PostOut(Schema):
    sha1 = fields.String()
    author = fields.String()
    author_name = fields.String(metadata={
        "description": "how this node shows the author: petname, profile name or short "
                       "fingerprint (never sent to peers)"})
    created = fields.Integer()
    kind = fields.String()
    public = fields.Boolean()
    recipients = fields.List(fields.String())
    recipient_names = fields.List(fields.String(), metadata={
        "description": "display names of the recipients, in the same order"})
    replies_to = fields.List(fields.String())
    is_reaction = fields.Boolean()
    reshared = fields.Boolean()
    size = fields.Integer()
    verified = fields.Boolean()
    attributes = fields.Dict(metadata={
        "description": "a reshared post (type POST) is decoded in place with "
                       "deleted_by_author: true if its author deleted it"})
    edited = fields.Boolean(metadata={"description": "a later version of this post exists "
                                                     "(docs/protocol.md, edits)"})
    latest = fields.String(metadata={"description": "SHA-1 of the newest version"})
    versions = fields.List(fields.Dict(), metadata={
        "description": "every version held, oldest first: {sha1, created}"})


class DeletePost(Schema):
    password = password_field(metadata={
        "description": "needed to delete an own post: it signs the deletion record"})


class EditPost(Schema):
    password = password_field(required=True)
    attributes = fields.Dict(keys=fields.String(), load_default=dict,
                             metadata={"description": "raw attributes of the new version"})
    text = Text(metadata={"description": "the new body (TEXT)"})
    created_time = created_time_field(metadata={
        "description": "CREATED_TIME (default: now; unix seconds from 0, at most 300 s ahead)"})


class PostDeleted(Schema):
    sha1 = fields.String(metadata={"description": "the post deleted"})
    record = fields.String(metadata={"description": "SHA-1 of the signed deletion record "
                                                    "(absent for a post of someone else, "
                                                    "only removed here)"})
    deleted = fields.List(fields.String(), metadata={"description": "every version deleted"})


class PostCreated(Schema):
    sha1 = fields.String()
    new = fields.Boolean()
    post = fields.Nested(PostOut)


class PostPage(Schema):
    posts = fields.List(fields.Nested(PostOut))
    next_cursor = fields.String(allow_none=True)




class TodayQuery(Schema):
    """The viewer's date for views that depend on "today" (at most one of the two)."""

    today = fields.String(validate=validate.Length(max=10),
                          metadata={"description": "the viewer's date, YYYY-MM-DD"})
    tz = fields.String(validate=validate.Length(max=64),
                       metadata={"description": "the viewer's IANA time zone, e.g. "
                                 "Europe/Berlin (default: the node's local zone)"})
