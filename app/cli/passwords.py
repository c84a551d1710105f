"""Getting passwords: a hidden prompt, a file, or stdin. Never an argument.

A password on the command line would land in the shell history and in every
other user's ``ps`` output, so no option takes one as its value. Scripts use
``--password-file FILE`` (its first line) or ``--password-stdin`` (the first
line of stdin; for ``passwd`` the second line is the new password).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..core.base.errors import BadInput
from ..core.identity.keys import MAX_PASSWORD, MIN_PASSWORD

F = Callable[..., Any]


def password_options(func: F) -> F:
    """Add ``--password-file`` and ``--password-stdin`` to a command."""
    func = click.option("--password-stdin", is_flag=True,
                        help="Read the password from the first line of stdin.")(func)
    return click.option("--password-file",
                        type=click.Path(exists=True, dir_okay=False, path_type=Path),
                        help="Read the password from the first line of FILE.")(func)


def first_line(text: str) -> str:
    """The text up to the first line break (LF or CRLF), without it."""
    return text.split("\n", 1)[0].removesuffix("\r")


def utf8(text: str, what: str) -> bytes:
    """``text`` as UTF-8; an argument or terminal line that was not UTF-8 is refused."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"the {what} is not valid UTF-8 text", field=what) from None


def checked(password: str, what: str = "password") -> str:
    utf8(password, what)
    if not password:
        raise BadInput(f"the {what} is empty", field=what)
    if len(password) > MAX_PASSWORD:
        raise BadInput(f"the {what} is longer than {MAX_PASSWORD} characters", field=what)
    return password


def check_new(password: str, what: str = "password") -> str:
    """A password that will seal a key: at least 12 characters (and :func:`checked`)."""
    checked(password, what)
    if len(password) < MIN_PASSWORD:
        raise BadInput(f"the {what} must be at least {MIN_PASSWORD} characters long",
                       field=what)
    return password


def from_file(path: Path, what: str = "password") -> str:
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{path}: the {what} file is not UTF-8", field=what) from None
    return checked(first_line(text), what)


def from_stdin(*whats: str) -> list[str]:
    """One password per line of stdin, one line for each of ``whats``."""
    stream = sys.stdin
    return [checked(first_line(stream.readline()), what) for what in whats]


def prompt(text: str, *, confirm: bool = False, what: str = "password") -> str:
    value = click.prompt(text, hide_input=True, err=True,
                         confirmation_prompt="Repeat for confirmation" if confirm else False)
    return checked(value, what)


def get_password(password_file: Path | None, password_stdin: bool, text: str,
                 *, confirm: bool = False, what: str = "password", new: bool = False) -> str:
    """The password from the file, stdin or a hidden prompt, in that order.

    With ``new`` (a password that will seal a key) it must have 12+ characters.
    """
    if password_file is not None and password_stdin:
        raise BadInput("give either --password-file or --password-stdin, not both",
                       field="password")
    if password_file is not None:
        password = from_file(password_file, what)
    elif password_stdin:
        password = from_stdin(what)[0]
    else:
        password = prompt(text, confirm=confirm, what=what)
    return check_new(password, what) if new else password
