"""Ingesting a stream of batches with the next batch's checks under way.

:meth:`app.core.posts.ingest.Ingestor.ingest_many` makes one batch durable: its
signatures are checked (and its files written, unnamed) by helper processes, then this
process checks each post in order, flushes the data once, has the helpers name the
files, flushes the names and indexes the batch. Alone, the helpers wait while this
process flushes and indexes, and this process waits for the helpers' first answers.
:func:`ingest_batches` overlaps them: once a batch is verified and its data flushed, the
next batch is split, parsed and sent to the helpers (:meth:`Ingestor.check_ahead`), so
they check it while this batch is named and indexed. A sync does the same with the page
it fetched ahead (:mod:`app.core.network.follow`).

The promise of each batch does not change: a result is yielded only when its batch's
accepted posts and index rows are durable. What is held ahead is bounded: one batch
(its split posts here, its unnamed files in the helpers, which vanish if this process
dies or the batch is never ingested).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from .ingest import BatchResult, Ingestor
from .signatures import Ahead


def ingest_batches(ingestor: Ingestor, batches: Iterable[Sequence[bytes]], *,
                   author: str | None = None) -> Iterator[BatchResult]:
    """:meth:`Ingestor.ingest_many` of each of ``batches`` in turn (``author`` as there),
    each result yielded once its batch is durable and indexed, the next batch's checks
    started while this one is stored; takes at most one batch from ``batches`` ahead.
    Raises as :meth:`Ingestor.ingest_many`."""
    todo = iter(batches)
    raws, ahead = next(todo, None), None
    try:
        while raws is not None:
            coming = next(todo, None)
            started: list[Ahead] = []

            def then(coming: Sequence[bytes] | None = coming,
                     started: list[Ahead] = started) -> None:
                if coming:
                    started.append(ingestor.check_ahead(coming, author=author))
            result = ingestor.ingest_many(raws, author=author, ahead=ahead, then=then)
            raws, ahead = coming, (started[0] if started else None)
            yield result
    finally:
        if ahead is not None:
            ahead.close()
