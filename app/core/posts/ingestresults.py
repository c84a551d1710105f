"""What ingest hands back, and a batch between its two halves.

:class:`IngestResult` and :class:`BatchResult` are what
:class:`app.core.posts.ingest.Ingestor` returns. :class:`Checked` is a batch after
:meth:`~app.core.posts.ingest.Ingestor.check_batch` (every post verified and screened,
nothing stored) and before :meth:`~app.core.posts.ingest.Ingestor.store_checked` or the
group commit's :meth:`~app.core.posts.ingest.Ingestor.store_deferred`
(:mod:`app.core.posts.pipeline`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .attributes import Context
from .codec import Post
from .signatures import Answers, release, written
from .storebatch import Held


@dataclass(frozen=True)
class IngestResult:
    """One accepted post: its ``sha1`` (40 hex), ``author`` (64 hex), ``created`` (unix
    seconds), whether it is ``new`` here, and the verified :class:`Post`."""

    sha1: str
    author: str
    created: int
    new: bool  # False when the post was already stored (a no-op)
    post: Post


@dataclass
class BatchResult:
    """What :meth:`Ingestor.ingest_many` did: the ``accepted`` posts in input order, and the
    ``rejected`` ones as ``(position in the input, Reason code)``."""

    accepted: list[IngestResult] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (position, reason)
    refused: list[int] = field(default_factory=list)  # positions of SHA-1s deleted here

    def accept(self, posts: list[Post], written: set[str]) -> None:
        """Report ``posts`` accepted, ``new`` for those ``written`` (the first of repeats)."""
        seen: set[str] = set()
        for post in posts:
            new = post.sha1 in written and post.sha1 not in seen
            seen.add(post.sha1)
            self.accepted.append(IngestResult(post.sha1, post.author, post.created, new, post))


@dataclass
class Session:
    """State of one ingest call: the time, blocked answers, keys to touch afterwards."""

    now: int
    blocked: dict[str, bool] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)  # keys used by the post being verified
    used: set[str] = field(default_factory=set)     # keys used by accepted posts
    contexts: dict[tuple[int, bool], Context] = field(default_factory=dict)


@dataclass
class Checked:
    """A batch verified and screened, not stored yet: its ingest call's ``session``, the
    ``result`` so far (rejections), the accepted ``posts`` in input order, the posts
    whose file a helper may hold (``files``: SHA-1, request and place in it, in input
    order; the split posts themselves are not kept) and the helper requests ``sent``
    (:meth:`close` releases them: files not named by then vanish)."""

    session: Session
    result: BatchResult
    posts: list[Post]
    files: list[tuple[str, Answers, int]]
    sent: list[Answers]
    _held: Held | None = field(default=None, repr=False)

    @property
    def held(self) -> Held:
        """The posts whose file a helper holds: SHA-1 -> (request, place in it). Read when
        the batch is stored, not while it is checked: a helper writes the files after the
        checks (:func:`app.core.base.verifyprocs.holding`), and checking the batch need
        not wait for that. Waits for the helpers' answers; whoever reads it first
        :meth:`close`-s the batch if that raises."""
        if self._held is None:
            held: Held = {}
            for sha1, answers, offset in self.files:
                if sha1 not in held and written(answers, offset):
                    held[sha1] = (answers, offset)
            self._held = held
        return self._held

    def close(self) -> None:
        """Drop every file the helpers still hold for this batch (none becomes visible)."""
        release(self.sent)
        self.sent = []
