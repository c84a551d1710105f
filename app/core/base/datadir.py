"""The data directory: its layout, its settings and the admin token.

::

    <data dir>/
      diwan.toml            settings (written by init with every default)
      admin.token           admin API bearer token (0600)
      identities/           <FP>.pub public key documents, <FP> private key files (0600)
      identities/<group>/   copies of .pub files; "blocked" is reserved
      posts/<FP>/<SHA1>     post files (the truth)
      state/                caches and process state (index, nonces, contacts, sync status)
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from . import config, permissions
from .errors import BadInput
from .fsio import make_durable_dir, write_atomic
from .names import BLOCKED

TOKEN_FILE = "admin.token"


class DataDir:
    """One user's node: a directory (``root``, absolute) and its effective ``settings``.

    Constructing one reads the settings (:func:`config.load`), so it raises
    :class:`BadInput` for a bad ``diwan.toml`` or ``DIWAN_*`` variable; it creates nothing
    (see :meth:`initialise`).
    """

    def __init__(self, root: Path, overrides: Mapping[str, Any] | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.root = Path(root).resolve()
        self.settings = config.load(self.root, overrides, environ)

    @classmethod
    def with_defaults(cls, root: Path) -> DataDir:
        """The data directory at ``root`` with the default settings, whatever its
        ``diwan.toml`` says: to find and stop the processes of a node whose settings no
        longer load (they run with the settings they started with)."""
        dd = cls.__new__(cls)
        dd.root = Path(root).resolve()
        dd.settings = dict(config.DEFAULTS)
        return dd

    @cached_property
    def identities(self) -> Path:
        """``<root>/identities``: ``.pub`` documents, private key files and group folders."""
        return self.root / "identities"

    @cached_property
    def posts(self) -> Path:
        """``<root>/posts``: one folder of post files per author fingerprint."""
        return self.root / "posts"

    @cached_property
    def state(self) -> Path:
        """``<root>/state``: caches and process state (index, nonces, contacts, sync status)."""
        return self.root / "state"

    @cached_property
    def locks(self) -> Path:
        """``<root>/state/locks``: the ``flock`` files that serialise writers across processes."""
        return self.state / "locks"

    @property
    def token_path(self) -> Path:
        """``<root>/admin.token``: the admin API bearer token (mode 0600)."""
        return self.root / TOKEN_FILE

    def initialise(self) -> bool:
        """Create whatever of the layout is missing; True if anything was created.

        Directories are 0700, ``diwan.toml`` (every default) 0644 and ``admin.token`` (64 hex
        characters) 0600, each written atomically and never replacing one another process
        wrote meanwhile. Raises :class:`BadInput` for the source checkout itself (which must
        never fill with keys and tokens) and ``OSError`` if the directory cannot be written.
        """
        refuse_source_checkout(self.root)
        created = not (self.root / config.CONFIG_FILE).exists()
        make_durable_dir(self.root)
        for d in (self.identities, self.identities / BLOCKED, self.posts, self.state, self.locks):
            make_durable_dir(d)
        if created:
            write_atomic(self.root / config.CONFIG_FILE, config.render_toml().encode(), mode=0o644,
                         exclusive=True)  # never replace a config written meanwhile
        if not self.token_path.exists():
            # exclusive: processes starting together on an empty directory agree on one token
            token = (secrets.token_hex(32) + "\n").encode()
            created = write_atomic(self.token_path, token, mode=0o600, exclusive=True) or created
        return created

    @cached_property
    def admin_token(self) -> str:
        """The admin bearer token (read once per process; ``OSError`` if it is missing).

        Raises :class:`~.errors.InsecureFile` if ``admin.token`` is open to other users.
        """
        permissions.enforce(self.root, self.settings, [self.token_path])
        return self.token_path.read_text("ascii").strip()

    def check_token(self, presented: str) -> bool:
        """True if ``presented`` is the admin token (``hmac.compare_digest``, constant time).

        ``docs/protocol.md``, Admin API access. Raises ``OSError`` if ``admin.token`` is missing.
        """
        expected = self.admin_token.encode()
        return hmac.compare_digest(expected, presented.encode("utf-8", "replace"))


def open_datadir(root: str | os.PathLike[str] | None = None,
                 overrides: Mapping[str, Any] | None = None) -> DataDir:
    """Open (initialising if needed) the data directory for a process.

    ``root`` as for :func:`config.data_dir_from_env`; ``overrides`` as for
    :func:`config.load`. Raises :class:`BadInput` for bad settings and ``OSError`` if the
    layout cannot be created, and :class:`~.errors.InsecureFile` if a secret is open to
    others (:mod:`.permissions`; a warning only with ``secret_permissions = "warn"``).
    Every process (admin, peer, scheduler, CLI) starts here, so this is where the
    insecure-KDF switch, if set, is announced with a WARNING.
    """
    config.warn_if_insecure_kdf()
    dd = DataDir(config.data_dir_from_env(root), overrides)
    dd.initialise()
    permissions.enforce(dd.root, dd.settings)
    return dd


def server_root(environ: Mapping[str, str] | None = None) -> Path:
    """The data directory of a server process (a gunicorn app, the scheduler):
    ``DIWAN_DATA_DIR`` (every launcher sets it: ``diwan up``, the Procfile, the systemd
    units), else the current directory if it is a data directory already (holds
    ``diwan.toml``). :class:`BadInput` for a source checkout (:func:`refuse_source_checkout`)
    and for any other folder: a server started by hand in one (a home directory) made it
    a node, 0700 with a token and keys (found by the stop 21 tester)."""
    env = os.environ if environ is None else environ
    root = config.data_dir_from_env(env.get("DIWAN_DATA_DIR") or os.getcwd())
    refuse_source_checkout(root)  # before anything would make the checkout 0700
    if not env.get("DIWAN_DATA_DIR") and not (root / config.CONFIG_FILE).is_file():
        raise BadInput(f"DIWAN_DATA_DIR is not set and {root} is not a data directory (no "
                       f"{config.CONFIG_FILE}): set DIWAN_DATA_DIR, or make one with 'diwan "
                       "init'", field="data_dir")
    return root


def refuse_source_checkout(path: Path) -> None:
    """:class:`BadInput` if ``path`` is a Diwan source tree (:func:`is_source_checkout`) or
    a folder inside one other than under the two it ignores for output, ``var/`` (where
    ``make run`` keeps its demo node) and ``bench/out/`` (the benchmarks' nodes), before
    anything is created or its mode changed."""
    path = Path(path).resolve()
    for tree in (path, *path.parents):
        if is_source_checkout(tree):
            inside = path.relative_to(tree).parts
            if (inside[:1] == ("var",) and len(inside) > 1) or (
                    inside[:2] == ("bench", "out") and len(inside) > 2):
                return
            where = f"inside the Diwan source checkout {tree}" if inside else \
                "the Diwan source checkout"
            raise BadInput(f"{path} is {where}, not a data directory: give the node a "
                           "directory of its own (--data-dir or DIWAN_DATA_DIR), outside the "
                           "checkout or under its var/ as 'make run' does", field="data_dir")


def is_source_checkout(path: Path) -> bool:
    """True if ``path`` is a Diwan source tree (``pyproject.toml`` beside ``app/`` and
    ``scheduler/``): such a directory is never used as a data directory."""
    return ((path / "pyproject.toml").is_file() and (path / "app" / "__init__.py").is_file()
            and (path / "scheduler").is_dir())
