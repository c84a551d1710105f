"""Sync now: a form post starts a sync of every contact (or one) in a background thread of
this worker, and the status page, which reloads itself while the run goes on, shows each
contact waiting, running or done (:mod:`app.core.network.syncrun`)."""

from __future__ import annotations

import threading

from flask import redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ..core.identity.petnames import resolve
from ..core.network.contacts import Contacts
from ..core.network.syncrun import SyncRuns, progress
from ..core.posts.display import DisplayNames
from .auth import dd
from .present import relative
from .site import blp

REFRESH_SECONDS = 2


@blp.post("/people/sync")
def sync_now() -> ResponseReturnValue:
    """Start syncing every contact (``fingerprint``: that one only), unless a run is on."""
    fp = request.form.get("fingerprint", "").strip()
    only = [Contacts(dd()).get(resolve(dd(), fp)).fingerprint] if fp else None  # 404: none
    runs = SyncRuns(dd())
    if runs.start(only):
        threading.Thread(target=runs.run, name="diwan-sync-now", daemon=True).start()
    return redirect(url_for("pages.sync_status"), code=303)


@blp.get("/people/sync")
def sync_status() -> ResponseReturnValue:
    """The last sync the owner started, contact by contact; reloads while it runs."""
    shown = progress(dd())
    names_ = DisplayNames(dd())
    for row in shown["contacts"]:
        row["name"] = names_(row["fingerprint"])
    started = shown["started"]
    return render_template("sync.html", run=shown, refresh=REFRESH_SECONDS if shown["active"]
                           else None, started_ago=relative(int(started)) if started else None)
