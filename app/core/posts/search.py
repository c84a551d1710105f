"""Local full-text search over the posts this node holds (SQLite FTS5 inside the index).

The index fills table ``posts_fts`` as it indexes each post
(:mod:`app.core.posts.searchtext`), so a rebuild fills it too; a trigger empties a
post's row whenever the post leaves the index (:mod:`app.core.posts.indexschema`).

A query is what a person types: it is never handed to FTS5's query language. Each
whitespace-separated term becomes a quoted FTS5 string (quotes doubled), all terms must
match, and a term ending in ``*`` matches as a prefix; so no input can be an FTS5
syntax error. Results follow the timeline's visibility: blocked and hidden (muted)
authors are left out.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from ..base.errors import BadInput
from ..base.strictjson import MAX_SAFE_INTEGER
from .index import Index
from .listing import COLUMNS, Entry


def fts_query(text: str, *, max_chars: int, max_terms: int) -> str | None:
    """The FTS5 query for what a person typed: every term quoted, all required, a
    trailing ``*`` kept as a prefix match; None if nothing is left to search for.

    Raises :class:`BadInput` (field ``q``) for more than ``max_chars`` characters or
    ``max_terms`` terms.
    """
    if len(text) > max_chars:
        raise BadInput(f"a search is at most {max_chars} characters", field="q")
    terms = []
    for word in text.split():
        prefix = word.endswith("*")
        word = word.rstrip("*").replace("\x00", "")
        if word:
            terms.append('"' + word.replace('"', '""') + '"' + ("*" if prefix else ""))
    if len(terms) > max_terms:
        raise BadInput(f"a search has at most {max_terms} words", field="q")
    return " ".join(terms) or None


@dataclass(frozen=True)
class Found:
    """One page of search results, newest first, and ``before``: what continues with
    the next (older) page, None on the last one."""

    items: list[Entry]
    before: int | None


def search(index: Index, text: str, *, limit: int, hide: Iterable[str] = (),
           before: int | None = None) -> Found:
    """The ``limit`` matches of ``text`` (see :func:`fts_query`) this node indexed last
    (before ``before``, from the previous page), newest first; blocked authors and those
    in ``hide`` (fingerprints) are left out.

    Raises :class:`BadInput` for a query over the ``web_search_max_chars`` or
    ``web_search_max_terms`` settings, a bad ``limit`` or ``before``. A query FTS5 still
    refuses (it should not happen: every term is quoted) finds nothing rather than failing.
    """
    index.check_limit(limit)
    if before is not None and (isinstance(before, bool) or not isinstance(before, int)
                               or not 0 < before <= MAX_SAFE_INTEGER):
        raise BadInput("before is not a position this node gave out", field="before")
    settings = index.dd.settings
    query = fts_query(text, max_chars=settings["web_search_max_chars"],
                      max_terms=settings["web_search_max_terms"])
    if query is None:
        return Found([], None)
    index.maybe_reconcile()
    left_out = {*index.blocked(), *hide}
    ids = [i for i in (index.fp_id(fp) for fp in sorted(left_out)) if i is not None]
    not_in = f" AND p.author NOT IN ({','.join('?' * len(ids))})" if ids else ""
    # FTS5 walks its matches in rowid order, so the latest held come first without
    # sorting every match (a common word matches most posts); then newest first.
    sql = (f"SELECT {COLUMNS} FROM posts_fts f JOIN posts p ON p.id = f.rowid"
           f" WHERE posts_fts MATCH ? AND f.rowid < ?{not_in} ORDER BY f.rowid DESC LIMIT ?")
    try:
        rows = index.conn().execute(
            sql, (query, MAX_SAFE_INTEGER if before is None else before, *ids, limit + 1)
        ).fetchall()
    except sqlite3.OperationalError as exc:
        if "fts5" in str(exc) or "syntax" in str(exc):
            return Found([], None)
        raise
    more = int(rows[limit - 1][2]) if len(rows) > limit else None
    entries = sorted((index.entry(r) for r in rows[:limit]), key=lambda e: (e.created, e.sha1),
                     reverse=True)
    return Found(index.present(entries), more)
