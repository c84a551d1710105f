"""Ingesting a stream of batches: the next batch's checks under way, one flush a batch.

:meth:`app.core.posts.ingest.Ingestor.ingest_many` makes one batch durable: its
signatures are checked (and its files written, unnamed) by helper processes, then this
process checks each post in order, flushes the data, has the helpers name the files,
indexes the batch and flushes names and rows: two flushes a batch, and the helpers wait
while this process flushes and indexes. :func:`ingest_batches` overlaps the batches and
commits them in a group:

- once a batch is verified, one ``syncfs`` (on a thread) flushes its data *and* the
  previous batch's names and index rows, whose result is then reported;
- during that flush the next batch is split and parsed here, its checks sent to the
  helpers with their file writes held back (:func:`app.core.base.verifyprocs.holding`),
  then this batch's index rows are inserted; the flushing thread asks the helpers to
  name this batch's files the moment the flush is over, then they are asked to write
  the next batch's, and the rows' COMMIT waits for the names (no row is visible before
  its file). Whether a helper wrote a file is read only when its batch is stored
  (:attr:`.ingestresults.Checked.held`): checking the next batch does not wait for it.

So each batch costs one flush, taken while this process prepares the next batch and
indexes this one, and its result waits for the next batch's flush (or a last one at
the end). A batch that cannot be deferred (a post no helper holds, a deletion or edit
record, an index on another file system) is stored whole, as
:meth:`~.ingest.Ingestor.ingest_many` does, after the last deferred batch is flushed.
A sync commits its pages the same way, one page checked ahead
(:mod:`app.core.network.follow`).

The promise of each batch does not change: a result is yielded only when its batch's
accepted posts and index rows are durable (:func:`app.core.posts.storebatch.
store_names_unflushed`). What is held ahead is bounded: one batch (its split posts
here, its unnamed files in the helpers, which vanish if this process dies or the batch
is never ingested), and one stored batch's result.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from .ingest import Ingestor
from .ingestresults import BatchResult
from .signatures import Ahead


def ingest_batches(ingestor: Ingestor, batches: Iterable[Sequence[bytes]], *,
                   author: str | None = None) -> Iterator[BatchResult]:
    """:meth:`Ingestor.ingest_many` of each of ``batches`` in turn (``author`` as there),
    each result yielded, in order, once its batch is durable and indexed (see above);
    takes at most one batch from ``batches`` ahead. Raises as
    :meth:`Ingestor.ingest_many`; results not yielded when it raises are of batches
    whose posts may be stored (a later ingest finds them), never of half-written files."""
    todo = iter(batches)
    raws, ahead = next(todo, None), None
    pending: BatchResult | None = None  # stored, its names and rows not flushed yet
    started: list[Ahead] = []
    try:
        while raws is not None:
            coming, started = next(todo, None), []

            def then(coming: Sequence[bytes] | None = coming,
                     started: list[Ahead] = started) -> None:
                if coming:
                    started.append(ingestor.check_ahead(coming, author=author))
            checked = ingestor.check_batch(raws, author=author, ahead=ahead)
            ahead = None
            deferred = ingestor.store_deferred(checked, then)
            whole = None
            if deferred is None:  # stored whole, once the last deferred batch is flushed
                if pending is not None:
                    try:
                        ingestor.flush()
                    except BaseException:
                        checked.close()  # files written ahead and not named just vanish
                        raise
                whole = ingestor.store_checked(checked, then)
            raws, ahead = coming, (started.pop() if started else None)
            if pending is not None:
                yield pending  # flushed by this batch's first syncfs, or just above
            pending = deferred
            if whole is not None:
                yield whole
        if pending is not None:
            ingestor.flush()
            yield pending
    finally:
        for unused in [*started, *([ahead] if ahead is not None else [])]:
            unused.close()
