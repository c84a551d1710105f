"""Cost of one Noise IK exchange on the owner's side, against the v1 envelope, in one process.

    .venv/bin/python bench/bench_noise.py [--rounds 2000] [--payload 600]

Prints per-operation microseconds and ratios to the baseline, the v1 owner work
(open a SealedBox + one crypto_box decryption with a cached key) on the same
payload. Rows: the IK responder (read message 1, write message 2, split), a
decoy responder failing on the same message 1, the initiator's two messages.
Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import os
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.core.base import crypto  # noqa: E402
from app.core.base.errors import CannotDecrypt  # noqa: E402
from app.core.base.noise import HandshakeState, generate_keypair  # noqa: E402

PROLOGUE = b"bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--payload", type=int, default=600, help="request payload bytes")
    args = parser.parse_args()
    payload = os.urandom(args.payload)
    asker, owner = generate_keypair(), generate_keypair()
    m1 = HandshakeState.initiator(PROLOGUE, asker, owner.public).write_message(payload)
    sealed = crypto.seal(owner.public, crypto.box_encrypt(asker.secret, owner.public, payload))
    box_key = crypto.box_key(owner.secret, asker.public)

    def v1_owner() -> None:
        crypto.box_decrypt_with_key(box_key, crypto.unseal(owner.secret, sealed))

    def ik_responder() -> None:
        r = HandshakeState.responder(PROLOGUE, owner)
        r.read_message(m1)
        r.write_message(b"")
        r.split()

    def ik_decoy() -> None:
        try:
            HandshakeState.responder(PROLOGUE, asker).read_message(m1)
        except CannotDecrypt:
            pass

    def ik_initiator() -> None:
        HandshakeState.initiator(PROLOGUE, asker, owner.public).write_message(payload)

    rows: list[tuple[str, Callable[[], None]]] = [
        ("v1 owner: unseal + box decrypt (baseline)", v1_owner),
        ("IK responder: read 1, write 2, split", ik_responder),
        ("IK decoy responder: read 1 fails", ik_decoy),
        ("IK initiator: write 1", ik_initiator)]
    times = {}
    for name, fn in rows:
        fn()
        times[name] = min(timeit.repeat(fn, number=args.rounds, repeat=3)) / args.rounds
    base = times[rows[0][0]]
    print(f"payload {args.payload} B, {args.rounds} rounds x 3, best; "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print("| operation | µs | × baseline |\n| --- | ---: | ---: |")
    for name, _ in rows:
        print(f"| {name} | {times[name] * 1e6:.0f} | {times[name] / base:.2f} |")


if __name__ == "__main__":
    main()
