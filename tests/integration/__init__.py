"""Integration tests: real gunicorn and scheduler processes on 127.0.0.1 (see harness.py)."""
