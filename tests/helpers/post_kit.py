"""A data directory with deterministic authors for index and timeline tests (no Argon2)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from app.core.base import crypto
from app.core.base.datadir import DataDir
from app.core.identity import keys
from app.core.posts.codec import Post, build_post, decode_post
from app.core.posts.ingest import Ingestor
from app.core.posts.reconcile import open_index


class PostKit:
    """Authors are ``.pub`` files from fixed seeds; posts go through the real ingest."""

    seed_prefix = "test-author"

    def __init__(self, root: Path, **settings: Any) -> None:
        self.dd = DataDir(root, {"reconcile_interval_ms": 0, **settings})
        self.dd.initialise()
        self.index = open_index(self.dd)
        self.ingestor = Ingestor(self.dd, index=self.index)
        self.seeds: dict[str, bytes] = {}

    def author(self, n: int) -> str:
        seed = hashlib.sha256(f"{self.seed_prefix}-{n}".encode()).digest()
        pub = keys.certify(seed, crypto.transport_public(hashlib.sha256(seed).digest()))
        (self.dd.identities / f"{pub.fingerprint}.pub").write_bytes(pub.to_bytes())
        self.seeds[pub.fingerprint] = seed
        return pub.fingerprint

    def build(self, fp: str, created: int, **attrs: Any) -> Post:
        raw = build_post(self.seeds[fp], {"CREATED_TIME": created, **attrs})
        return decode_post(raw, max_bytes=len(raw))

    def post(self, fp: str, created: int, **attrs: Any) -> Post:
        """Posted through the real ingest (verified, stored durably, indexed)."""
        return self.ingestor.ingest(self.build(fp, created, **attrs).raw).post
