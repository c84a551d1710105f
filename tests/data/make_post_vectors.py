"""Make the post known-answer vectors: ``tests/data/posts/vectors.json``.

Run from the repository root: ``.venv/bin/python tests/data/make_post_vectors.py``.

Built with plain PyNaCl, json, base64 and hashlib from ``docs/protocol.md``
alone (no ``app`` import), so the vectors check the codec against the text of
the specification rather than against itself. Ed25519 signatures are
deterministic, so the output never changes; the tests compare the codec's
output with these bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import nacl.public
import nacl.signing

OUT = Path(__file__).resolve().parent / "posts" / "vectors.json"
CTX_POST = b"diwan/v2/post\x00"
CTX_DEVICE_CERT = b"diwan/v2/device-certificate\x00"
DEVICE_ID = "0123456789abcdef"
T0 = 1700000000  # 2023-11-14T22:13:20Z


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def author(seed: bytes) -> dict[str, str]:
    """A fingerprint and .pub document (see the keys section) for a fixed seed."""
    sign = nacl.signing.SigningKey(seed)
    sign_public = bytes(sign.verify_key)
    transport = bytes(nacl.public.PrivateKey(hashlib.sha256(b"transport" + seed).digest())
                      .public_key)
    cert = sign.sign(CTX_DEVICE_CERT + sign_public + DEVICE_ID.encode("ascii")
                     + (1).to_bytes(8, "big") + transport).signature
    pub = (f"diwan-public-key-v2\nsign {b64(sign_public)}\n"
           f"device {DEVICE_ID} 1 {b64(transport)} {b64(cert)}\n")
    return {"seed": seed.hex(), "fingerprint": hashlib.sha256(sign_public).hexdigest(),
            "pub": pub}


def post(seed_hex: str, attributes: dict[str, Any]) -> dict[str, Any]:
    """The post file for ``attributes`` exactly as docs/protocol.md describes it."""
    payload = json.dumps(attributes, separators=(",", ":"), ensure_ascii=False,
                         sort_keys=True).encode("utf-8")
    p1 = b64(payload)
    key = nacl.signing.SigningKey(bytes.fromhex(seed_hex))
    sig = b64(key.sign(CTX_POST + p1.encode("ascii")).signature)
    fp = hashlib.sha256(bytes(key.verify_key)).hexdigest()
    file = f"{p1}.{fp}.{sig}"
    return {"attributes": attributes, "json": payload.decode("utf-8"), "p1": p1, "fp": fp,
            "sig": sig, "file": file,
            "sha1": hashlib.sha1(file.encode("ascii")).hexdigest()}


def tiny_png() -> bytes:
    """A valid 1x1 white PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\xff\xff", 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
            + chunk(b"IEND", b""))


def main() -> None:
    a = author(bytes(range(32)))
    b = author(hashlib.sha256(b"diwan test author B").digest())
    hello = post(a["seed"], {"CREATED_TIME": T0, "TEXT": "Hello, Diwan! مرحبا 👋"})
    vectors = [
        ("example", "post", False, hello),
        ("comment_reaction", "comment", True, post(b["seed"], {
            "CREATED_TIME": T0 + 60, "TEXT": "👍🏽", "TO_FINGERPRINT": a["fingerprint"],
            "REPLY_POSTSHA": hello["sha1"]})),
        ("message", "message", False, post(a["seed"], {
            "CREATED_TIME": T0 + 120, "TEXT": "See you at 8?",
            "TO_FINGERPRINT": b["fingerprint"]})),
        ("profile", "profile", False, post(a["seed"], {
            "CREATED_TIME": T0 + 180, "NAME_PROFILENAME": "Ahmed", "BIRTHDATE": "1990-02-28",
            "WORK_WORKPLACE": "Diwan Co-op", "MOBILE_PHONE": "+20 100 000 0000",
            "HOME_EMAIL": "ahmed@example.org", "ME_PROFILEPICTURE": b64(tiny_png())})),
        ("reshare", "post", False, post(b["seed"], {
            "CREATED_TIME": T0 + 240, "TEXT": "Worth reading", "SHARED_POST": hello["file"]})),
        ("media", "post", False, post(a["seed"], {
            "CREATED_TIME": T0 + 300, "TEXT": "photo, document and link",
            "PHOTO_PNG": b64(tiny_png()), "DOC_BIN": b64(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"),
            "SOURCE_URL": "https://example.org/a?b=c", "MOOD_FEELING": "curious"})),
    ]
    doc = {"comment": "made by tests/data/make_post_vectors.py; do not edit",
           "authors": {"A": a, "B": b},
           "posts": [{"name": name, "author": "A" if v["fp"] == a["fingerprint"] else "B",
                      "kind": kind, "is_reaction": reaction, **v}
                     for name, kind, reaction, v in vectors]}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {OUT}")
    print(json.dumps(hello, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
