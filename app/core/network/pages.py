"""The feed exchange's response body (v2): sizes, buckets, records, the streamed writer (pure).

Normative in ``docs/protocol.md`` ("The response")::

    body   = u16 len || message 2 || (u16 len || transport message)*
    stream = [0x03 || u32 n || addresses JSON] 0x04 || u32 8 || u64 epoch
             (0x02 || u32 n || .pub)*
             ((0x01 || u32 n || u64 position || post file)* | 0x05 || u32 n || summary)
             0x00 || more || 0x00*
    summary = (u64 position || first 8 bytes of the post's SHA-1)*

The body's length is its size bucket: the least power of two that holds it and
is at least 1 KiB, at most ``max_response_bytes``. The padding is the stream's
trailing zeros, inside the encryption.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from ..base import noise
from ..base.errors import BadResponse

TAG = noise.TAGLEN
MAX_MESSAGE = noise.MAX_MESSAGE_BYTES
MAX_CHUNK = MAX_MESSAGE - TAG      # plaintext bytes in one transport message
FRAMED = 2 + MAX_MESSAGE           # one transport message with its length prefix, at most
MIN_BUCKET = 1024
POST_RECORD, END_RECORD, KEY_RECORD, ADDRESS_RECORD = 0x01, 0x00, 0x02, 0x03
EPOCH_RECORD, SUMMARY_RECORD = 0x04, 0x05
HEAD = 5                           # type || u32 length
RECORD_HEAD = HEAD + 8             # a post record's bytes before the file: 0x01 || u32 || u64
END_BYTES = 2                      # 0x00 || more
EPOCH_BYTES = HEAD + 8             # the epoch record
ENTRY_BYTES = 16                   # a summary entry: u64 position || 8 bytes of SHA-1


def message_spans(body: bytes) -> list[tuple[int, int]]:
    """(start, end) of each Noise message of a response body (each u16-length-prefixed),
    without copying them; :class:`BadResponse` if the framing is wrong."""
    out, pos = [], 0
    while pos < len(body):
        if pos + 2 > len(body):
            raise BadResponse("the response ends inside a length prefix")
        size = int.from_bytes(body[pos:pos + 2], "big")
        if size < TAG or pos + 2 + size > len(body):
            raise BadResponse("the response has a message of a wrong length")
        out.append((pos + 2, pos + 2 + size))
        pos += 2 + size
    if len(out) < 2:
        raise BadResponse("the response holds no page")
    return out


def split_messages(body: bytes) -> list[bytes]:
    """The Noise messages of a response body (copies; :func:`message_spans`)."""
    return [body[a:b] for a, b in message_spans(body)]


@dataclass
class Stream:
    """A parsed page stream: the owner's ``epoch``, the ``posts`` as (position, file)
    pairs, the ``summary`` as (position, SHA-1 prefix) pairs, ``more``, the ``.pub``
    documents of others (``keys``) and the address records (zero or one, raw JSON)."""

    epoch: int
    more: bool
    posts: list[tuple[int, bytes]] = field(default_factory=list)
    summary: list[tuple[int, bytes]] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)
    addresses: list[bytes] = field(default_factory=list)


def parse_stream(stream: bytes) -> Stream:
    """The records of a page stream; :class:`BadResponse` if malformed: an optional
    address record first, then the epoch record, then key records, then post records or
    one summary record, then the end record; positions increasing."""
    records: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(stream) and stream[pos] in (POST_RECORD, KEY_RECORD, EPOCH_RECORD,
                                                SUMMARY_RECORD, ADDRESS_RECORD):
        size = int.from_bytes(stream[pos + 1:pos + HEAD], "big")
        end = pos + HEAD + size
        if pos + HEAD > len(stream) or end > len(stream):
            raise BadResponse("a record runs past the end of the response")
        records.append((stream[pos], stream[pos + HEAD:end]))
        pos = end
    if pos + END_BYTES > len(stream) or stream[pos] != END_RECORD or stream[pos + 1] > 1:
        raise BadResponse("the response's page does not end with an end record")
    if stream.count(0, pos + END_BYTES) != len(stream) - pos - END_BYTES:  # C speed, no copy
        raise BadResponse("the response's padding is not zero")
    return _records_of(records, stream[pos + 1] == 1)


def _records_of(records: list[tuple[int, bytes]], more: bool) -> Stream:
    addresses = [body for kind, body in records[:1] if kind == ADDRESS_RECORD]
    records = records[len(addresses):]
    if any(kind == ADDRESS_RECORD for kind, _ in records):
        raise BadResponse("an address record that is not the first record")
    if not records or records[0][0] != EPOCH_RECORD or len(records[0][1]) != 8:
        raise BadResponse("the response's page does not start with its epoch record")
    out = Stream(int.from_bytes(records[0][1], "big"), more, addresses=addresses)
    order = {KEY_RECORD: 0, POST_RECORD: 1, SUMMARY_RECORD: 1}
    stage = 0
    for kind, body in records[1:]:
        if kind == EPOCH_RECORD or order[kind] < stage or (
                kind == SUMMARY_RECORD and (out.summary or out.posts)) or (
                kind == POST_RECORD and out.summary):
            raise BadResponse("the response's records are out of order")
        stage = order[kind]
        if kind == KEY_RECORD:
            out.keys.append(body)
        elif kind == POST_RECORD:
            if len(body) < 8:
                raise BadResponse("a post record too short for its position")
            out.posts.append((int.from_bytes(body[:8], "big"), body[8:]))
        else:
            if len(body) % ENTRY_BYTES:
                raise BadResponse("a summary record of a wrong length")
            out.summary = [(int.from_bytes(body[i:i + 8], "big"), body[i + 8:i + ENTRY_BYTES])
                           for i in range(0, len(body), ENTRY_BYTES)]
    positions = [p for p, _ in out.posts or out.summary]
    if any(b <= a for a, b in zip(positions, positions[1:], strict=False)):
        raise BadResponse("the response's positions do not increase")
    return out


def stream_bytes(post_sizes: Iterable[int]) -> int:
    """Plaintext bytes of a page stream carrying posts of these sizes (no padding)."""
    return sum(RECORD_HEAD + n for n in post_sizes) + END_BYTES


def body_bytes(head_len: int, stream_len: int) -> int:
    """Bytes of a response whose message 2 is ``head_len`` long and stream unpadded."""
    chunks = max(1, -(-stream_len // MAX_CHUNK))
    return 2 + head_len + stream_len + chunks * (2 + TAG)


def bucket(size: int, max_bytes: int) -> int:
    """The padded size: the least power of two >= ``size`` and >= 1 KiB, at most ``max_bytes``."""
    padded = max(MIN_BUCKET, 1 << (size - 1).bit_length())
    return max(size, min(padded, max_bytes))


def chunk_sizes(room: int) -> list[int]:
    """Plaintext sizes of transport messages filling exactly ``room`` framed bytes."""
    sizes = []
    while room > FRAMED:
        take = FRAMED if room - FRAMED >= 2 + TAG else room - (2 + TAG)
        sizes.append(take - 2 - TAG)
        room -= take
    if room < 2 + TAG:
        raise ValueError("no room for a transport message")
    sizes.append(room - 2 - TAG)
    return sizes


def fit_page(post_sizes: Sequence[int], head_len: int, max_bytes: int, fixed: int = 0
             ) -> tuple[int, bool]:
    """How many of the posts fit one response of at most ``max_bytes``: (count, cut).

    ``fixed``: stream bytes before the posts (key records). The first post is always
    kept, so a page is never empty while posts remain (a node must allow
    ``max_response_bytes`` above ``max_post_bytes`` plus overhead).
    """
    total = END_BYTES + fixed
    if body_bytes(head_len, total + RECORD_HEAD * len(post_sizes) + sum(post_sizes)) \
            <= max_bytes:  # the usual case: the whole page fits (sizes only grow the body)
        return len(post_sizes), False
    for i, n in enumerate(post_sizes):
        total += RECORD_HEAD + n
        if i and body_bytes(head_len, total) > max_bytes:
            return i, True
    return len(post_sizes), False


class PageWriter:
    """Writes the response after message 1 was read, in pieces, never holding it all.

    ``size`` is the whole body's length (the padded bucket), known before the first
    piece. The page's plaintext comes from ``records`` (:func:`post_record`); it is
    sealed in transport messages of at most 65,535 bytes as it arrives.
    """

    def __init__(self, handshake: noise.HandshakeState, owner_pub: bytes,
                 post_sizes: Sequence[int], max_bytes: int, fixed: int = 0) -> None:
        head = handshake.write_message(owner_pub)
        self.head = len(head).to_bytes(2, "big") + head
        _, self.send = handshake.split()
        needed = body_bytes(len(head), stream_bytes(post_sizes) + fixed)
        self.size = bucket(needed, max_bytes)
        self.chunks = chunk_sizes(self.size - len(self.head))

    def pieces(self, records: Iterable[bytes], more: bool) -> Iterator[bytes]:
        """The body: message 2, then the page stream cut into transport messages.

        A record that would not fit the planned size is left out (the sizes were
        planned from ``stat``; a file may have changed since).
        """
        yield self.head
        sizes, i = self.chunks, 0
        room = sum(sizes) - END_BYTES
        if len(sizes) == 1:  # the usual page: one transport message, sealed at once
            parts = []
            for record in records:
                if len(record) <= room:
                    room -= len(record)
                    parts.append(record)
            parts.append(bytes((END_RECORD, 1 if more else 0)))
            parts.append(bytes(room))
            yield self._seal(b"".join(parts))
            return
        buf, pos = bytearray(), 0
        for record in records:
            if len(record) > room:
                continue
            room -= len(record)
            buf += record
            while i < len(sizes) - 1 and len(buf) - pos >= sizes[i]:
                yield self._seal(buf[pos:pos + sizes[i]])
                pos, i = pos + sizes[i], i + 1
            if pos >= MAX_CHUNK:
                del buf[:pos]
                pos = 0
        buf += bytes([END_RECORD, 1 if more else 0])
        for size in sizes[i:]:
            piece = buf[pos:pos + size]
            pos += size
            yield self._seal(piece + bytes(size - len(piece)))

    def _seal(self, piece: bytes | bytearray) -> bytes:
        sealed = self.send.encrypt_with_ad(b"", bytes(piece))
        return len(sealed).to_bytes(2, "big") + sealed


_POST_HEAD = struct.Struct(">BIQ")  # type, record length, position


def post_record(post: bytes, position: int) -> bytes:
    """One post's record in the page stream, with its position in the owner's order."""
    return _POST_HEAD.pack(POST_RECORD, 8 + len(post), position) + post


def epoch_record(epoch: int) -> bytes:
    """The page stream's first record: the epoch of the owner's positions."""
    return bytes([EPOCH_RECORD]) + (8).to_bytes(4, "big") + epoch.to_bytes(8, "big")


def summary_record(entries: Sequence[tuple[int, bytes]]) -> bytes:
    """The summary record: each (position, 8-byte SHA-1 prefix) entry in 16 bytes."""
    body = b"".join(p.to_bytes(8, "big") + prefix for p, prefix in entries)
    return bytes([SUMMARY_RECORD]) + len(body).to_bytes(4, "big") + body


def address_record(document: bytes) -> bytes:
    """The address record (the first record, when asked for): a JSON array of addresses."""
    return bytes([ADDRESS_RECORD]) + len(document).to_bytes(4, "big") + document


def key_record(document: bytes) -> bytes:
    """One ``.pub`` document's record in the page stream (before the posts)."""
    return bytes([KEY_RECORD]) + len(document).to_bytes(4, "big") + document
