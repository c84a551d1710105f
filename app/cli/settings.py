"""``diwan config``: the effective settings (defaults, diwan.toml, DIWAN_* variables)."""

from __future__ import annotations

import json
from typing import Any

import click

from ..core.base import config
from ..core.base.datadir import DataDir
from ..core.base.errors import BadInput
from .base import Cli, main, pass_cli


def _settings(cli: Cli) -> dict[str, Any]:
    """Read-only: loading settings never creates anything in the directory."""
    return DataDir(cli.data_dir).settings


def _value(value: Any) -> str:
    """A value as it would be written in diwan.toml."""
    return json.dumps(value)


@main.group("config")
def config_group() -> None:
    """Show the node's effective settings."""


@config_group.command()
@pass_cli
def show(cli: Cli) -> None:
    """Every setting with its effective value and the values it allows.

    A value out of its range stops here (exit status 2) with one line naming
    the setting, the allowed values, the value and where it came from.
    """
    effective = _settings(cli)
    settings = {s.name: effective[s.name] for s in config.SETTINGS}
    width = max(map(len, settings))
    vwidth = max(len(_value(v)) for v in settings.values())
    cli.emit(settings, [f"{s.name.ljust(width)} = {_value(settings[s.name]).ljust(vwidth)}"
                        f"  # {s.allowed()}" for s in config.SETTINGS])


@config_group.command()
@click.argument("name")
@pass_cli
def get(cli: Cli, name: str) -> None:
    """The effective value of setting NAME (plain, for scripts)."""
    if name not in config.DEFAULTS:
        raise BadInput(f"unknown setting {name!r}; 'diwan config show' lists them", field="name")
    value = _settings(cli)[name]
    cli.emit({name: value}, value if isinstance(value, str) else _value(value))
