"""Make the sample feed exchange in ``sample.json`` and print its listing for docs/protocol.md.

    .venv/bin/python tests/data/exchange/make_vectors.py          # rewrite sample.json
    .venv/bin/python tests/data/exchange/make_vectors.py --print  # only print the listing

Every key, the ephemeral key and the nonce are fixed, derived from labels
below, so the plaintexts (request JSON, frame head, response JSON) are the
same on every run. SealedBox and Box draw random nonces, so the ciphertexts
differ per run: ``sample.json`` keeps one run's ciphertexts and
``tests/core/test_exchange.py`` checks that they open to the plaintexts.
Running this script again replaces them (the plaintexts do not change).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from app.core.base import crypto  # noqa: E402
from app.core.identity import keys  # noqa: E402
from app.core.network import exchange  # noqa: E402
from app.core.posts import codec as posts  # noqa: E402

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "sample.json"
NOW = 1700000000
WINDOW = 300


def label(name: str) -> bytes:
    """32 fixed bytes: SHA-256 of ``diwan/sample/<name>``."""
    return hashlib.sha256(f"diwan/sample/{name}".encode()).digest()


def fixed_inputs() -> dict[str, Any]:
    return {
        "asker_seed": label("asker/sign"), "asker_transport_secret": label("asker/transport"),
        "owner_seed": label("owner/sign"), "owner_transport_secret": label("owner/transport"),
        "ephemeral_secret": label("ephemeral"), "nonce": bytes(range(24)),
        "now": NOW, "window": WINDOW, "limit": 10, "after_time": NOW - 86400,
        "after_sha": hashlib.sha1(b"diwan sample cursor").hexdigest(),
    }


def pub_of(seed: bytes, transport_secret: bytes) -> keys.PublicKey:
    return keys.certify(seed, [keys.DeviceCert(crypto.fingerprint(seed)[:16], 1,
                                               crypto.transport_public(transport_secret))])


def sample_posts(owner_seed: bytes) -> list[bytes]:
    return [posts.build_post(owner_seed, {"CREATED_TIME": NOW - 600, "TEXT": "Good morning"}),
            posts.build_post(owner_seed, {"CREATED_TIME": NOW - 300, "TEXT": "صباح الخير"})]


def make() -> dict[str, Any]:
    f = fixed_inputs()
    asker = pub_of(f["asker_seed"], f["asker_transport_secret"])
    owner = pub_of(f["owner_seed"], f["owner_transport_secret"])
    own = exchange.OwnKeys(asker.fingerprint, asker.to_bytes(), f["asker_transport_secret"])
    body, pending = exchange.build_request_with(
        asker=own, owner_fp=owner.fingerprint, owner_key=owner, after_time=f["after_time"],
        after_sha=f["after_sha"], limit=f["limit"], now=f["now"],
        ephemeral_secret=f["ephemeral_secret"], nonce=f["nonce"])
    req = exchange.open_request(body, owner_fp=owner.fingerprint,
                                owner_transport_secret=f["owner_transport_secret"],
                                now=f["now"], window=f["window"], max_limit=500)
    page = sample_posts(f["owner_seed"])
    response = exchange.seal_response(req, owner_transport_secret=f["owner_transport_secret"],
                                      posts=page, more=True)
    inner_json = exchange.encode_request(
        asker_fp=asker.fingerprint, owner_fp=owner.fingerprint, after_time=f["after_time"],
        after_sha=f["after_sha"], limit=f["limit"], nonce=f["nonce"], time=f["now"],
        ephemeral_public=crypto.transport_public(f["ephemeral_secret"]))
    response_json = exchange.encode_response(owner_fp=owner.fingerprint, nonce=f["nonce"],
                                             posts=[p.decode() for p in page], more=True)
    hexed = {k: v.hex() for k, v in f.items() if isinstance(v, bytes)}
    return {**{k: v for k, v in f.items() if not isinstance(v, bytes)}, **hexed,
            "asker_fp": asker.fingerprint, "asker_pub": asker.to_bytes().decode(),
            "owner_fp": owner.fingerprint, "owner_pub": owner.to_bytes().decode(),
            "ephemeral_public": crypto.transport_public(f["ephemeral_secret"]).hex(),
            "request_json": inner_json.decode(), "inner_box_length": len(inner_json) + 40,
            "request": body.hex(), "posts": [p.decode() for p in page], "more": True,
            "response_json": response_json.decode(), "response": response.hex(),
            "pending_limit": pending.limit}


def frame_head(v: dict[str, Any]) -> bytes:
    """The frame up to the inner box (everything but the box is fixed)."""
    pub = v["asker_pub"].encode()
    return (exchange.FRAME_VERSION + bytes.fromhex(v["ephemeral_public"])
            + len(pub).to_bytes(2, "big") + pub + v["inner_box_length"].to_bytes(2, "big"))


def listing(v: dict[str, Any]) -> str:
    """The sample as it appears in docs/protocol.md (checked by the tests)."""
    pub = v["asker_pub"].encode()
    lines = [
        "Fixed inputs (each secret is SHA-256 of the ASCII label `diwan/sample/<name>`):",
        "",
        "```text",
        f"asker signing seed      {v['asker_seed']}",
        f"asker transport secret  {v['asker_transport_secret']}",
        f"owner signing seed      {v['owner_seed']}",
        f"owner transport secret  {v['owner_transport_secret']}",
        f"ephemeral secret        {v['ephemeral_secret']}",
        f"ephemeral public        {v['ephemeral_public']}",
        f"nonce                   {v['nonce']}",
        f"time                    {v['now']}",
        "```",
        "",
        "The asker's `.pub` document (fingerprint "
        f"`{v['asker_fp']}`):",
        "",
        "```text",
        v["asker_pub"].rstrip("\n"),
        "```",
        "",
        f"The owner's fingerprint is `{v['owner_fp']}`. The request JSON "
        f"({len(v['request_json'])} bytes, inner box {v['inner_box_length']} bytes):",
        "",
        "```json",
        v["request_json"],
        "```",
        "",
        "The frame, up to the inner box (hex):",
        "",
        "```text",
        f"{'01':<66}version",
        f"{v['ephemeral_public']:<66}ephemeral public key",
        f"{len(pub).to_bytes(2, 'big').hex():<66}length of the .pub document ({len(pub)})",
        f"<the {len(pub)} bytes of the .pub document above>",
        f"{v['inner_box_length'].to_bytes(2, 'big').hex():<66}"
        f"length of the inner box ({v['inner_box_length']})",
        "<the inner box: 24-byte nonce || crypto_box of the request JSON>",
        "```",
        "",
        f"The response JSON ({len(v['response_json'].encode())} bytes):",
        "",
        "```json",
        v["response_json"],
        "```",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    if "--print" not in sys.argv:
        SAMPLE.write_text(json.dumps(make(), indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(listing(json.loads(SAMPLE.read_text("utf-8"))), end="")


if __name__ == "__main__":
    main()
