"""Headless Chromium for the browser tests and ``make screenshots``: Playwright for Python
driving the distribution's Chromium (``/usr/bin/chromium``; ``playwright install``'s
download is never used), plus axe-core for the accessibility check.

axe-core is not part of the app and is never served to users: ``make axe`` (run by
``.ci/run``) installs the pinned npm package into ``.cache/axe``, and the tests inject
it into a page with ``page.evaluate``. ``AXE_JS`` may name another copy.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
AXE_VERSION = "4.14.1"
AXE_JS = Path(os.environ.get("AXE_JS") or REPO / ".cache/axe/node_modules/axe-core/axe.min.js")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run"]
SERIOUS = ("serious", "critical")


def missing() -> str | None:
    """What the browser tests lack here, said as how to install it; None if nothing."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python (pip install -e '.[test]')"
    if CHROMIUM is None:
        return "Chromium (apt-get install -y chromium)"
    if not AXE_JS.is_file():
        return f"axe-core {AXE_VERSION} (make axe: npm install into .cache/axe)"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright ``Browser``), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """The serious and critical axe-core violations on ``page`` (WCAG 2 A/AA and best
    practices), each as ``{"id", "impact", "help", "targets"}``."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.map(n => n.target.join(' '))}));
    }""")
    return [v for v in result if v["impact"] in SERIOUS]
