"""The values the feed exchange passes around: its requests, responses and own keys.

Split from :mod:`app.core.network.exchange`, which builds and opens them
(``docs/protocol.md``, "The feed exchange"); import them from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..base import noise


@dataclass(frozen=True)
class OwnKeys:
    """What the asker needs of its own identity: no password, the seed stays sealed."""

    fp: str
    pub_document: bytes
    transport_secret: bytes = field(repr=False)


@dataclass
class OpenedRequest:
    """Message 1 opened: the Noise-authenticated static key of the asker, the ``.pub``
    it claims and its request JSON, not yet checked (pins, JSON, time, replay)."""

    owner_fp: str
    asker_static: bytes
    pub_document: bytes
    request_json: bytes
    handshake: noise.HandshakeState = field(repr=False)


@dataclass(frozen=True)
class FeedRequest:
    """The checked fields of a request's JSON (``limit`` lowered to the node's): the
    position asked after (``epoch`` None: none held), ``summary``: prefixes only."""

    owner_fp: str
    epoch: int | None
    after: int
    summary: bool
    limit: int
    nonce: bytes
    time: int
    keys: tuple[str, ...] = ()
    reach: tuple[str, ...] | None = None  # None: the asker did not send "reach" (older node)
    invite: bytes | None = field(default=None, repr=False)
    reply: str | None = None


@dataclass
class PendingRequest:
    """What the asker keeps until the response arrives (then drops, with its ephemeral key)."""

    owner_fp: str
    limit: int
    time: int
    handshake: noise.HandshakeState = field(repr=False)
    keys: tuple[str, ...] = ()
    reach: tuple[str, ...] | None = None  # what the request told the owner (None: nothing)
    after: int = 0
    summary: bool = False


@dataclass(frozen=True)
class FeedResponse:
    """An opened response: the posts (raw files, in the owner's order) and ``positions``,
    ``more``, the owner's .pub, others' ``.pub`` documents (unverified), the owner's
    nodes' checked ``addresses``, its ``epoch``, the ``summary`` (position, prefix) pairs."""

    posts: list[bytes]
    more: bool
    owner_pub: bytes
    keys: list[bytes] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    epoch: int = 0
    positions: list[int] = field(default_factory=list)
    summary: list[tuple[int, bytes]] = field(default_factory=list)
