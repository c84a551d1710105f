"""Birthdays and the address book, from the profiles this node holds."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue

from ..core.posts.timeline import Timeline
from .auth import dd
from .site import blp


@blp.get("/people/birthdays")
def birthdays() -> ResponseReturnValue:
    """Known people with a birthdate, the next birthday first (the node's local date)."""
    return render_template("birthdays.html", birthdays=Timeline(dd()).birthdays())


@blp.get("/people/book")
def address_book() -> ResponseReturnValue:
    """Names, phones, e-mails, workplaces and birthdates from current profiles."""
    return render_template("book.html", cards=Timeline(dd()).contacts_book())
