"""Diwan's protocol and storage core: plain Python over bytes and paths, no Flask."""
