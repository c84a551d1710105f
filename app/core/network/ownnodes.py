"""The other nodes that hold one of this node's own identities (README, "Your own always-on node").

``state/own_nodes.json`` maps an own fingerprint to the addresses of its other
nodes (each a device of the identity, certified in its ``.pub``)::

    {"<own FP>": {"addresses": ["http://server:8889"], "added": 1700000000.0}}

An address is added when an identity is imported from another node's export
file (that node's addresses) and when another node of the same identity asks
this one inside the authenticated exchange and says where it answers (the
request's ``reply`` member: only a node holding a device key certified by the
identity can do that). The nodes of one identity pull each other's copy of its
feed (:mod:`ownsync`), so each serves the whole feed.
"""

from __future__ import annotations

import builtins
import logging
import time

from ..base import names
from ..base.datadir import DataDir
from ..base.errors import BadInput, CorruptFile
from ..base.statefile import StateFile
from .contacts import normalise_address

log = logging.getLogger("diwan.ownnodes")

MAX_NODES = 8  # an identity has at most keys.MAX_DEVICES devices


class OwnNodes:
    """The addresses of the other nodes of each own identity."""

    def __init__(self, dd: DataDir) -> None:
        self.dd = dd
        self.file = StateFile(dd, "own_nodes")

    def addresses(self, fp: str) -> list[str]:
        """The other nodes of ``fp`` (normalised addresses, oldest first); :class:`CorruptFile`
        for a damaged file, :class:`BadFingerprint` for a bad ``fp``."""
        raw = self.file.read().get(names.fingerprint(fp))
        try:
            return [normalise_address(a) for a in raw["addresses"]] if raw else []
        except (KeyError, TypeError, BadInput) as exc:
            raise CorruptFile(f"state/own_nodes.json: bad entry for {fp}: {exc}") from None

    def all(self) -> dict[str, builtins.list[str]]:
        """Every own fingerprint with other nodes, and their addresses."""
        return {fp: self.addresses(fp) for fp in sorted(self.file.read())}

    def add(self, fp: str, addresses: builtins.list[str], *, mine: builtins.list[str]
            ) -> bool:
        """Remember ``addresses`` as other nodes of ``fp`` (this node's own ``mine`` and
        repeats left out, at most :data:`MAX_NODES`, the oldest kept); True if it changed.
        :class:`BadInput` for a bad address."""
        clean = [normalise_address(a) for a in addresses]
        with self.file.update() as data:
            entry = data.get(names.fingerprint(fp)) or {"addresses": [], "added": time.time()}
            held = list(entry["addresses"])
            for address in clean:
                if address not in held and address not in mine and len(held) < MAX_NODES:
                    held.append(address)
            changed: bool = held != entry["addresses"]
            if held:
                data[fp] = {**entry, "addresses": held}
        if changed:
            log.info("%s: another node of this identity answers at %s", fp, held[-1])
        return changed

    def remove(self, fp: str, address: str) -> bool:
        """Forget one other node of ``fp``; True if it was known."""
        address = normalise_address(address)
        with self.file.update() as data:
            entry = data.get(names.fingerprint(fp))
            if not entry or address not in entry["addresses"]:
                return False
            entry["addresses"].remove(address)
            if not entry["addresses"]:
                del data[fp]
        return True
