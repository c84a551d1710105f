"""Base layer: errors, settings, encodings, name patterns, atomic files, state files, the data
directory, the crypto wrapper and the Noise handshake built on it.

May import only the standard library, PyNaCl (in ``crypto`` alone) and other base modules;
never a package above it.
"""
