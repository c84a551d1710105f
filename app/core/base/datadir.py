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

from . import config
from .fsio import make_private_dir, write_atomic
from .names import BLOCKED

TOKEN_FILE = "admin.token"


class DataDir:
    """One user's node: a directory and its effective settings."""

    def __init__(self, root: Path, overrides: Mapping[str, Any] | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.root = Path(root).resolve()
        self.settings = config.load(self.root, overrides, environ)

    @property
    def identities(self) -> Path:
        return self.root / "identities"

    @property
    def posts(self) -> Path:
        return self.root / "posts"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def locks(self) -> Path:
        return self.state / "locks"

    @property
    def token_path(self) -> Path:
        return self.root / TOKEN_FILE

    def initialise(self) -> bool:
        """Create whatever of the layout is missing; True if anything was created."""
        created = not (self.root / config.CONFIG_FILE).exists()
        make_private_dir(self.root)
        for d in (self.identities, self.identities / BLOCKED, self.posts, self.state, self.locks):
            make_private_dir(d)
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
        return self.token_path.read_text("ascii").strip()

    def check_token(self, presented: str) -> bool:
        """Constant-time comparison of a presented bearer token."""
        expected = self.admin_token.encode()
        return hmac.compare_digest(expected, presented.encode("utf-8", "replace"))


def open_datadir(root: str | os.PathLike[str] | None = None,
                 overrides: Mapping[str, Any] | None = None) -> DataDir:
    """Open (initialising if needed) the data directory for a process.

    Every process (admin, peer, scheduler, CLI) starts here, so this is where the
    insecure-KDF switch, if set, is announced with a WARNING.
    """
    config.warn_if_insecure_kdf()
    dd = DataDir(config.data_dir_from_env(root), overrides)
    dd.initialise()
    return dd
