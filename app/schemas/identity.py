"""Identity, group and common field schemas: the admin API's validation and OpenAPI document,
the CLI's input checks and the peer key server's path all come from here."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..core.base import crypto, names
from ..core.base.encoding import b64e
from ..core.base.errors import BadInput
from ..core.identity.keys import MAX_PASSWORD, MAX_PUB_BYTES, MIN_PASSWORD
from ..core.identity.petnames import check_petname


class Text(fields.String):
    """A string that is valid Unicode (no lone surrogates), so it always encodes to UTF-8."""

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("must be valid Unicode text (no lone surrogates)") from None
        return text


class Pattern(validate.Regexp):
    """A rule written once as a regex ``body``: Python checks the whole string
    (``fullmatch``); the OpenAPI document shows ``^body$``, an ECMA-262 regex
    (Python's ``\\Z`` has no ECMA-262 equivalent, and ``$`` alone would let a
    trailing newline through in Python)."""

    def __init__(self, body: str, error: str | None = None) -> None:
        super().__init__(f"^{body}$", error=error)
        self.whole = re.compile(body)

    def __call__(self, value: str) -> str:
        if not isinstance(value, str) or self.whole.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


def _documented(pattern: re.Pattern[str], kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs["metadata"] = {"pattern": f"^{pattern.pattern}$", **kwargs.get("metadata", {})}
    return kwargs


class Fingerprint(fields.String):
    """64 lowercase hex characters (documented with its pattern)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**_documented(names.FINGERPRINT_RE, kwargs))

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        text = super()._deserialize(value, attr, data, **kwargs)
        if not names.FINGERPRINT_RE.fullmatch(text):
            raise ValidationError("must be 64 lowercase hexadecimal characters")
        return text


def password_field(**kw) -> fields.String:  # type: ignore[no-untyped-def]
    """A password given to open an existing key (1..1024 characters)."""
    return Text(validate=validate.Length(min=1, max=MAX_PASSWORD), load_only=True, **kw)


def new_password_field(**kw) -> fields.String:  # type: ignore[no-untyped-def]
    """A password that will seal a key: 12..1024 characters (protocol.md, private key file)."""
    return Text(validate=validate.Length(
        min=MIN_PASSWORD, max=MAX_PASSWORD,
        error=f"a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long"),
        load_only=True, **kw)


class FingerprintPath(Schema):
    fp = Fingerprint(required=True, metadata={
        "description": "a fingerprint (64 lowercase hex) or, on the admin API, a unique "
                       "prefix of at least 8 hex characters of a key this node holds"})


class DevicePath(FingerprintPath):
    device = fields.String(required=True, validate=Pattern("[0-9a-f]{16}"),
                           metadata={"description": "a device id: 16 lowercase hex"})


class Checked(Text):
    """Text passed through a core check (``check``: text -> value, :class:`BadInput` if
    bad), whose message becomes the field's validation error."""

    @staticmethod
    def check(text: str) -> str:
        return text

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return self.check(text)
        except BadInput as exc:
            raise ValidationError(exc.message) from None


class Petname(Checked):
    """A petname (:func:`app.core.identity.petnames.check_petname`)."""

    check = staticmethod(check_petname)


class PetnameIn(Schema):
    petname = Petname(required=True, metadata={
        "description": "1-32 letters, digits, '.', '_' or '-', a letter first; not 8+ hex"})


class PetnameOut(Schema):
    fingerprint = fields.String()
    petname = fields.String()


class PetnameList(Schema):
    petnames = fields.List(fields.Nested(PetnameOut))


class GroupPath(Schema):
    name = fields.String(required=True, validate=Pattern(
        names.GROUP_RE.pattern, error="1-63 characters of a-z, 0-9, '-', '_'"))


class GroupMemberPath(GroupPath):
    fp = Fingerprint(required=True)


class CreateIdentity(Schema):
    password = new_password_field(
        metadata={"description": "seal a new own identity with this (12+ characters)"})
    public_key = Text(validate=validate.Length(max=MAX_PUB_BYTES),
                      metadata={"description": "import someone's .pub document"})

    @validates_schema
    def exactly_one(self, data, **kwargs):  # type: ignore[no-untyped-def]
        if ("password" in data) == ("public_key" in data):
            raise ValidationError("send either password (create) or public_key (import)",
                                  "_schema")


class Created(Schema):
    fingerprint = fields.String()
    own = fields.Boolean()


class IdentityOut(Schema):
    fingerprint = Fingerprint()
    display_name = fields.String(metadata={
        "description": "how this node shows the key: petname, profile name or short "
                       "fingerprint (never sent to peers)"})
    own = fields.Boolean()
    groups = fields.List(fields.String())
    blocked = fields.Boolean()
    last_used = fields.Float(allow_none=True, metadata={"description": "unix time of last use"})
    public_key = fields.String(allow_none=True, metadata={
        "description": "the .pub document (null if its file is gone)"})


class IdentityList(Schema):
    identities = fields.List(fields.Nested(IdentityOut))


class DeleteIdentity(Schema):
    password = password_field(metadata={"description": "required for an own identity"})


class SignIn(Schema):
    password = password_field(required=True)
    content = Text(required=True, metadata={"description": "text to sign (UTF-8)"})
    encoding = fields.String(load_default="utf-8", validate=validate.OneOf(["utf-8", "base64url"]),
                             metadata={"description": "how content is encoded"})


class SignOut(Schema):
    fingerprint = fields.String()
    context = fields.String(metadata={
        "description": "the signing context (without its final NUL byte): the signature is "
                       "Ed25519 over context || 0x00 || content"})
    context_hex = fields.String(metadata={"description": "the context bytes, NUL included"})
    signature = fields.String(metadata={"description": "base64url of the 64-byte signature"})
    signature_hex = fields.String()


def sign_result(fp: str, signature: bytes) -> dict[str, str]:
    """What ``/sign`` and ``diwan identity sign`` answer (a :class:`SignOut`)."""
    ctx = crypto.CTX_USER_SIGNATURE
    return {"fingerprint": fp, "context": ctx[:-1].decode("ascii"), "context_hex": ctx.hex(),
            "signature": b64e(signature), "signature_hex": signature.hex()}


class PasswordIn(Schema):
    old_password = password_field(required=True)
    new_password = new_password_field(required=True)


class RotateIn(Schema):
    password = password_field(required=True)


class RotateOut(Schema):
    fingerprint = fields.String()
    device = fields.String(metadata={"description": "the device id: this node's (a "
                                      "rotation) or the retired one"})
    serial = fields.Integer(metadata={"description": "the new transport key's serial"})
    public_key = fields.String(metadata={"description": "the new .pub document"})


class GroupOut(Schema):
    name = fields.String()
    members = fields.List(fields.String())
    reserved = fields.Boolean()


class GroupList(Schema):
    groups = fields.List(fields.Nested(GroupOut))


class Ok(Schema):
    ok = fields.Boolean()
    changed = fields.Boolean()
