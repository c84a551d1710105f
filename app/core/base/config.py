"""Settings: defaults, then ``<data dir>/diwan.toml``, then ``DIWAN_*`` variables, then overrides.

Every limit the node enforces is a setting here with a safe default.
``diwan init`` writes all of them, with their defaults and a comment each, to
``diwan.toml`` so that a user can see and change every one.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BadInput

MiB = 1024 * 1024

# The one insecure-KDF switch (docs/protocol.md, "The private key file"): set in the
# environment of a test suite only. It is not a setting: diwan.toml cannot hold it and
# ``diwan init`` never writes it. Every process that honours it says so at start.
INSECURE_KDF_ENV = "DIWAN_INSECURE_KDF"
KDF_MIN_OPSLIMIT = 3            # libsodium crypto_pwhash_argon2id_OPSLIMIT_MODERATE
KDF_MIN_MEMLIMIT = 256 * MiB    # libsodium crypto_pwhash_argon2id_MEMLIMIT_MODERATE
_warned = False


@dataclass(frozen=True)
class Setting:
    """One setting: its name (the TOML key; ``DIWAN_<NAME>`` in the environment), its default
    (whose type, bool, int or str, is the setting's type) and a one-line help text."""

    name: str
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("admin_host", "127.0.0.1", "admin API bind address (keep it on loopback)"),
    Setting("admin_port", 8888, "admin API port"),
    Setting("peer_host", "0.0.0.0", "peer API bind address (other nodes reach this)"),
    Setting("peer_port", 8889, "peer API port"),
    Setting("workers", 2, "gunicorn worker processes per app"),
    Setting("threads", 4, "gunicorn threads per worker"),
    Setting("admin_max_body", 12 * MiB, "largest admin request body in bytes (413 above)"),
    Setting("peer_max_body", 64 * 1024, "largest peer request body in bytes (413 above)"),
    Setting("kdf_opslimit", KDF_MIN_OPSLIMIT,
            "Argon2id passes for new private key files (at least 3, libsodium MODERATE)"),
    Setting("kdf_memlimit", KDF_MIN_MEMLIMIT,
            "Argon2id memory in bytes for new key files (at least 256 MiB, libsodium MODERATE)"),
    Setting("transport_grace_seconds", 7 * 86400,
            "seconds a rotated-out transport key of this node stays usable (contacts "
            "learn the new one meanwhile)"),
    Setting("max_post_bytes", 8 * MiB, "largest post file accepted, in bytes"),
    Setting("max_time_skew", 300, "seconds a CREATED_TIME or request time may be in the future"),
    Setting("max_reshare_depth", 4, "how deeply reshared posts may nest"),
    Setting("max_url_length", 2048, "longest _URL attribute value in characters"),
    Setting("page_size", 10, "posts per page when none is asked for"),
    Setting("max_page_size", 1000, "largest page a client or peer may ask for"),
    Setting("index_busy_timeout", 30,
            "seconds a process waits for the post index database's write lock"),
    Setting("reconcile_interval_ms", 1000,
            "least milliseconds between two checks (per process) for post files added or "
            "removed behind the index's back; 0 checks before every query"),
    Setting("reconcile_max_verify", 2000,
            "most new post files one query's automatic index repair verifies (the next "
            "query carries on; diwan reindex has no limit)"),
    Setting("max_response_bytes", 32 * MiB, "largest feed page a node serves or accepts"),
    Setting("request_window", 300, "seconds a feed request stays valid (replay window)"),
    Setting("sync_interval", 600, "seconds between scheduled syncs"),
    Setting("sync_timeout", 20, "seconds per request to another node"),
    Setting("sync_overlap", 120, "seconds re-asked before the newest held post"),
    Setting("sync_parallel", 4, "contacts synced at once"),
    Setting("sync_max_backoff", 6 * 3600, "longest back-off for a failing contact, seconds"),
    Setting("sync_max_pages", 1000, "most feed pages pulled from one contact in one sync"),
    Setting("key_lookup_max_bytes", 4096, "largest answer accepted when fetching a key"),
    Setting("key_lookup_limit", 50, "most missing keys fetched by GET, and most keys delivered "
            "in the exchange kept, while syncing one contact"),
    Setting("serve_own_keys", True,
            "serve own identities' .pub documents at GET /identities/<fp> on the peer API "
            "(off: hand out your key another way; every fingerprint then gets the same 404)"),
    Setting("key_server", False, "accept POST /identities on the peer API from anyone"),
    Setting("key_server_max_body", 4096, "largest .pub document a key server accepts"),
    Setting("key_server_rate", 10, "key uploads per address per hour"),
    Setting("key_server_max_keys", 100000, "most uploaded keys a key server will hold"),
    Setting("gc_unused_days", 90, "delete others' unused .pub files after this many days"),
    Setting("gc_interval", 86400, "seconds between clean-up runs"),
    Setting("public_url", "",
            "the peer API's address as friends reach it (http://host:port), if you know "
            "one, e.g. a port forward on your router; diwan status shows it"),
    Setting("log_level", "info", "log level of every process: debug, info, warning or error"),
    Setting("log_format", "text", "log lines as text or json (one JSON object a line)"),
    Setting("admin_log_level", "", "the admin API's log level (empty: log_level)"),
    Setting("peer_log_level", "", "the peer API's log level (empty: log_level)"),
    Setting("scheduler_log_level", "", "the scheduler's log level (empty: log_level)"),
)

DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}
ENV_PREFIX = "DIWAN_"
CONFIG_FILE = "diwan.toml"


def _coerce(name: str, value: Any, source: str) -> Any:
    default = DEFAULTS[name]
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        return str(value)
    except (TypeError, ValueError):
        raise BadInput(f"{source}: {name} must be like {default!r}", field=name) from None


def load(data_dir: Path, overrides: Mapping[str, Any] | None = None,
         environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the effective settings for ``data_dir``: a dict of every setting's name to value.

    Layers, later winning: :data:`DEFAULTS`, ``<data_dir>/diwan.toml``, ``DIWAN_<NAME>``
    variables of ``environ`` (default ``os.environ``), then ``overrides`` (keys that are not
    settings pass through unchecked, for the apps' own config). Values are coerced to the
    default's type. Raises :class:`BadInput` (with ``field`` the setting) for TOML that does
    not parse, an unknown key in the file, a value of the wrong type, or a value out of range
    (negative, a port outside 1-65535, Argon2id below 2 passes / 64 MiB, a feed page limit not
    above the post limit). Raises ``OSError`` if the file exists but cannot be read.
    """
    env = os.environ if environ is None else environ
    cfg = dict(DEFAULTS)
    path = data_dir / CONFIG_FILE
    if path.exists():
        try:
            from_file = tomllib.loads(path.read_text("utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise BadInput(f"{path}: {exc}") from None
        for key, value in from_file.items():
            if key not in DEFAULTS:
                raise BadInput(f"{path}: unknown setting {key!r} (a typo?)", field=key)
            cfg[key] = _coerce(key, value, str(path))
    for key in DEFAULTS:
        env_name = ENV_PREFIX + key.upper()
        if env_name in env:
            cfg[key] = _coerce(key, env[env_name], env_name)
    for key, value in (overrides or {}).items():
        if key in DEFAULTS:
            cfg[key] = _coerce(key, value, "override")
        else:
            cfg[key] = value
    _check(cfg)
    return cfg


def _check(cfg: Mapping[str, Any]) -> None:
    for s in SETTINGS:
        if isinstance(s.default, int) and not isinstance(s.default, bool) and cfg[s.name] < 0:
            raise BadInput(f"{s.name} must not be negative", field=s.name)
    for name in ("admin_port", "peer_port"):
        if not 1 <= cfg[name] <= 65535:
            raise BadInput(f"{name} must be a TCP port (1-65535)", field=name)
    for name in ("workers", "threads"):
        if cfg[name] < 1:
            raise BadInput(f"{name} must be at least 1", field=name)
    if cfg["kdf_memlimit"] < KDF_MIN_MEMLIMIT:
        raise BadInput("kdf_memlimit must be at least 256 MiB", field="kdf_memlimit")
    if cfg["max_response_bytes"] <= cfg["max_post_bytes"]:
        raise BadInput("max_response_bytes must be larger than max_post_bytes (a feed page "
                       "must hold at least one post)", field="max_response_bytes")
    if cfg["kdf_opslimit"] < KDF_MIN_OPSLIMIT:
        raise BadInput("kdf_opslimit must be at least 3", field="kdf_opslimit")


def insecure_kdf(environ: Mapping[str, str] | None = None) -> bool:
    """True if ``DIWAN_INSECURE_KDF`` is set to 1/true/yes/on (tests only).

    Read from the process environment (``environ`` for tests of this function),
    never from ``diwan.toml``: key files then use libsodium's minimum Argon2id
    cost, and key files of that cost open. Never set it on a real node.
    """
    env = os.environ if environ is None else environ
    return env.get(INSECURE_KDF_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def warn_if_insecure_kdf() -> bool:
    """Log a WARNING (once per process) if the insecure-KDF switch is on; return it."""
    global _warned
    on = insecure_kdf()
    if on and not _warned:
        _warned = True
        logging.getLogger("diwan").warning(
            "INSECURE KEY DERIVATION: %s is set: private keys are sealed with the minimum "
            "Argon2id cost and weak key files open. This is for test suites only; never on a "
            "real node.",
            INSECURE_KDF_ENV)
    return on


def render_toml() -> str:
    """The full default configuration as TOML text: every setting with its help as a comment.

    ``diwan init`` writes it to ``diwan.toml``; :func:`load` reads it back to the defaults.
    """
    lines = ["# Diwan node settings. Every setting is listed with its default.",
             "# DIWAN_<NAME> environment variables override this file.", ""]
    for s in SETTINGS:
        value = ("true" if s.default else "false") if isinstance(s.default, bool) else (
            str(s.default) if isinstance(s.default, int) else f'"{s.default}"')
        lines.append(f"# {s.help}")
        lines.append(f"{s.name} = {value}")
        lines.append("")
    return "\n".join(lines)


def data_dir_from_env(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data directory as an absolute path: ``explicit``, else ``DIWAN_DATA_DIR``, else
    the current directory. The directory need not exist; nothing is checked or raised."""
    raw = explicit or os.environ.get("DIWAN_DATA_DIR") or os.getcwd()
    return Path(raw).resolve()
