"""Make the sample feed exchange (v2) in ``sample.json`` and print its listing for docs/protocol.md.

    .venv/bin/python tests/data/exchange/make_vectors.py          # rewrite sample.json
    .venv/bin/python tests/data/exchange/make_vectors.py --print  # only print the listing

Every key (both static keys and both ephemeral keys), the nonce and the time
are fixed, derived from labels below, so every byte is the same on every run:
the request body, the response body (message 2 and the padded page) and the
plaintexts. ``tests/core/network/test_exchange_sample.py`` checks that the code
makes exactly these bytes and that the listing is in docs/protocol.md;
``tests/integration/test_exchange_from_spec.py`` rebuilds the request with
an implementation written from the spec alone.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from app.core.base import noise  # noqa: E402
from app.core.identity import keys  # noqa: E402
from app.core.network import exchange  # noqa: E402
from app.core.posts import codec as posts  # noqa: E402

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "sample.json"
NOW = 1700000000
ASKER_DEVICE = "a5a5a5a5a5a5a5a5"
OWNER_DEVICE = "0b0b0b0b0b0b0b0b"
EPOCH = 4660046610375530  # the owner's epoch, below 2^53
POSITIONS = [1699999400000000, 1699999700000000]  # where the owner stored the two posts


def label(name: str) -> bytes:
    """32 fixed bytes: SHA-256 of ``diwan/sample/<name>``."""
    return hashlib.sha256(f"diwan/sample/{name}".encode()).digest()


def fixed_inputs() -> dict[str, Any]:
    return {
        "asker_seed": label("asker/sign"), "asker_transport_secret": label("asker/transport"),
        "owner_seed": label("owner/sign"), "owner_transport_secret": label("owner/transport"),
        "asker_ephemeral_secret": label("ephemeral"),
        "owner_ephemeral_secret": label("owner/ephemeral"),
        "nonce": bytes(range(24)), "now": NOW, "limit": 10, "epoch": EPOCH,
        "after": POSITIONS[0] - 1,
    }


def pub_of(seed: bytes, device: str, transport_secret: bytes) -> keys.PublicKey:
    public = noise.keypair_from_secret(transport_secret).public
    return keys.certify(seed, [keys.DeviceCert(device, 1, public)])


def sample_posts(owner_seed: bytes) -> list[bytes]:
    return [posts.build_post(owner_seed, {"CREATED_TIME": NOW - 600, "TEXT": "Good morning"}),
            posts.build_post(owner_seed, {"CREATED_TIME": NOW - 300, "TEXT": "صباح الخير"})]


def make() -> dict[str, Any]:
    f = fixed_inputs()
    asker = pub_of(f["asker_seed"], ASKER_DEVICE, f["asker_transport_secret"])
    owner = pub_of(f["owner_seed"], OWNER_DEVICE, f["owner_transport_secret"])
    own = exchange.OwnKeys(asker.fingerprint, asker.to_bytes(), f["asker_transport_secret"])
    body, pending = exchange.build_request(
        asker=own, owner_fp=owner.fingerprint, owner_transport=owner.transport_public,
        epoch=f["epoch"], after=f["after"], limit=f["limit"], now=f["now"],
        ephemeral=noise.keypair_from_secret(f["asker_ephemeral_secret"]), nonce=f["nonce"])
    hs = noise.HandshakeState.responder(
        exchange.prologue(owner.fingerprint),
        noise.keypair_from_secret(f["owner_transport_secret"]),
        e=noise.keypair_from_secret(f["owner_ephemeral_secret"]))
    payload = hs.read_message(body[1 + exchange.KEY_ID_BYTES:])
    pub, request_json = exchange._payload_fields(payload)
    opened = exchange.OpenedRequest(owner.fingerprint, hs.remote_static or b"", pub,
                                    request_json, hs)
    page = sample_posts(f["owner_seed"])
    response = exchange.respond(opened, owner_pub=owner.to_bytes(), posts=page, more=True,
                                max_bytes=32 << 20, epoch=EPOCH, positions=POSITIONS)
    got = exchange.open_response(response, pending, max_bytes=32 << 20)
    assert got.posts == page and got.more  # a generator's own sanity check, not input checking
    assert got.epoch == EPOCH and got.positions == POSITIONS
    hexed = {k: v.hex() for k, v in f.items() if isinstance(v, bytes)}
    return {**{k: v for k, v in f.items() if not isinstance(v, bytes)}, **hexed,
            "asker_fp": asker.fingerprint, "asker_pub": asker.to_bytes().decode(),
            "owner_fp": owner.fingerprint, "owner_pub": owner.to_bytes().decode(),
            "prologue": exchange.prologue(owner.fingerprint).hex(),
            "request_json": request_json.decode(), "payload": payload.hex(),
            "request": body.hex(), "posts": [p.decode() for p in page], "more": True,
            "positions": POSITIONS,
            "response": response.hex()}


def listing(v: dict[str, Any]) -> str:
    """The sample as it appears in docs/protocol.md (checked by the tests)."""
    request = bytes.fromhex(v["request"])
    response = bytes.fromhex(v["response"])
    m2 = int.from_bytes(response[:2], "big")
    lines = [
        "Fixed inputs (each secret is SHA-256 of the ASCII label `diwan/sample/<name>`;",
        f"the asker's device is `{ASKER_DEVICE}`, the owner's `{OWNER_DEVICE}`, serial 1):",
        "",
        "```text",
        f"asker signing seed       {v['asker_seed']}",
        f"asker transport secret   {v['asker_transport_secret']}",
        f"asker ephemeral secret   {v['asker_ephemeral_secret']}",
        f"owner signing seed       {v['owner_seed']}",
        f"owner transport secret   {v['owner_transport_secret']}",
        f"owner ephemeral secret   {v['owner_ephemeral_secret']}",
        f"nonce                    {v['nonce']}",
        f"time                     {v['now']}",
        "```",
        "",
        f"The owner is `{v['owner_fp']}`; the prologue (hex):",
        "",
        "```text",
        v["prologue"],
        "```",
        "",
        f"The asker's `.pub` document (fingerprint `{v['asker_fp']}`):",
        "",
        "```text",
        v["asker_pub"].rstrip("\n"),
        "```",
        "",
        f"The request JSON ({len(v['request_json'])} bytes):",
        "",
        "```json",
        v["request_json"],
        "```",
        "",
        f"The request body is {len(request)} bytes; its first 89 bytes (0x02, the key id, "
        "the asker's ephemeral key, the encrypted static key) and its SHA-256:",
        "",
        "```text",
        request[:89].hex(),
        hashlib.sha256(request).hexdigest(),
        "```",
        "",
        f"The response body is {len(response)} bytes (the 1 KiB bucket): message 2 "
        f"({m2} bytes, its payload the owner's `.pub`), then one transport message of "
        f"{int.from_bytes(response[2 + m2:4 + m2], 'big')} bytes carrying the epoch record "
        f"(epoch {v['epoch']}), the two posts at positions {v['positions'][0]} and "
        f"{v['positions'][1]}, the end record (more: 1) and the padding. Its SHA-256:",
        "",
        "```text",
        hashlib.sha256(response).hexdigest(),
        "```",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    if "--print" not in sys.argv:
        SAMPLE.write_text(json.dumps(make(), indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(listing(json.loads(SAMPLE.read_text("utf-8"))), end="")


if __name__ == "__main__":
    main()
