"""Network layer: the encrypted feed exchange, replay nonces, serving feeds, the peer HTTP
client, key lookup, key-server mode, contacts and sync.

May import ``app.core.base``, ``app.core.identity`` and ``app.core.posts``; never
``upkeep``.
"""
