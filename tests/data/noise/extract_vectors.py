"""Extract the Noise_IK_25519_ChaChaPoly_BLAKE2b vectors from published vector files.

Usage (from the repository root, with the three source files checked out; see README.md):

    python tests/data/noise/extract_vectors.py cacophony.txt snow.txt noise-c-basic.txt \
        > tests/data/noise/ik_25519_chachapoly_blake2b.json

Keeps only entries whose protocol name is exactly ``Noise_IK_25519_ChaChaPoly_BLAKE2b``
(no PSK, no deferred IK1) and no PSKs, copies their fields unchanged and adds ``source``.
"""

from __future__ import annotations

import json
import sys

NAME = "Noise_IK_25519_ChaChaPoly_BLAKE2b"
FIELDS = ("init_prologue", "init_static", "init_ephemeral", "init_remote_static",
          "resp_prologue", "resp_static", "resp_ephemeral", "handshake_hash", "messages")


def main(paths: list[str]) -> None:
    out = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            vectors = json.load(f)["vectors"]
        for vector in vectors:
            name = vector.get("protocol_name") or vector.get("name")
            if name != NAME or vector.get("init_psks") or vector.get("resp_psks"):
                continue
            entry = {"source": path.rsplit("/", 1)[-1], "protocol_name": name}
            entry.update({k: vector[k] for k in FIELDS if k in vector})
            out.append(entry)
    json.dump({"vectors": out}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
