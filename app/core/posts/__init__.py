"""Posts layer: the post codec and attribute registry, media types, authoring, verification,
ingest, the index, its repair and the timeline queries.

May import ``app.core.base`` and ``app.core.identity``; never ``network`` or ``upkeep``.
"""
