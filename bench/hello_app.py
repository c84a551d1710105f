"""A plain Flask hello-world app: the baseline ``bench_peer.py`` measures the feed endpoint against.

Run by ``bench_peer.py`` under gunicorn with the node's own ``gunicorn.conf.py``
(``DIWAN_ROLE=peer``, the same gthread workers, threads, keep-alive and access
log), so the only difference from the node's peer app is the application.

- ``GET /``               "Hello, World!" (the classic hello world)
- ``POST /feeds/<fp>``    reads the body and answers a few bytes: the same request
                          as a feed request, with nothing done for it
- ``GET /health``         for the bench to see that it is up (and that it is this app)
"""

from __future__ import annotations

from flask import Flask, Response, request

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "Hello, World!"


@app.post("/feeds/<fp>")
def feed(fp: str) -> Response:
    body = request.get_data(cache=False)
    return Response(b"hello %d" % len(body), mimetype="application/octet-stream")


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok", "app": "hello"}
