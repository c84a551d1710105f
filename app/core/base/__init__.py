"""Base layer: errors, settings, encodings, name patterns, strict JSON, atomic files, state
files, the data directory and its permissions, disk space, logging, pid files and the node
lock, web sessions, the crypto wrapper and the Noise handshake built on it.

May import only the standard library, PyNaCl (in ``crypto`` alone), well-kept libraries
(psutil, python-json-logger) and other base modules; never a package above it.
"""
