"""Web pages at 100,000 posts from 1,000 authors: server render time and the browser's load.

Generates (or reuses) ``bench/out/datadir-n100000-m1000-s1`` with ``gen_datadir``, then:

- server time, in this process through the Flask test client with a signed-in session
  (the whole request: session check, index query, post files, template), ``--queries``
  times each: the home page (newest page), a thread with replies, the search page if the
  app has one; baseline in the same run: the JSON API's newest page (``GET /posts``) of
  the same size, so the ratio shows what the HTML costs over the data;
- the browser: headless Chromium (Playwright, ``/usr/bin/chromium``) signed in to the
  same app served on a free loopback port by a threaded WSGI server in this process,
  loading the home page ``--loads`` times: ``loadEventEnd - startTime`` of the navigation
  (request, render, CSS, the keyboard script, images); baseline: the keyboard help page.

Targets (issue 12): home and thread < 50 ms median server time, search < 100 ms, home
load event < 500 ms. Nothing asserts them; the figures are printed.

    .venv/bin/python bench/bench_pages.py
    .venv/bin/python bench/bench_pages.py --posts 10000 --authors 100   # a quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import common  # noqa: E402
import gen_datadir  # noqa: E402
from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: E402

from app import create_admin_app  # noqa: E402
from app.core.base.websessions import issue_login_code  # noqa: E402
from app.core.posts.timeline import Timeline  # noqa: E402


def timed(fn: Callable[[], Any], queries: int) -> list[float]:
    fn()  # warm
    samples = []
    for _ in range(queries):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def get(client: Any, path: str, **kw: Any) -> Callable[[], None]:
    def run() -> None:
        r = client.get(path, **kw)
        if r.status_code != 200:
            raise SystemExit(f"{path}: {r.status_code}")
        r.close()
    return run


def busy_thread(root: Path) -> tuple[str, int]:
    """The stored post with the most direct replies (a thread worth rendering), and the
    number of posts its thread shows."""
    tl = Timeline(gen_datadir.DataDir(root))
    rows = tl.index.conn().execute(
        "SELECT r.parent FROM replies r JOIN posts p ON p.sha = r.parent "
        "GROUP BY r.parent ORDER BY count(*) DESC LIMIT 1").fetchall()
    sha = bytes(rows[0][0]).hex()
    return sha, sum(1 for _ in tl.replies(sha).walk())


class Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kw: Any) -> None:
        pass


def browser_loads(app: Any, root: Path, loads: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    port = server.server_port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    out: dict[str, list[float]] = {"/": [], "/keys": []}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"])
            page = browser.new_page()
            page.goto(f"{base}/login?code={issue_login_code(app.config['DIWAN'])}")
            for path in out:
                page.goto(base + path)  # warm
                for _ in range(loads):
                    page.goto(base + path, wait_until="load")
                    out[path].append(page.evaluate(
                        "() => { const n = performance.getEntriesByType('navigation')[0];"
                        " return n.loadEventEnd - n.startTime; }"))
            browser.close()
    finally:
        server.shutdown()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--authors", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--loads", type=int, default=20)
    args = ap.parse_args()
    root, made = gen_datadir.ensure(args.posts, args.authors)
    if made:
        print(f"generated {args.posts:,} posts in {made['total_s']:.0f} s")
    app = create_admin_app({"data_dir": str(root)})
    client = app.test_client()
    client.get(f"/login?code={issue_login_code(app.config['DIWAN'])}")
    token = (root / "admin.token").read_text().strip()
    size = app.config["DIWAN"].settings["page_size"]
    sha, replies = busy_thread(root)
    rows: list[list[Any]] = []
    base = statistics.median(timed(get(client, f"/posts?limit={size}", headers={
        "Authorization": f"Bearer {token}"}), args.queries))
    rows.append([f"JSON API newest {size} (baseline)", f"{base:.1f}", "", "1.00"])
    cases = [("home page (newest page)", "/", 50),
             (f"thread ({replies} replies)", f"/thread/{sha}", 50)]
    if "pages.search" in app.view_functions:
        cases.append(("search page", "/search?q=hello", 100))
    for name, path, target in cases:
        median = statistics.median(timed(get(client, path), args.queries))
        rows.append([name, f"{median:.1f}", f"< {target}", f"{median / base:.2f}"])
    if "pages.search" not in app.view_functions:
        rows.append(["search page", "not measured: no search page on this branch",
                     "< 100", ""])
    print(f"\n{common.machine()}, load average {os.getloadavg()[0]:.1f}\n"
          f"{args.posts:,} posts from {args.authors:,} authors; "
          f"page_size {size}; median of {args.queries} requests, in process\n")
    print(common.table(["server time", "median ms", "target", "ratio to baseline"], rows))
    loads = browser_loads(app, root, args.loads)
    home, keys = statistics.median(loads["/"]), statistics.median(loads["/keys"])
    print(f"\nheadless Chromium over loopback, median of {args.loads} loads\n")
    print(common.table(["load event", "median ms", "target", "ratio to baseline"], [
        ["keyboard help page (baseline)", f"{keys:.1f}", "", "1.00"],
        ["home page", f"{home:.1f}", "< 500", f"{home / keys:.2f}"]]))


if __name__ == "__main__":
    main()
