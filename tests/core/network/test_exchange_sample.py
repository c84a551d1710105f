"""The sample exchange of docs/protocol.md: the code makes exactly its bytes (v2)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from app.core.base import noise
from app.core.network import exchange

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data" / "exchange"


def _vectors_module() -> Any:
    spec = importlib.util.spec_from_file_location("make_vectors", DATA / "make_vectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SAMPLE = json.loads((DATA / "sample.json").read_text("utf-8"))


def test_the_code_makes_the_sample_bytes() -> None:
    made = _vectors_module().make()
    assert made == SAMPLE


def test_the_sample_request_opens_and_its_response_opens() -> None:
    request = bytes.fromhex(SAMPLE["request"])
    slots = [noise.generate_keypair(),
             noise.keypair_from_secret(bytes.fromhex(SAMPLE["owner_transport_secret"]))]
    opened = exchange.open_request(request, owner_fp=SAMPLE["owner_fp"], slots=slots)
    assert opened.request_json.decode() == SAMPLE["request_json"]
    assert opened.pub_document.decode() == SAMPLE["asker_pub"]
    assert len(request) == exchange.REQUEST_BYTES
    assert len(bytes.fromhex(SAMPLE["response"])) == 1024


def test_protocol_doc_shows_the_sample_and_the_constants() -> None:
    doc = (ROOT / "docs" / "protocol.md").read_text("utf-8")
    assert _vectors_module().listing(SAMPLE) in doc
    for constant in (f"{exchange.REQUEST_BYTES:,}", f"{exchange.PAYLOAD_BYTES:,}",
                     '"diwan/v2/feed-exchange" 0x00 "POST /feeds/" <FP>',
                     "The feed request could not be authenticated."):
        assert constant in doc, constant
    assert len(exchange.prologue("0" * 64)) == 99 and "the 99 ASCII bytes" in doc
