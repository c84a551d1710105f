"""The ``diwan`` group, its global options, error reporting and output shaping.

Every command module in this package registers its commands on :data:`main`
(``@main.command()`` / ``@main.group()``) and is imported once by
``app/cli/__init__.py``. Commands are thin: read arguments, call the core,
hand a JSON-shaped result and its human rendering to :meth:`Cli.emit`.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from ..core.base import config
from ..core.base.datadir import DataDir, open_datadir
from ..core.base.errors import BadInput, DiwanError, NotFound, TooLarge
from ..core.identity.identities import Identities
from ..core.identity.petnames import resolve
from ..core.posts.display import DisplayNames

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


class CliError(click.ClickException):
    """A failure reported as ``error: <message>`` on stderr (no traceback); exit status 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class CliBadInput(CliError):
    """Bad input: exit status 2, like click's own usage errors."""

    exit_code = 2


def cli_error(exc: DiwanError) -> CliError:
    bad_input = isinstance(exc, (BadInput, TooLarge))
    return (CliBadInput if bad_input else CliError)(exc.message)


class DiwanGroup(click.Group):
    """The top group: turns project errors into ``error: ...`` and an exit code."""

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
            if not create and not (self.data_dir / config.CONFIG_FILE).is_file():
                raise NotFound(f"{self.data_dir} is not a Diwan data directory (no "
                               f"{config.CONFIG_FILE}); run 'diwan --data-dir "
                               f"{self.data_dir} init' first")
            self._opened = open_datadir(self.data_dir)
        return self._opened

    def identities(self) -> Identities:
        return Identities(self.datadir())

    def names(self) -> DisplayNames:
        """Display names as this node's own identities see them (cached for the command)."""
        if self._names is None:
            self._names = DisplayNames(self.datadir())
        return self._names

    def emit(self, data: Any, human: str | Iterable[str]) -> None:
        """Print ``data`` as JSON with ``--json``, else the human lines."""
        if self.json:
            click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        elif isinstance(human, str):
            click.echo(human)
        else:
            for line in human:
                click.echo(line)


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


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Left-aligned columns separated by two spaces (the last one unpadded)."""
    lines = [list(headers)] + [list(r) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers) - 1)]
    return ["  ".join([line[i].ljust(w) for i, w in enumerate(widths)] + [line[-1]]).rstrip()
            for line in lines]


def when(timestamp: float | None) -> str:
    """A local time for people, or ``-``."""
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


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
