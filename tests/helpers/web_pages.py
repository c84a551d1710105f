"""A signed-in browser (Flask test client) on a node holding others' posts, for page tests.

- :class:`PageNode`: the node (an own identity, ``me``) with :class:`PostKit` strangers
  whose posts arrive through the real ingest; ``client`` is signed in with a login code.
- :func:`csrf`: the CSRF token of a page's forms; :data:`HTML`: a browser's ``Accept``.
- :data:`HOSTILE`: text that would run script, reorder the page or link to script if a
  page ever rendered it as HTML; :func:`assert_inert` checks a page for it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from app import create_admin_app
from app.core.base.websessions import issue_login_code
from app.core.identity.identities import Identities
from app.core.posts.authoring import Draft, publish
from app.core.posts.codec import Post
from tests.helpers.datadirs import PASSWORD
from tests.helpers.post_kit import PostKit

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
HOSTILE = ('<script>alert(1)</script><img src=x onerror="alert(2)">'
           '<a href="javascript:alert(3)">x</a><svg onload=alert(4)>\u202eevil\u2066')


def csrf(client: FlaskClient, path: str = "/me") -> str:
    """The CSRF token in the forms of ``path``."""
    match = CSRF_RE.search(client.get(path).get_data(as_text=True))
    assert match, path
    return match[1]


def assert_inert(html: str) -> None:
    """Nothing of :data:`HOSTILE` became markup, and user text is bidi-isolated."""
    for bad in ("<script>alert", "<img src=x", "<svg", 'href="javascript:', "onerror=\"alert",
                "<a href=\"javascript"):
        assert bad not in html, bad
    assert "<bdi" in html


class PageNode:
    """A node with an own identity ``me`` and a signed-in ``client``; ``kit`` makes others."""

    def __init__(self, root: Path, **settings: Any) -> None:
        self.kit = PostKit(root, **settings)
        self.dd = self.kit.dd
        self.app = create_admin_app({"data_dir": str(root), "reconcile_interval_ms": 0,
                                     **settings})
        self.client = self.app.test_client()
        self.me = Identities(self.dd).create(PASSWORD)
        code = issue_login_code(self.dd)
        assert self.client.get(f"/login?code={code}").status_code == 302

    def stranger(self, n: int) -> str:
        """Someone else's key, known to the node (their ``.pub`` is stored)."""
        return self.kit.author(n)

    def post_as(self, fp: str, created: int, **attrs: Any) -> Post:
        """A post by a stranger, arrived through the real ingest."""
        return self.kit.post(fp, created, **attrs)

    def my_post(self, text: str, **kw: Any) -> str:
        """SHA-1 of a post by ``me``."""
        return publish(self.dd, self.me, PASSWORD, Draft(text=text, **kw)).sha1

    def form(self, path: str, data: dict[str, Any], page: str = "/me") -> Any:
        """POST a form with a valid CSRF token (from ``page``), as a browser."""
        return self.client.post(path, data={**data, "csrf_token": csrf(self.client, page)},
                                headers=HTML)

    def page(self, path: str, status: int = 200) -> str:
        """GET a page as a browser, checking its status; its HTML."""
        r = self.client.get(path, headers=HTML)
        assert r.status_code == status, (path, r.status_code, r.get_data(as_text=True)[:400])
        return r.get_data(as_text=True)
