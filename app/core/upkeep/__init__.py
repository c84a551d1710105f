"""Upkeep layer: the daily clean-up of unused keys, which must see identities, stored posts and
contacts at once.

May import every core package below it (base, identity, posts, network).
"""
