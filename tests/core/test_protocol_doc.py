"""docs/protocol.md, section keys: the worked example is checked byte for byte."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from app.core.base import crypto
from app.core.identity import keys

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "protocol.md").read_text("utf-8")
VECTORS = json.loads((ROOT / "tests/data/keys/vectors.json").read_text())

_EXAMPLE = re.compile(r"<!-- example:(?P<name>\w+) -->\n(?P<indent>[ ]*)```[a-z]*\n"
                      r"(?P<body>.*?)\n(?P=indent)```", re.S)


def _section(name: str) -> str:
    starts = DOC.count(f"<!-- section:{name} -->")
    ends = DOC.count(f"<!-- /section:{name} -->")
    assert (starts, ends) == (1, 1)
    return DOC.split(f"<!-- section:{name} -->")[1].split(f"<!-- /section:{name} -->")[0]


def _examples() -> dict[str, str]:
    found: dict[str, str] = {}
    for m in _EXAMPLE.finditer(_section("keys")):
        indent = m["indent"]
        lines = [line[len(indent):] if line.startswith(indent) else line
                 for line in m["body"].split("\n")]
        assert m["name"] not in found, f"example {m['name']} twice"
        found[m["name"]] = "\n".join(lines)
    return found


EXAMPLES = _examples()


def test_every_example_is_present() -> None:
    assert set(EXAMPLES) == {"ctx_device_cert", "ctx_user_signature", "seed",
                             "transport_secret", "device_id", "pub", "fingerprint", "password",
                             "private"}


def test_context_strings_are_the_ones_in_the_code() -> None:
    assert bytes.fromhex(EXAMPLES["ctx_device_cert"]) == crypto.CTX_DEVICE_CERT
    assert bytes.fromhex(EXAMPLES["ctx_user_signature"]) == crypto.CTX_USER_SIGNATURE
    for ctx in crypto.CONTEXTS:   # every context in the code is documented in the table
        assert f"`{ctx[:-1].decode()}`" in _section("keys")
        assert f"| {len(ctx)} |" in _section("keys")


def test_worked_example_pub_is_what_the_code_makes_byte_for_byte() -> None:
    seed = bytes.fromhex(EXAMPLES["seed"])
    transport_secret = bytes.fromhex(EXAMPLES["transport_secret"])
    documented = (EXAMPLES["pub"] + "\n").encode("ascii")
    device = keys.DeviceCert(EXAMPLES["device_id"], 1, crypto.transport_public(transport_secret))
    made = keys.certify(seed, [device]).to_bytes()
    assert made == documented
    assert len(documented) == 226
    assert documented == (ROOT / "tests/data/keys/example.pub").read_bytes()
    assert keys.parse_pub(documented, expected_fp=EXAMPLES["fingerprint"]).to_bytes() == made


def test_worked_example_fingerprint_is_sha256_of_the_raw_key() -> None:
    seed = bytes.fromhex(EXAMPLES["seed"])
    raw = crypto.signing_public(seed)
    assert EXAMPLES["fingerprint"] == hashlib.sha256(raw).hexdigest() == VECTORS["fingerprint"]


def test_worked_example_certificate_signs_the_documented_bytes() -> None:
    """From the text alone: CTX_DEVICE_CERT || S_raw || ID || SERIAL_be64 || T_raw, 116 bytes."""
    lines = EXAMPLES["pub"].split("\n")
    assert lines[0] == "diwan-public-key-v2" and len(lines) == 3
    _, device_id, serial, t_b64, c_b64 = lines[2].split(" ")
    key = keys.parse_pub((EXAMPLES["pub"] + "\n").encode())
    message = (bytes.fromhex(EXAMPLES["ctx_device_cert"]) + key.sign + device_id.encode()
               + int(serial).to_bytes(8, "big") + key.transport_public)
    assert len(message) == 116
    assert message[28:].hex() == VECTORS["certified"]
    assert crypto.verify(key.sign, crypto.CTX_DEVICE_CERT, message[28:], key.certificates[0])


def test_worked_example_private_file_opens_with_the_documented_password() -> None:
    documented = (EXAMPLES["private"] + "\n").encode("ascii")
    assert documented == (ROOT / "tests/data/keys/example.private").read_bytes()
    private = keys.parse_private(documented)
    assert private.fingerprint == EXAMPLES["fingerprint"]
    assert private.device_id == EXAMPLES["device_id"]
    assert private.transports[0].secret == bytes.fromhex(EXAMPLES["transport_secret"])
    assert private.open_seed(EXAMPLES["password"]) == bytes.fromhex(EXAMPLES["seed"])
    assert set(json.loads(documented)) == {"format", "fingerprint", "kdf", "sealed_seed",
                                           "device", "transport"}
    kdf = json.loads(documented)["kdf"]
    assert (kdf["opslimit"], kdf["memlimit"]) == (3, 268435456)   # the documented floor


@pytest.mark.parametrize("phrase", ["0600", "256 MiB", "MODERATE", "argon2id13", "SHA-256",
                                    "Authorization: Bearer", "Host", "Origin", "413",
                                    "DIWAN_INSECURE_KDF", "12 to", "transport_grace_seconds",
                                    "MUST NOT offer a way to sign"])
def test_section_states_the_rules(phrase: str) -> None:
    assert phrase in _section("keys")
