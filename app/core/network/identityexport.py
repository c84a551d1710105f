"""Moving an own identity to another node of one's own: export and import (README, "Your own
always-on node"; docs/protocol.md, "The identity export file").

The export file is one strict JSON object (ASCII, LF)::

    {"format": "diwan-identity-export-v1", "fingerprint": "<64 hex>",
     "kdf": {<as in the private key file>}, "sealed_seed": "<base64url>",
     "pub": "<the .pub document>", "settings": {<the identity's settings>},
     "nodes": ["http://host:8889", ...]}

The seed stays sealed by the identity's password (Argon2id, as in the key file);
no transport secret is in it: the importing node becomes a new *device* of the
identity, with its own transport key certified by the seed (so the password is
needed to import), and the exporting node learns that device the first time the
new node asks it. ``nodes`` are the exporting node's addresses, where the new
node pulls the identity's feed from. The file is written 0600 from creation.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..base import crypto, names, strictjson
from ..base.datadir import DataDir
from ..base.encoding import b64d, b64e
from ..base.errors import BadInput, Conflict, CorruptFile, DiwanError
from ..base.fsio import make_durable_dir, write_atomic
from ..identity import keys, transport
from ..identity.identities import Identities
from . import feeds
from .addresses import peer_urls
from .contacts import Contacts
from .ownnodes import MAX_NODES, OwnNodes

FORMAT = "diwan-identity-export-v1"
MAX_EXPORT_BYTES = 16384  # a key file's seed and kdf, a .pub, a few settings and addresses
_MEMBERS = frozenset({"format", "fingerprint", "kdf", "sealed_seed", "pub", "settings",
                      "nodes"})


def export_identity(dd: DataDir, fp: str) -> bytes:
    """The export file's bytes for the own identity ``fp`` (no password needed: the seed
    stays sealed). :class:`NotFound` / :class:`Forbidden` if ``fp`` is not own here."""
    ids = Identities(dd)
    private = ids.private_key(fp)
    nodes = list(dict.fromkeys(peer_urls(dd.settings) + OwnNodes(dd).addresses(fp)))
    group = feeds.get_share_comments_group(dd, fp)
    settings = {} if group is None else {feeds.SHARE_COMMENTS: group}
    doc = {"format": FORMAT, "fingerprint": fp, "kdf": private.kdf,
           "sealed_seed": b64e(private.sealed_seed),
           "pub": ids.pub_document(fp).decode("ascii"), "settings": settings,
           "nodes": nodes[:MAX_NODES]}
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("ascii")


def write_export(dd: DataDir, fp: str, path: Path) -> None:
    """Write :func:`export_identity` to ``path``, mode 0600 from creation, atomically."""
    write_atomic(path, export_identity(dd, fp), mode=0o600)


def _parse(data: bytes) -> tuple[dict[str, Any], keys.PublicKey]:
    if len(data) > MAX_EXPORT_BYTES:
        raise BadInput(f"an identity export file is at most {MAX_EXPORT_BYTES} bytes",
                       field="export")
    doc = strictjson.loads(data, what="the identity export file")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or set(doc) != _MEMBERS:
        raise BadInput(f"not a {FORMAT} file (diwan identity export makes one)",
                       field="export")
    fp = names.fingerprint(doc["fingerprint"] if isinstance(doc["fingerprint"], str) else "",
                           field="export")
    if not isinstance(doc["pub"], str) or not isinstance(doc["settings"], dict) \
            or not isinstance(doc["nodes"], list) or len(doc["nodes"]) > MAX_NODES:
        raise BadInput("the export file's pub, settings or nodes are malformed",
                       field="export")
    return doc, keys.parse_pub(doc["pub"].encode("ascii", "replace"), expected_fp=fp)


def is_export(data: bytes) -> bool:
    """True if ``data`` looks like an identity export file (rather than a ``.pub``)."""
    return data.lstrip()[:1] == b"{" and FORMAT.encode() in data[:MAX_EXPORT_BYTES]


def import_identity(dd: DataDir, data: bytes, password: str) -> dict[str, Any]:
    """Make this node a new device of the exported identity; returns ``{"fingerprint",
    "device", "nodes"}``.

    Opens the sealed seed with ``password`` (:class:`WrongPassword`, nothing written),
    certifies a fresh transport key for a new device id, writes the key file (0600;
    the seed sealed exactly as exported) and the merged ``.pub``, the identity's
    settings and the exporting node's addresses. :class:`BadInput` for a file that is
    not an export, :class:`Conflict` if ``fp`` is already own here or a contact.
    """
    doc, pub = _parse(data)
    fp, ids = pub.fingerprint, Identities(dd)
    if ids.is_own(fp):
        raise Conflict(f"{fp} is already an own identity of this node", field="export")
    if Contacts(dd).find(fp) is not None:
        raise Conflict(f"{fp} is a contact of this node; remove the contact first",
                       field="export")
    device, secret = transport.new_device_id(), crypto.new_transport_secret()
    stored = keys.StoredTransport(1, secret)
    try:
        candidate = keys.PrivateKey(fp, doc["kdf"], b64d(doc["sealed_seed"]), device, (stored,))
        private = keys.parse_private(candidate.to_bytes())  # the key file's own checks
    except (BadInput, CorruptFile, TypeError, ValueError) as exc:
        raise BadInput(f"the export file's sealed key is malformed: {exc}",
                       field="export") from None
    seed = private.open_seed(password)
    merged = keys.with_device(seed, pub, keys.DeviceCert(device, 1, stored.public))
    if ids.exists(fp):
        merged = keys.merge_pub(ids.public_key(fp, touch=False), merged)
    make_durable_dir(ids.dir)
    write_atomic(ids.private_path(fp), private.to_bytes(), mode=0o600)
    transport.write_pub(ids, fp, merged)
    _settings(dd, fp, doc["settings"])
    nodes = [a for a in doc["nodes"] if isinstance(a, str)]
    OwnNodes(dd).add(fp, nodes, mine=peer_urls(dd.settings))
    return {"fingerprint": fp, "device": device, "nodes": OwnNodes(dd).addresses(fp),
            "imported": time.time()}


def _settings(dd: DataDir, fp: str, settings: dict[str, Any]) -> None:
    """Apply the identity's settings that make sense here (a sharing group that exists)."""
    group = settings.get(feeds.SHARE_COMMENTS)
    if isinstance(group, str):
        try:
            feeds.set_share_comments_group(dd, fp, group)
        except DiwanError:  # no such group here, or not a group name: left unset
            pass
