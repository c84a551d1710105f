"""Regenerate the key-format known-answer vectors in tests/data/keys/.

Run from the repository root:  .venv/bin/python tests/data/make_key_vectors.py

Deliberately written with plain PyNaCl, hashlib and base64 only (not Diwan's own
code), following docs/protocol.md, so that the vectors check the project's
implementation instead of echoing it. Everything is derived from fixed inputs;
running it again must reproduce the same bytes (Ed25519 signatures are
deterministic; the private key file uses a fixed salt and SecretBox nonce here,
where Diwan itself draws them at random).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import nacl.public
import nacl.pwhash
import nacl.secret
import nacl.signing

OUT = Path(__file__).resolve().parent / "keys"

SEED = bytes(range(0, 32))                    # 000102...1f
TRANSPORT_SECRET = bytes(range(32, 64))       # 202122...3f
PASSWORD = "correct horse battery staple"
SALT = bytes(range(64, 80))                   # 16 bytes (crypto_pwhash SALTBYTES)
NONCE = bytes(range(80, 104))                 # 24 bytes (SecretBox nonce)
OPSLIMIT = 3                                  # libsodium MODERATE, the floor
MEMLIMIT = 256 * 1024 * 1024
MESSAGE = b"hello diwan\n"
DEVICE_ID = "0123456789abcdef"
SERIAL = 1
CTX_POST = b"diwan/v2/post\x00"
CTX_DEVICE_CERT = b"diwan/v2/device-certificate\x00"
CTX_USER_SIGNATURE = b"diwan/v2/user-signature\x00"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def main() -> None:
    signing = nacl.signing.SigningKey(SEED)
    sign_public = bytes(signing.verify_key)
    transport_public = bytes(nacl.public.PrivateKey(TRANSPORT_SECRET).public_key)
    certified = (sign_public + DEVICE_ID.encode("ascii") + SERIAL.to_bytes(8, "big")
                 + transport_public)
    certificate = signing.sign(CTX_DEVICE_CERT + certified).signature
    pub = (f"diwan-public-key-v2\nsign {b64(sign_public)}\n"
           f"device {DEVICE_ID} {SERIAL} {b64(transport_public)} {b64(certificate)}\n"
           ).encode("ascii")
    fingerprint = hashlib.sha256(sign_public).hexdigest()

    key = nacl.pwhash.argon2id.kdf(32, PASSWORD.encode("utf-8"), SALT,
                                   opslimit=OPSLIMIT, memlimit=MEMLIMIT)
    sealed_seed = bytes(nacl.secret.SecretBox(key).encrypt(SEED, NONCE))
    private_doc = {
        "format": "diwan-private-key-v2",
        "fingerprint": fingerprint,
        "kdf": {"alg": "argon2id13", "opslimit": OPSLIMIT, "memlimit": MEMLIMIT,
                "salt": b64(SALT)},
        "sealed_seed": b64(sealed_seed),
        "device": DEVICE_ID,
        "transport": [{"serial": SERIAL, "secret": b64(TRANSPORT_SECRET), "retired_at": None}],
    }
    private = (json.dumps(private_doc, indent=2, sort_keys=True) + "\n").encode("ascii")

    vectors = {
        "seed": SEED.hex(),
        "transport_secret": TRANSPORT_SECRET.hex(),
        "sign_public": sign_public.hex(),
        "transport_public": transport_public.hex(),
        "certificate": certificate.hex(),
        "certified": certified.hex(),
        "device_id": DEVICE_ID,
        "serial": SERIAL,
        "ctx_post": CTX_POST.hex(),
        "ctx_device_cert": CTX_DEVICE_CERT.hex(),
        "ctx_user_signature": CTX_USER_SIGNATURE.hex(),
        "fingerprint": fingerprint,
        "password": PASSWORD,
        "salt": SALT.hex(),
        "nonce": NONCE.hex(),
        "opslimit": OPSLIMIT,
        "memlimit": MEMLIMIT,
        "derived_key": key.hex(),
        "message": MESSAGE.hex(),
        "message_signature": signing.sign(CTX_USER_SIGNATURE + MESSAGE).signature.hex(),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "example.pub").write_bytes(pub)
    (OUT / "example.private").write_bytes(private)
    (OUT / "vectors.json").write_text(json.dumps(vectors, indent=2, sort_keys=True) + "\n")
    print(pub.decode("ascii"), end="")
    print("fingerprint", fingerprint)


if __name__ == "__main__":
    main()
