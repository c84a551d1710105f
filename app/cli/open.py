"""``diwan open``: a one-time sign-in link to the node's web pages (like Jupyter's token URL).

The link carries a short-lived code (``web_login_code_ttl`` seconds, usable once,
:mod:`app.core.base.websessions`); visiting it signs the browser in and the page
drops the code from the address bar.
"""

from __future__ import annotations

import webbrowser

import click

from ..core.base import runstate
from ..core.base.datadir import DataDir
from ..core.base.websessions import issue_login_code
from ..core.network.addresses import page_url
from .base import Cli, main, pass_cli


def login_url(dd: DataDir, page: str | None = None) -> str:
    """A fresh one-time sign-in URL for the pages of ``dd``'s node (at ``page``, its pages'
    URL, when the caller has it already)."""
    page = page or page_url(runstate.effective_settings(dd))
    return f"{page}login?code={issue_login_code(dd)}"


@main.command("open")
@click.option("--browser/--no-browser", default=False,
              help="also open the link in this machine's web browser")
@pass_cli
def open_pages(cli: Cli, browser: bool) -> None:
    """Print a one-time link that signs a browser in to the node's pages.

    The link works once, for web_login_code_ttl seconds (see diwan.toml).
    """
    dd = cli.datadir()
    page = page_url(runstate.effective_settings(dd))
    link = login_url(dd, page)
    ttl = dd.settings["web_login_code_ttl"]
    running = runstate.running(dd, "admin") is not None
    note = [] if running else [f"Note: no node runs in {dd.root} now, so the link leads "
                               "nowhere until you start it (diwan up, or make run)."]
    cli.emit({"url": link, "page": page, "expires_in": ttl, "running": running},
             [f"Open this link within {ttl} s to sign in (it works once):", link, *note])
    if browser:
        webbrowser.open(link)
