"""Base layer: errors, settings, encodings, name patterns, atomic files, state files, the data
directory and the crypto wrapper.

May import only the standard library, PyNaCl (in ``crypto`` alone) and other base modules;
never a package above it.
"""
