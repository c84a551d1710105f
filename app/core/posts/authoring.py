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
from . import imagemeta, media, records
from .attributes import KEY_RE, is_media, type_of
from .codec import DELETION
from .index import Index
from .ingest import Ingestor, post_path
from .ingestresults import IngestResult
from .listing import Entry
from .reconcile import open_index
from .versions import versions

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
    edit: str | None = None  # SHA-1 of an own post this one replaces (a new version)


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
    or an edit (``draft.edit``) of someone else's post, which keeps the edited post's
    addressing (:class:`BadPost` only if a stored file no longer decodes).
    """
    attrs = {key: _canonical_media(key, value) for key, value in draft.attributes.items()}
    if draft.text is not None:
        _put(attrs, "TEXT", draft.text)
    if draft.edit is not None:
        _edit(dd, author, draft, attrs)
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


def _own_entry(dd: DataDir, author: str, sha1: str, what: str) -> tuple[Index, Entry]:
    index = open_index(dd)
    entry = index.get(names.sha1(sha1))
    if entry is None:
        raise NotFound(f"no post {sha1} on this node", field="sha")
    if entry.author != author:
        raise Forbidden(f"only its author can {what} post {sha1}; remove it from this node "
                        "instead", field="sha")
    if entry.kind == DELETION:
        raise BadInput(f"{sha1} is a deletion record, not a post", field="sha")
    return index, entry


def _edit(dd: DataDir, author: str, draft: Draft, attrs: dict[str, Any]) -> None:
    """An edit keeps the addressing (``_FINGERPRINT``, ``_POSTSHA``) of the post it edits
    and supersedes its newest version (``docs/protocol.md``, Deletion and edit records)."""
    if draft.to or draft.reply_to is not None:
        raise BadInput("an edit keeps the addressing of the post it edits; give no to or "
                       "reply_to", field="edit")
    index, entry = _own_entry(dd, author, names.sha1(draft.edit or "", field="edit"), "edit")
    found = versions(index, entry.sha1)
    latest = found.latest if found is not None else entry
    old = posts.decode_post(find_post(dd, latest.sha1), max_bytes=dd.settings["max_post_bytes"])
    for key, value in old.attributes.items():
        if type_of(key) in ("FINGERPRINT", "POSTSHA"):
            _put(attrs, key, value)
    _put(attrs, "PREVIOUS_SUPERSEDES", latest.sha1)


def deletion_record(dd: DataDir, author: str, sha1: str, *, now: int | None = None
                    ) -> dict[str, Any]:
    """The attributes of the record deleting ``author``'s post ``sha1`` and every version
    of it (``docs/protocol.md``, Deletion and edit records): ``POST[n]_DELETES`` per
    version, the post's ``_FINGERPRINT`` attributes (the same audience) and, for a
    comment every parent of which is public (held, or deleted by a public record), its
    parents as ``PARENT[n]_PARENTSHA``: the comment went to the comment-sharing group.

    Raises :class:`NotFound` if it is not held here, :class:`Forbidden` if someone else
    wrote it, :class:`BadInput` for a malformed SHA-1 or a deletion record.
    """
    index, entry = _own_entry(dd, author, sha1, "delete")
    found = versions(index, entry.sha1)
    shas = [e.sha1 for e in found.entries] if found is not None else [entry.sha1]
    post = posts.decode_post(find_post(dd, entry.sha1), max_bytes=dd.settings["max_post_bytes"])
    attrs: dict[str, Any] = {"CREATED_TIME": int(time.time()) if now is None else now}
    for i, sha in enumerate(shas):
        attrs["POST_DELETES" if i == 0 else f"POST{i + 1}_DELETES"] = sha
    for key, value in post.attributes.items():
        if type_of(key) == "FINGERPRINT":
            attrs[key] = value
    if post.replies_to and all(records.public_parent(index, p) for p in post.replies_to):
        for i, parent in enumerate(post.replies_to):  # it went to the comment group too
            attrs["PARENT_PARENTSHA" if i == 0 else f"PARENT{i + 1}_PARENTSHA"] = parent
    return attrs


def delete_own(dd: DataDir, author: str, sha1: str, *, password: str | None = None,
               seed: bytes | None = None) -> IngestResult:
    """Delete the own post ``sha1`` everywhere it went: sign and store its deletion record
    (:func:`deletion_record`), which removes the post, its versions and their media here
    and is served to the post's audience. Give ``password`` or an unlocked ``seed``.

    Raises what :func:`deletion_record` raises, :class:`WrongPassword`, and
    :class:`BadInput` if neither ``password`` nor ``seed`` is given.
    """
    ids = Identities(dd)
    private = ids.private_key(names.fingerprint(author))
    attrs = deletion_record(dd, author, sha1)
    if seed is None:
        if password is None:
            raise BadInput("deleting your own post signs a deletion record: give the "
                           "identity's password", field="password")
        seed = private.open_seed(password)
    return _sign_and_store(dd, author, seed, attrs)


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
