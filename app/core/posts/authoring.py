"""Composing posts from an own identity: the helpers scripts use instead of raw attribute keys.

``compose`` turns the common shapes (text, a reply to a SHA, a message to
fingerprints, a reshare of a stored post, profile fields, uploaded media) into
attributes; ``publish`` signs them with the identity's key and stores the post
through the one ingest path.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..base import names
from ..base.datadir import DataDir
from ..base.encoding import b64d_any, b64e
from ..base.errors import BadInput, Forbidden, NotFound
from ..identity.identities import Identities
from . import codec as posts
from . import imagemeta, media
from .attributes import KEY_RE, is_media, type_of
from .ingest import Ingestor, IngestResult, post_path
from .reconcile import open_index

PROFILE_FIELDS = {"name": "PROFILENAME", "birthdate": "BIRTHDATE", "workplace": "WORKPLACE",
                  "phone": "PHONE", "email": "EMAIL"}
_BYTE_TYPES = ("BIN", "PROFILEPICTURE")


@dataclass
class Draft:
    """What an author wants to post, before it becomes attributes."""

    attributes: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
    reply_to: str | None = None
    to: Sequence[str] = ()
    reshare: str | None = None
    profile: Mapping[str, str] = field(default_factory=dict)
    media: Sequence[tuple[str, bytes]] = ()  # (NAME or NAME_TYPE, bytes)
    created: int | None = None


def _put(attrs: dict[str, Any], key: str, value: Any) -> None:
    if key in attrs and attrs[key] != value:
        raise BadInput(f"{key} is given twice with different values", field="attributes")
    attrs[key] = value


def find_post(dd: DataDir, sha1: str) -> bytes:
    """The raw bytes of a stored post by its SHA-1 (40 hex), found through the index.

    Raises :class:`BadInput` for a malformed SHA-1 and :class:`NotFound` if no such post is
    stored here.
    """
    entry = open_index(dd).get(names.sha1(sha1))
    if entry is None:
        raise NotFound(f"no post {sha1} on this node", field="sha")
    return post_path(dd, entry.author, entry.sha1).read_bytes()


def _media_key(name: str, data: bytes) -> str:
    """``NAME`` gets its type from the magic bytes (``BIN`` if unknown); ``NAME_TYPE`` is kept."""
    name = name.upper()
    if not KEY_RE.fullmatch(name):
        raise BadInput(f"media name {name[:40]!r} must be like PHOTO or PHOTO_PNG", field="media")
    if type_of(name) in _BYTE_TYPES or ("_" in name and type_of(name) in media.FORMATS):
        return name
    return f"{name}_{media.detect(data) or 'BIN'}"


def _addressees(attrs: dict[str, Any], fps: Iterable[str]) -> None:
    for i, fp in enumerate(dict.fromkeys(fps)):
        _put(attrs, "TO_FINGERPRINT" if i == 0 else f"TO{i + 1}_FINGERPRINT",
             names.fingerprint(fp, field="to"))


def _canonical_media(key: str, value: Any) -> Any:
    """A media attribute given as any base64 (standard or url-safe, padded or not) in its
    canonical unpadded base64url form; every other value as it is."""
    if isinstance(value, str) and isinstance(key, str) and is_media(key):
        return b64e(b64d_any(value, what=key, field=key))
    return value


def _strip_images(dd: DataDir, attrs: dict[str, Any]) -> None:
    """Every image among the media attributes without its metadata (``imagemeta``)."""
    for key, value in attrs.items():
        if is_media(key) and isinstance(value, str):
            data = b64d_any(value, what=key, field=key)
            clean = imagemeta.strip_metadata(data, max_pixels=dd.settings["max_image_pixels"],
                                             what=key)
            if clean is not data:
                attrs[key] = b64e(clean)


def compose(dd: DataDir, author: str, draft: Draft, *, now: int | None = None) -> dict[str, Any]:
    """The attributes of ``draft`` posted by ``author`` (64 hex), validated later by ingest.

    A reply gets ``REPLY_POSTSHA`` and is addressed to the parent's author; a reply to a
    non-public post is addressed to exactly the parent's author and addressees (other
    recipients are refused with :class:`Forbidden`). Recipients become
    ``TO[n]_FINGERPRINT``; a reshare is the stored post's bytes as ``RESHARED_POST``; media
    get their type from the magic
    bytes and raw media attributes may be any base64 (stored as canonical base64url).
    Every JPEG, PNG, WebP or GIF among the media (by magic bytes, whatever its key) loses
    its metadata first (:func:`imagemeta.strip_metadata`, protocol "Image metadata").
    ``CREATED_TIME`` defaults to ``draft.created``, then ``now``, then the clock
    (unix seconds). Raises :class:`BadInput` for a key given twice with different values,
    an unknown profile field, a bad media name, an image that does not decode or has more
    than ``max_image_pixels`` pixels, or a malformed SHA-1;
    :class:`BadFingerprint` for a bad recipient; :class:`NotFound` if the post replied to
    or reshared is not stored here; :class:`Forbidden` for a reshare of a non-public post
    (:class:`BadPost` only if a stored file no longer decodes).
    """
    attrs = {key: _canonical_media(key, value) for key, value in draft.attributes.items()}
    if draft.text is not None:
        _put(attrs, "TEXT", draft.text)
    to = list(draft.to)
    if draft.reply_to is not None:
        parent = posts.decode_post(find_post(dd, draft.reply_to),
                                   max_bytes=dd.settings["max_post_bytes"])
        _put(attrs, "REPLY_POSTSHA", parent.sha1)
        if parent.recipients:
            # A reply to a non-public post goes to exactly its participants (the author and
            # the addressees), never further: no wider audience than the parent had.
            audience = ({parent.author} | set(parent.recipients)) - {author}
            extra = set(to) - audience
            if extra:
                raise Forbidden("a reply to a private post goes to its participants only; "
                                f"{sorted(extra)[0]} was not one of them", field="to")
            to = sorted(audience)
        elif parent.author != author:
            to.insert(0, parent.author)
    if draft.reshare is not None:
        raw = find_post(dd, draft.reshare)
        inner = posts.decode_post(raw, max_bytes=dd.settings["max_post_bytes"])
        if inner.recipients:
            raise Forbidden("a private post cannot be reshared: it was addressed to "
                            f"{len(inner.recipients)} people only, and resharing would show "
                            "it to everyone who receives the reshare", field="reshare")
        _put(attrs, "RESHARED_POST", raw.decode("ascii"))
    for field_name, value in draft.profile.items():
        if field_name not in PROFILE_FIELDS:
            raise BadInput(f"unknown profile field {field_name!r}", field="profile")
        _put(attrs, PROFILE_FIELDS[field_name], value)
    for name, data in draft.media:
        _put(attrs, _media_key(name, data), b64e(data))
    _strip_images(dd, attrs)
    _addressees(attrs, to)
    if "CREATED_TIME" not in attrs:
        attrs["CREATED_TIME"] = draft.created if draft.created is not None else (
            now if now is not None else int(time.time()))
    return attrs


def publish(dd: DataDir, author: str, password: str, draft: Draft) -> IngestResult:
    """Sign ``draft`` with the own identity ``author`` and store it through ingest.

    Returns the :class:`IngestResult` (``new`` False if the same post was already stored).
    Raises :class:`BadFingerprint`; :class:`NotFound` or :class:`Forbidden` if ``author`` is
    unknown or not an own identity (before the slow password check); :class:`CorruptFile`
    for a damaged key file; what :func:`compose` raises; :class:`WrongPassword` (or
    :class:`BadInput` for a password not encodable as UTF-8); :class:`BadPost` if ingest
    rejects the post (a bad attribute value, a CREATED_TIME in the future, ...).
    """
    ids = Identities(dd)
    names.fingerprint(author)
    private = ids.private_key(author)  # 404/403 before the (slow) password check
    attrs = compose(dd, author, draft)
    seed = private.open_seed(password)
    return _sign_and_store(dd, author, seed, attrs)


def publish_unlocked(dd: DataDir, author: str, seed: bytes, draft: Draft) -> IngestResult:
    """Sign ``draft`` with the already opened 32-byte ``seed`` of the own identity ``author``
    (an identity unlocked for a session, :mod:`app.core.identity.unlock`) and store it.

    Raises what :func:`publish` raises, except :class:`WrongPassword`.
    """
    names.fingerprint(author)
    Identities(dd).private_key(author)  # still an own identity
    return _sign_and_store(dd, author, seed, compose(dd, author, draft))


def _sign_and_store(dd: DataDir, author: str, seed: bytes, attrs: dict[str, Any]) -> IngestResult:
    Identities(dd).touch(author)
    raw = posts.build_post(seed, attrs)
    return Ingestor(dd).ingest(raw, author=author)
