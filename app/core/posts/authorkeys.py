"""The signing keys of post authors, as ingest needs them (acceptance rule 3).

An author's key is its ``.pub`` here (:class:`app.core.identity.identities.Identities`);
for an author with none (a reshared post's author), ``key_lookup(fp)`` may offer one,
imported only if it matches the fingerprint, and never asked for a blocked author.
Keys are cached by fingerprint: safe, since a fingerprint is the hash of its key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..base.errors import BadKeyDocument, BadPost, DiwanError, NotFound, Reason
from ..identity.identities import Identities

log = logging.getLogger("diwan.ingest")

KeyLookup = Callable[[str], bytes | None]
_CACHE_SIZE = 4096  # keys held; the cache starts again when full


class AuthorKeys:
    """Raw 32-byte Ed25519 keys of authors, by fingerprint (64 hex)."""

    def __init__(self, identities: Identities, key_lookup: KeyLookup | None) -> None:
        self.identities = identities
        self.key_lookup = key_lookup
        self._keys: dict[str, bytes] = {}

    def local(self, fp: str) -> bytes | None:
        """The key of ``fp`` if its ``.pub`` is here (None otherwise; nothing fetched)."""
        key = self._keys.get(fp)
        if key is None:
            try:
                key = self.identities.public_key(fp, touch=False).sign
            except (NotFound, BadKeyDocument):
                return None
            self._remember(fp, key)
        return key

    def get(self, fp: str, blocked: Callable[[str], bool]) -> bytes:
        """The key of ``fp``, fetched through ``key_lookup`` if it is not here and
        ``blocked(fp)`` is False. Raises :class:`BadPost`: ``unknown_author`` (no key, a
        damaged ``.pub``, a key offered that does not match) or ``blocked``."""
        key = self._keys.get(fp)
        if key is None:
            key = self._load(fp, blocked)
            self._remember(fp, key)
        return key

    def _remember(self, fp: str, key: bytes) -> None:
        if len(self._keys) >= _CACHE_SIZE:
            self._keys.clear()
        self._keys[fp] = key

    def _load(self, fp: str, blocked: Callable[[str], bool]) -> bytes:
        try:
            return self.identities.public_key(fp, touch=False).sign
        except NotFound:
            pass
        except BadKeyDocument:
            raise _unknown(fp, "its .pub file here is damaged") from None
        if blocked(fp):  # never fetch a blocked author's key
            raise BadPost(f"{fp} is blocked on this node", reason=Reason.BLOCKED, field="post")
        document = self._lookup(fp)
        if document is None:
            raise _unknown(fp, "no .pub for it here and none could be fetched")
        try:
            self.identities.import_pub(document, expected_fp=fp)
            return self.identities.public_key(fp, touch=False).sign
        except (BadKeyDocument, NotFound):
            raise _unknown(fp, "the key offered for it does not verify or match") from None

    def _lookup(self, fp: str) -> bytes | None:
        if self.key_lookup is None:
            return None
        try:
            return self.key_lookup(fp)
        except DiwanError as exc:
            log.info("key lookup for %s failed: %s", fp, exc.message)
            return None


def _unknown(fp: str, why: str) -> BadPost:
    return BadPost(f"unknown author {fp}: {why}", reason=Reason.UNKNOWN_AUTHOR, field="post")
