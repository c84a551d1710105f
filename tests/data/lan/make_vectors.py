"""Make tests/data/lan/tags.json: known answers for the LAN discovery tag.

Computed here with hashlib alone (not the code under test), from the definition in
docs/protocol.md ("LAN discovery"): BLAKE2b, 8-byte digest, key = the 32 fingerprint
bytes, message = b"diwan/v1/lan-tag" NUL || the UTC day as ASCII YYYY-MM-DD.

    .venv/bin/python tests/data/lan/make_vectors.py > tests/data/lan/tags.json
"""

import hashlib
import json

CASES = [("00" * 32, "2026-01-01"), ("ff" * 32, "2026-01-01"),
         ("4b1073a3c74e29a3" * 4, "2026-11-30"), ("4b1073a3c74e29a3" * 4, "2026-12-01")]


def tag(fp: str, day: str) -> str:
    return hashlib.blake2b(b"diwan/v1/lan-tag\x00" + day.encode("ascii"),
                           key=bytes.fromhex(fp), digest_size=8).hexdigest()


print(json.dumps([{"fingerprint": fp, "day": day, "tag": tag(fp, day)} for fp, day in CASES],
                 indent=1))
