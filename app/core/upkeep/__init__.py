"""Upkeep layer: the jobs that must see every layer at once: the daily clean-up of unused
keys and the node's self-check (``diwan doctor``).

May import every core package below it (base, identity, posts, network).
"""
