"""Marshmallow schemas shared by the admin API, the peer API and the CLI: input validation and
list shapes.

May import ``app.core``; never Flask or a front end (admin, peer, cli, web).
"""
