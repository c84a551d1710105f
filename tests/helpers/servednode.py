"""A node with one own identity, three public posts and ASKER known, for tests of serving
feed pages (tests/core/network/test_servedfiles.py, tests/api/test_feed_fastpath.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.base.datadir import DataDir
from app.core.identity.identities import Identities
from app.core.network import exchange
from app.core.network.feeds import serve_feed
from app.core.posts.codec import build_post
from app.core.posts.ingest import Ingestor
from tests.core.network.test_exchange import ASKER, Party, request
from tests.helpers.datadirs import PASSWORD, make_datadir


@dataclass
class ServedNode:
    dd: DataDir
    own: str
    seed: bytes
    raws: list[bytes]
    owner: Party

    def posts(self) -> list[bytes]:
        """The posts ASKER gets in one exchange (a page of up to 10), through serve_feed."""
        now = int(time.time())
        body, pending = request(ASKER, self.owner, now=now, limit=10)
        raw = serve_feed(self.dd, self.own, body, now=now, remote="192.0.2.1").read()
        return exchange.open_response(raw, pending, max_bytes=10**7).posts


def served_node(root: Path, **settings: Any) -> ServedNode:
    """The node in ``root`` (``settings`` as for ``make_datadir``)."""
    dd = make_datadir(root, **settings)
    ids = Identities(dd)
    own = ids.create(PASSWORD)
    seed = ids.open_seed(own, PASSWORD)
    ids.import_pub(ASKER.own.pub_document)
    t = int(time.time()) - 100
    raws = [build_post(seed, {"CREATED_TIME": t + i, "TEXT": f"post {i}"}) for i in range(3)]
    Ingestor(dd).ingest_many(raws, author=own)
    owner = Party(b"", exchange.OwnKeys(own, b"", b""), ids.public_key(own))
    return ServedNode(dd, own, seed, raws, owner)
