"""Diwan's protocol and storage core: plain Python over bytes and paths, no Flask.

Packages in layers, each importing only those below it::

    upkeep    the daily key clean-up
    network   exchange, feeds served, peer client, key lookup, contacts, sync
    posts     codec, attributes, authoring, ingest, index, timeline
    identity  key documents, own identities, others' keys, groups
    base      errors, config, encoding, names, files, data directory, crypto
"""
