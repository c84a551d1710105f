"""Identity layer: key documents (``.pub`` with device certificates, sealed private key
files), own identities, transport-key rotation, others' keys, groups and the blocked list,
petnames and the names people type, identities unlocked for a web session.

May import ``app.core.base`` only.
"""
