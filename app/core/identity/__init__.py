"""Identity layer: key documents (``.pub``, sealed private keys), own identities, others' keys,
groups and the blocked list.

May import ``app.core.base`` only.
"""
