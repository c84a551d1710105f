"""Posts layer: the post codec and attribute registry, media types, authoring, ingest,
the index (schema, listings, repair), the timeline queries and display names.

May import ``app.core.base`` and ``app.core.identity``; never ``network`` or ``upkeep``.
"""
