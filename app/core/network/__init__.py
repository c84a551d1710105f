"""Network layer: the Noise feed exchange (key slots, pages, budgets, nonces), serving
feeds, the peer HTTP client, key lookup, key-server mode, contacts and their views, sync
rounds and status, the addresses friends can use.

May import ``app.core.base``, ``app.core.identity`` and ``app.core.posts``; never ``upkeep``.
"""
