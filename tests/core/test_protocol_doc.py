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
    assert set(EXAMPLES) == {"ctx_transport_cert", "seed", "transport_secret", "pub",
                             "fingerprint", "password", "private"}


def test_context_string_is_the_one_in_the_code() -> None:
    assert bytes.fromhex(EXAMPLES["ctx_transport_cert"]) == crypto.CTX_TRANSPORT_CERT
    assert "diwan/v1/transport-key-certificate" in _section("keys")


def test_worked_example_pub_is_what_the_code_makes_byte_for_byte() -> None:
    seed = bytes.fromhex(EXAMPLES["seed"])
    transport_secret = bytes.fromhex(EXAMPLES["transport_secret"])
    documented = (EXAMPLES["pub"] + "\n").encode("ascii")
    made = keys.certify(seed, crypto.transport_public(transport_secret)).to_bytes()
    assert made == documented
    assert len(documented) == 222
    assert documented == (ROOT / "tests/data/keys/example.pub").read_bytes()
    assert keys.parse_pub(documented, expected_fp=EXAMPLES["fingerprint"]).to_bytes() == made


def test_worked_example_fingerprint_is_sha256_of_the_raw_key() -> None:
    seed = bytes.fromhex(EXAMPLES["seed"])
    raw = crypto.signing_public(seed)
    assert EXAMPLES["fingerprint"] == hashlib.sha256(raw).hexdigest() == VECTORS["fingerprint"]


def test_worked_example_certificate_signs_the_documented_bytes() -> None:
    lines = EXAMPLES["pub"].split("\n")
    values = dict(line.split(" ", 1) for line in lines[1:])
    key = keys.parse_pub((EXAMPLES["pub"] + "\n").encode())
    message = bytes.fromhex(EXAMPLES["ctx_transport_cert"]) + key.sign + key.transport_public
    assert len(message) == 99
    assert crypto.verify(key.sign, message, key.certificate)
    assert set(values) == {"sign", "transport", "certificate"}


def test_worked_example_private_file_opens_with_the_documented_password() -> None:
    documented = (EXAMPLES["private"] + "\n").encode("ascii")
    assert documented == (ROOT / "tests/data/keys/example.private").read_bytes()
    private = keys.parse_private(documented)
    assert private.fingerprint == EXAMPLES["fingerprint"]
    assert private.transport_secret == bytes.fromhex(EXAMPLES["transport_secret"])
    assert private.open_seed(EXAMPLES["password"]) == bytes.fromhex(EXAMPLES["seed"])
    assert set(json.loads(documented)) == {"format", "fingerprint", "kdf", "sealed_seed",
                                           "transport_secret"}


@pytest.mark.parametrize("phrase", ["0600", "64 MiB", "argon2id13", "SHA-256",
                                    "Authorization: Bearer", "Host", "Origin", "413"])
def test_section_states_the_rules(phrase: str) -> None:
    assert phrase in _section("keys")
