"""The ``diwan`` group, its global options, error reporting and output shaping.

Every command module in this package registers its commands on :data:`main`
(``@main.command()`` / ``@main.group()``) and is imported once by
``app/cli/__init__.py``. Commands are thin: read arguments, call the core,
hand a JSON-shaped result and its human rendering to :meth:`Cli.emit`.
"""

from __future__ import annotations

import contextvars
import errno
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from ..core.base import config, strictjson
from ..core.base.datadir import DataDir, open_datadir, refuse_source_checkout
from ..core.base.errors import (
    BadInput,
    Conflict,
    DiwanError,
    Forbidden,
    NotFound,
    PeerError,
    RateLimited,
    Replay,
    TooLarge,
    WrongPassword,
)
from ..core.identity.identities import Identities
from ..core.identity.petnames import resolve
from ..core.posts.display import DisplayNames

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


# Exit statuses, one per class of error (README "Scripting"); click's own usage errors are 2.
EXIT_FAILURE = 1    # anything else: a corrupt file, the disk, a node that failed
EXIT_BAD_INPUT = 2  # malformed input or usage
EXIT_NOT_FOUND = 3  # no such identity, post, contact, group or name
EXIT_CONFLICT = 4   # conflicts with what is already here
EXIT_REFUSED = 5    # wrong password, not allowed
EXIT_PEER = 6       # another node could not be reached or answered wrongly
_EXIT_BY_CLASS: tuple[tuple[type[DiwanError], int], ...] = (
    (BadInput, EXIT_BAD_INPUT), (TooLarge, EXIT_BAD_INPUT), (NotFound, EXIT_NOT_FOUND),
    (Conflict, EXIT_CONFLICT), (Replay, EXIT_CONFLICT), (WrongPassword, EXIT_REFUSED),
    (Forbidden, EXIT_REFUSED), (PeerError, EXIT_PEER), (RateLimited, EXIT_PEER),
)
_JSON_ERRORS: contextvars.ContextVar[bool] = contextvars.ContextVar("json_errors", default=False)


class CliError(click.ClickException):
    """A failure reported as ``error: <message>`` on stderr (no traceback), or as a JSON
    object under ``--json``; ``exit_code`` tells its class (the ``EXIT_*`` constants)."""

    def __init__(self, message: str, *, exit_code: int = EXIT_FAILURE, code: str = "error",
                 field: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.code = code
        self.field = field

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {clean(self.format_message())}", err=True)


def cli_error(exc: DiwanError) -> CliError:
    """The :class:`CliError` for a project error, with its class's exit status."""
    exit_code = next((code for cls, code in _EXIT_BY_CLASS if isinstance(exc, cls)),
                     EXIT_FAILURE)
    return CliError(exc.message, exit_code=exit_code, code=exc.code, field=exc.field)


def _hoist_json(args: list[str]) -> tuple[list[str], bool]:
    """Move ``--json`` found anywhere before ``--`` to the front (it is a global option)."""
    end = args.index("--") if "--" in args else len(args)
    found = "--json" in args[:end]
    if not found:
        return args, False
    return ["--json"] + [a for i, a in enumerate(args) if i >= end or a != "--json"], True


def report(exc: click.ClickException, as_json: bool) -> None:
    """Print an error: ``error: ...`` (or click's usage text), or one JSON object on stderr."""
    if not as_json:
        exc.show()
        return
    if isinstance(exc, CliError):
        body = {"code": exc.code, "field": exc.field}
    else:
        body = {"code": "usage", "field": None}
    body.update(message=exc.format_message(), exit=exc.exit_code)
    click.echo(strictjson.dumps({"error": body}, ensure_ascii=False), err=True)


class DiwanGroup(click.Group):
    """The top group: ``--json`` anywhere, project errors as ``error: ...`` (or JSON) and
    an exit status per class of error."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        argv, as_json = _hoist_json(list(sys.argv[1:] if args is None else args))
        token = _JSON_ERRORS.set(as_json)
        try:
            if not standalone_mode:
                return super().main(argv, prog_name, complete_var, False, **extra)
            try:
                rv = super().main(argv, prog_name, complete_var, False, **extra)
            except click.ClickException as exc:
                report(exc, as_json)
                sys.exit(exc.exit_code)
            except click.Abort:
                click.echo("Aborted!", err=True)
                sys.exit(EXIT_FAILURE)
            sys.exit(rv if isinstance(rv, int) else 0)
        finally:
            _JSON_ERRORS.reset(token)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DiwanError as exc:
            raise cli_error(exc) from None
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise
            where = f": {exc.filename}" if exc.filename else ""
            raise CliError(f"{exc.strerror or exc}{where}") from None


@dataclass
class Cli:
    """What every command gets: the data directory and the output mode."""

    data_dir: Path
    json: bool = False
    _opened: DataDir | None = field(default=None, init=False, repr=False)
    _names: DisplayNames | None = field(default=None, init=False, repr=False)

    def datadir(self, *, create: bool = False) -> DataDir:
        """The data directory, initialised; without ``create`` it must exist already.

        Opened once per command (settings read once); later calls return it.
        """
        if self._opened is None:
            if not create and not (self.data_dir / config.CONFIG_FILE).exists():
                refuse_source_checkout(self.data_dir)  # 'init' would refuse it too
                raise NotFound(f"{self.data_dir} is not a Diwan data directory (no "
                               f"{config.CONFIG_FILE}); run 'diwan --data-dir "
                               f"{self.data_dir} init' first")
            self._opened = open_datadir(self.data_dir)
        return self._opened

    def datadir_or_defaults(self) -> tuple[DataDir, str | None]:
        """The data directory, or, if its settings do not load, the same directory with
        the default settings and the error (``stop`` and ``status`` must still find the
        processes, which run with the settings they started with)."""
        try:
            return self.datadir(), None
        except (BadInput, NotFound) as exc:
            dd = DataDir.with_defaults(self.data_dir)
            # no diwan.toml (NotFound): still a node's if it ever recorded a run
            if isinstance(exc, NotFound) and not (dd.state / "run").is_dir():
                raise
            return dd, exc.message

    def identities(self) -> Identities:
        return Identities(self.datadir())

    def names(self) -> DisplayNames:
        """Display names as this node's own identities see them (cached for the command)."""
        if self._names is None:
            self._names = DisplayNames(self.datadir())
        return self._names

    def emit(self, data: Any, human: str | Iterable[str]) -> None:
        """Print ``data`` as JSON with ``--json``, else the human lines, each :func:`clean`
        (names, posts and errors may come from other people: nothing reaches the terminal
        as a control or bidi character)."""
        if self.json:
            click.echo(strictjson.dumps(data, indent=2, ensure_ascii=False))
        elif isinstance(human, str):
            click.echo(clean(human))
        else:
            for line in human:
                click.echo(clean(line))


pass_cli = click.make_pass_decorator(Cli)


class FingerprintType(click.ParamType):
    """A fingerprint, a unique hex prefix of at least 8 characters, or a petname.

    Resolved against the data directory (:func:`app.core.identity.petnames.resolve`)
    into the full fingerprint; an ambiguous, short or unknown name is a project
    error, reported like any other.
    """

    name = "fingerprint"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        cli = ctx.find_object(Cli) if ctx is not None else None
        if cli is None:
            raise click.UsageError("no data directory to resolve names in")
        if isinstance(param, click.Option):
            field = param.opts[0]
        else:
            field = param.human_readable_name if param is not None else "FP"
        return resolve(cli.datadir(), value, field=field)


FP = FingerprintType()


_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029"
                     r"\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """``text`` safe for a terminal: control (but tab and newline), line-separator and bidi
    characters shown as ``\\uXXXX``. Every human line the CLI prints passes here."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Left-aligned columns separated by two spaces (the last one unpadded)."""
    lines = [list(headers)] + [list(r) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers) - 1)]
    return ["  ".join([line[i].ljust(w) for i, w in enumerate(widths)] + [line[-1]]).rstrip()
            for line in lines]


def when(timestamp: float | None) -> str:
    """A local time for people, ``-`` for none, the raw number if no date can show it.

    Never raises: a time from another node may lie beyond what the platform's
    clock functions represent (year 1 or 9999 in a far time zone, say).
    """
    if timestamp is None:
        return "-"
    try:
        return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):
        return str(timestamp)


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


@click.group(cls=DiwanGroup, context_settings=CONTEXT_SETTINGS)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The node's data directory (default: $DIWAN_DATA_DIR, else the "
                   "current directory).")
@click.option("--json", "as_json", is_flag=True,
              help="Print machine-readable JSON (the admin API's shapes).")
@click.version_option(package_name="diwan")
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, as_json: bool) -> None:
    """Diwan: a peer-to-peer social network node.

    Runs the node (init, up) and manages its identities, groups and blocked
    keys directly in the data directory. Passwords are only ever prompted
    (hidden) or read from a file or stdin, never taken as arguments.
    """
    ctx.obj = Cli(config.data_dir_from_env(os.fspath(data_dir) if data_dir else None), as_json)
