"""Settings: defaults, then ``<data dir>/diwan.toml``, then ``DIWAN_*`` variables, then overrides.

Every limit the node enforces is a setting here with a safe default.
``diwan init`` writes all of them, with their defaults and a comment each, to
``diwan.toml`` so that a user can see and change every one.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import settingsfile
from .errors import BadInput
from .setting import REACH_SETTINGS, Setting

MiB = 1024 * 1024
DAY = 86400
GiB = 1024 * MiB
CHOICES_PERMISSIONS = ("refuse", "warn")
LOG_LEVELS = ("debug", "info", "warning", "error")

# The one insecure-KDF switch (docs/protocol.md, "The private key file"): set in the
# environment of a test suite only. It is not a setting: diwan.toml cannot hold it and
# ``diwan init`` never writes it. Every process that honours it says so at start.
INSECURE_KDF_ENV = "DIWAN_INSECURE_KDF"
KDF_MIN_OPSLIMIT = 3            # libsodium crypto_pwhash_argon2id_OPSLIMIT_MODERATE
KDF_MIN_MEMLIMIT = 256 * MiB    # libsodium crypto_pwhash_argon2id_MEMLIMIT_MODERATE
_warned = False


SETTINGS: tuple[Setting, ...] = (
    Setting("admin_host", "127.0.0.1", "admin API bind address (keep it on loopback)",
            kind="host"),
    Setting("admin_expose", False,
            "allow admin_host to be a non-loopback address (the token and private posts "
            "then cross the network in plain HTTP: put TLS in front)"),
    Setting("admin_port", 8888, "admin API port", 1, 65535),
    Setting("peer_host", "::", "peer API bind address (other nodes reach this; '::' is "
            "IPv6 and IPv4 where the system allows, else 0.0.0.0)",
            kind="host"),
    Setting("peer_port", 8889, "peer API port", 1, 65535),
    Setting("workers", 2, "gunicorn worker processes per app", 1, 64),
    Setting("malloc_arena_max", 2, "malloc arenas (glibc) per node process (0: glibc's)", 0, 64),
    Setting("threads", 4, "gunicorn threads per worker", 1, 256),
    Setting("max_json_depth", 32, "deepest nesting of arrays and objects in a JSON body", 2, 1000),
    Setting("client_deadline", 10,
            "seconds a peer-API client has to send its whole request (then 408, closed)",
            1, 3600, "seconds"),
    Setting("peer_connections_per_address", 32,
            "connections one address (IPv4, or IPv6 /64) may hold open to one peer worker "
            "process (503 and closed past it)", 1, 100000, "connections"),
    Setting("peer_keepalive_requests", 100,
            "requests one peer-API connection may carry; the last is answered with "
            "'Connection: close' (the client reconnects, to whichever worker is free)",
            1, 1000000, "requests"),
    Setting("peer_accept_balance_ms", 20, "how long a peer worker holding more connections "
            "than another leaves a new one to it before taking it itself (0: off)", 0, 1000, "ms"),
    Setting("admin_max_body", 12 * MiB, "largest admin request body in bytes (413 above)",
            256, GiB, "bytes"),
    Setting("peer_max_body", 64 * 1024, "largest peer request body in bytes (413 above; at "
            "least a feed request's 3,181)", 4096, 64 * MiB, "bytes"),
    Setting("kdf_opslimit", KDF_MIN_OPSLIMIT,
            "Argon2id passes for new private key files (at least 3, libsodium MODERATE)",
            KDF_MIN_OPSLIMIT, 64),
    Setting("kdf_memlimit", KDF_MIN_MEMLIMIT,
            "Argon2id memory in bytes for new key files (at least 256 MiB, libsodium MODERATE)",
            KDF_MIN_MEMLIMIT, 4 * GiB, "bytes"),
    Setting("transport_grace_seconds", 7 * 86400,
            "seconds a rotated-out transport key of this node stays usable (contacts "
            "learn the new one meanwhile)", 0, 365 * DAY, "seconds"),
    Setting("max_post_bytes", 8 * MiB, "largest post file accepted, in bytes",
            100, 256 * MiB, "bytes"),
    Setting("max_image_pixels", 50_000_000, "largest image to post", 1, 80_000_000, "pixels"),
    Setting("max_time_skew", 300, "seconds a CREATED_TIME or request time may be in the future",
            0, DAY, "seconds"),
    Setting("temp_max_age", 600, "seconds after which a temporary file left by a crashed "
            "writer is removed (at scheduler start and by diwan reindex)", 60, DAY, "seconds"),
    Setting("flush_dirty_per_file", 128 * 1024,
            "unwritten file data (the whole machine's, bytes) per file of a batch of new "
            "post files up to which the batch is made durable by one syncfs; above it each "
            "file is fsync-ed instead, so a sync never waits for other programs' data",
            0, GiB, "bytes"),
    Setting("max_reshare_depth", 4, "how deeply reshared posts may nest", 0, 32),
    Setting("max_url_length", 2048, "longest _URL attribute value in characters",
            16, 65536, "characters"),
    Setting("page_size", 10, "posts per page when none is asked (at most max_page_size)", 1, 10**5),
    Setting("max_page_size", 1000, "largest page a client or peer may ask for", 1, 100000),
    Setting("sync_page_size", 500, "posts a sync asks for in one page (at most max_page_size); "
            "a syncing worker holds about two pages", 1, 100000, "posts"),
    Setting("verify_processes", 2,
            "helper processes checking post signatures while ingest stores posts (0: threads "
            "in the ingesting process)", 0, 64, "processes"),
    Setting("verify_ahead_posts", 500,
            "posts of the next batch (a sync's next page) whose signature checks start "
            "while this batch is stored; bounds what ingest holds ahead", 0, 100000, "posts"),
    Setting("index_busy_timeout", 30,
            "seconds a process waits for the post index database's write lock",
            1, 3600, "seconds"),
    Setting("index_checkpoint_pages", 8192, "least pages (4 KiB) the index's write-ahead "
            "log grows to before a commit checkpoints it; twice the index's pages if more",
            100, 1_000_000, "pages"),
    Setting("index_checkpoint_max_pages", 32768, "most pages the index's write-ahead log "
            "grows to (index_checkpoint_pages wins if larger)", 100, 1_000_000, "pages"),
    Setting("index_cache_mib", 2, "least MiB of index pages a connection keeps in memory; "
            "a quarter of the index if more", 1, 4096, "MiB"),
    Setting("index_cache_max_mib", 16, "most MiB of index pages a connection keeps in "
            "memory (index_cache_mib wins if larger)", 1, 4096, "MiB"),
    Setting("reconcile_interval_ms", 1000,
            "least milliseconds between two checks (per process) for post files added or "
            "removed behind the index's back; 0 checks before every query",
            0, 3600 * 1000, "milliseconds"),
    Setting("reconcile_max_verify", 2000,
            "most new post files one query's automatic index repair verifies (the next "
            "query carries on; diwan reindex has no limit)", 1, 10**7),
    Setting("max_response_bytes", 32 * MiB, "largest feed page a node serves or accepts "
            "(at least max_post_bytes + max_post_bytes/1024 + 4096)", 4196, GiB, "bytes"),
    Setting("feed_cache_kib", 1024, "KiB of recently served post files each peer worker "
            "keeps and serves again unread (0: none)", 0, 1024 * 1024, "KiB"),
    Setting("max_summary_entries", 20000, "most entries (16 bytes each) in one feed summary "
            "a node serves (a follower comparing what it holds)", 1, 10**7),
    Setting("request_window", 300, "seconds a feed request stays valid (replay window)",
            10, DAY, "seconds"),
    Setting("budget_window", 60, "seconds of one budget window on the peer port",
            1, DAY, "seconds"),
    Setting("budget_prefix_requests", 1200,
            "feed requests that get no page per window from one IPv4 /24 or IPv6 /64, "
            "checked before decryption (429 beyond)", 1, 10**9),
    Setting("budget_prefix48_requests", 4800,
            "feed requests that get no page per window from one IPv6 /48", 1, 10**9),
    Setting("budget_asker_requests", 600,
            "feed requests per window from one authenticated asker (strangers: per "
            "network prefix) (429 beyond)", 1, 10**9),
    Setting("budget_asker_bytes", 256 * MiB,
            "response bytes per window to one authenticated asker (strangers: per network "
            "prefix) (429 beyond)", 1, 2**50, "bytes"),
    Setting("sync_interval", 600, "seconds between scheduled syncs", 2, 30 * DAY, "seconds"),
    Setting("sync_timeout", 20, "seconds per request to another node", 1, 600, "seconds"),
    Setting("sync_round_time", 300,
            "seconds a sync round may last (at most sync_interval); contacts not started "
            "by then wait for the next round, first in line", 2, DAY, "seconds"),
    Setting("sync_request_poll", 2, "seconds between looks for syncs asked for now", 1, 3600),
    Setting("sync_parallel", 4, "contacts synced at once (those that answered last time)", 1, 64),
    Setting("sync_parallel_failing", 4,
            "contacts that failed last time tried at once, in their own slots", 1, 64),
    Setting("sync_max_backoff", 6 * 3600, "longest back-off for a failing contact, seconds",
            2, 30 * DAY, "seconds"),
    Setting("sync_max_pages", 1000, "most feed pages pulled from one contact in one sync",
            1, 10**6),
    Setting("key_lookup_max_bytes", 4096, "largest answer accepted when fetching a key",
            256, GiB, "bytes"),
    Setting("key_lookup_limit", 50, "most missing keys fetched by GET, and most keys delivered "
            "in the exchange kept, while syncing one contact", 0, 100000),
    Setting("serve_own_keys", True,
            "serve own identities' .pub documents at GET /identities/<fp> on the peer API "
            "(off: hand out your key another way; every fingerprint then gets the same 404)"),
    Setting("key_server", False, "accept POST /identities on the peer API from anyone"),
    Setting("key_server_max_body", 4096, "largest .pub document a key server accepts",
            64, MiB, "bytes"),
    Setting("key_server_rate", 10, "key uploads per address (IPv6: per /64) per hour", 1, 10**6),
    Setting("key_server_prefix_rate", 100, "key uploads per IPv6 /48 or IPv4 /24 per hour",
            1, 10**6),
    Setting("key_server_max_keys", 100000, "most uploaded keys a key server will hold",
            1, 10**9),
    Setting("key_server_keys_per_address", 100,
            "most uploaded keys held from one address (IPv6: /64); never over a tenth of the cap",
            1, 10**7),
    Setting("key_server_keys_per_prefix", 1000,
            "most uploaded keys held from one IPv6 /48 or IPv4 /24; never over a tenth of the cap",
            1, 10**7),
    Setting("key_server_unfetched_days", 7,
            "days after which an uploaded key that nobody fetched is deleted", 0, 3650, "days"),
    Setting("gc_unused_days", 90, "delete others' unused .pub files after this many days",
            1, 36500, "days"),
    Setting("gc_interval", 86400, "seconds between clean-up runs", 60, 365 * DAY, "seconds"),
    Setting("public_url", "",
            "the peer API's address as friends reach it (http://host:port), if you know "
            "one, e.g. a port forward on your router; diwan status shows it", kind="url"),
    Setting("invite_expiry", 2 * DAY, "seconds an invite and its one-time token stay valid",
            60, 365 * DAY, "seconds"),
    Setting("web_login_code_ttl", 120,
            "seconds a one-time login URL from 'diwan open' stays valid (used once)",
            0, 3600, "seconds"),
    Setting("web_session_ttl", 4 * 3600, "seconds a browser stays signed in to the pages",
            0, 30 * DAY, "seconds"),
    Setting("web_unlock_idle", 1800, "seconds an identity unlocked in the pages stays "
            "unlocked without use", 0, DAY, "seconds"),
    Setting("web_search_max_chars", 200, "longest search in the pages (characters)", 1, 10000),
    Setting("web_search_max_terms", 16, "most words in one search in the pages", 1, 1000),
    Setting("web_notifications", 100, "most recent notifications the pages list", 1, 10000),
    Setting("web_sync_max_age", 3600, "seconds a 'sync now' shows as running", 10, DAY, "seconds"),
    Setting("admin_allowed_hosts", "",
            "extra Host names the admin port answers to, comma-separated (e.g. a name "
            "you reach it by over an SSH tunnel); loopback names are always allowed",
            kind="hosts"),
    Setting("log_level", "info", "log level of every process: debug, info, warning or error",
            choices=LOG_LEVELS),
    Setting("log_format", "text", "log lines as text or json (one JSON object a line)",
            choices=("text", "json")),
    Setting("admin_log_level", "", "the admin API's log level (empty: log_level)",
            choices=("", *LOG_LEVELS)),
    Setting("peer_log_level", "", "the peer API's log level (empty: log_level)",
            choices=("", *LOG_LEVELS)),
    Setting("scheduler_log_level", "", "the scheduler's log level (empty: log_level)",
            choices=("", *LOG_LEVELS)),
    Setting("secret_permissions", "refuse",
            "what a group- or world-accessible secret file or directory does: 'refuse' to "
            "load it, or only 'warn' (for file systems without Unix modes)",
            choices=CHOICES_PERMISSIONS),
) + REACH_SETTINGS

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}
ENV_PREFIX = "DIWAN_"
CONFIG_FILE = "diwan.toml"
_INT = re.compile(r"[+-]?[0-9]+")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _bad(s: Setting, value: Any, source: str) -> BadInput:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return BadInput(f"{source}: {s.name} must be {s.allowed()}, not {shown}", field=s.name)


def _is_host(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        pass
    name = text[:-1] if text.endswith(".") else text
    return 0 < len(name) <= 253 and all(_LABEL.fullmatch(part) for part in name.split("."))


def _is_url(text: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and parts.hostname is not None
            and _is_host(parts.hostname) and parts.path in ("", "/") and not parts.query
            and not parts.fragment and parts.username is None and (port is None or port > 0))


def _coerce(name: str, value: Any, source: str, *, text: bool = False) -> Any:
    """``value`` as setting ``name``'s type, checked against its range; else :class:`BadInput`.

    With ``text`` (environment variables) a string is parsed; otherwise
    (TOML, overrides) the value must already have the setting's type: ``1.5``,
    ``true`` or ``"10"`` is not an integer.
    """
    s = BY_NAME[name]
    if isinstance(s.default, bool):
        if isinstance(value, bool):
            return value
        word = value.strip().lower() if text and isinstance(value, str) else None
        if word in ("1", "true", "yes", "on"):
            return True
        if word in ("0", "false", "no", "off"):
            return False
        raise _bad(s, value, source)
    if isinstance(s.default, int):
        if text and isinstance(value, str) and _INT.fullmatch(value.strip()):
            number = int(value.strip())
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            raise _bad(s, value, source)
        if s.low is None or s.high is None or not s.low <= number <= s.high:
            raise _bad(s, value, source)
        return number
    if not isinstance(value, str):
        raise _bad(s, value, source)
    if (s.choices and value not in s.choices) or (s.kind == "host" and not _is_host(value)) \
            or (s.kind == "url" and value and not _is_url(value)) \
            or (s.kind == "hosts" and not all(_is_host(h.strip()) for h in value.split(",")
                                              if h.strip())):
        raise _bad(s, value, source)
    return value


def load(data_dir: Path, overrides: Mapping[str, Any] | None = None,
         environ: Mapping[str, str] | None = None, *, fresh: bool = False) -> dict[str, Any]:
    """Return the effective settings for ``data_dir``: a dict of every setting's name to value.

    Layers, later winning: :data:`DEFAULTS`, ``<data_dir>/diwan.toml`` (as the server
    started with it in a gunicorn worker unless ``fresh``: :mod:`.settingsfile`), ``DIWAN_<NAME>``
    variables of ``environ`` (default ``os.environ``), then ``overrides`` (keys that are not
    settings pass through unchecked, for the apps' own config). Each value is checked where
    it comes in (:func:`_coerce`: type and the table's range), then the settings that only
    make sense together (:func:`_check`: distinct ports, a feed page above the post limit,
    the admin API on loopback unless ``admin_expose``). Raises :class:`BadInput` (``field``
    the setting) with one line naming the setting, its allowed values, the value given and
    where it came from (the file, the variable or ``override``), also for TOML that does not
    parse, an unknown key in the file, or a file that cannot be read.
    """
    env = os.environ if environ is None else environ
    cfg = dict(DEFAULTS)
    sources = dict.fromkeys(DEFAULTS, "default")
    path = data_dir / CONFIG_FILE
    from_file = settingsfile.read(path, fresh=fresh)  # as a server started with it if pinned
    if from_file is not None:
        for key, value in from_file.items():
            if key not in DEFAULTS:
                raise BadInput(f"{path}: unknown setting {key!r} (a typo?)", field=key)
            cfg[key], sources[key] = _coerce(key, value, str(path)), str(path)
    for key in DEFAULTS:
        env_name = ENV_PREFIX + key.upper()
        if env_name in env:
            cfg[key], sources[key] = _coerce(key, env[env_name], env_name, text=True), env_name
    for key, value in (overrides or {}).items():
        if key in DEFAULTS:
            cfg[key], sources[key] = _coerce(key, value, "override"), "override"
        else:
            cfg[key] = value
    _check(cfg, sources)
    return cfg


def min_response_bytes(max_post_bytes: int) -> int:
    """The smallest ``max_response_bytes`` that holds one post of ``max_post_bytes``.

    A response adds to a post its message 2 (the owner's .pub, at most 2 KiB, with
    its 50 bytes of framing), a record head and end record, and 18 bytes per
    65,519-byte transport message (docs/protocol.md, "The response").
    """
    return max_post_bytes + max_post_bytes // 1024 + 4096


def _check(cfg: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """Settings that only make sense together."""
    def bad(name: str, message: str) -> BadInput:
        return BadInput(f"{sources[name]}: {name} {message}", field=name)

    if not is_loopback(cfg["admin_host"]) and not cfg["admin_expose"]:
        raise bad("admin_host", f"is {cfg['admin_host']!r}, not a loopback address: the admin "
                  "token and every private post would cross the network in plain HTTP. Bind "
                  "it to 127.0.0.1 (and tunnel), or set admin_expose = true to do it anyway")
    if cfg["admin_port"] == cfg["peer_port"]:
        raise bad("peer_port", f"must differ from admin_port (both {cfg['peer_port']})")
    if cfg["max_response_bytes"] < min_response_bytes(cfg["max_post_bytes"]):
        raise bad("max_response_bytes", f"must be at least "
                  f"{min_response_bytes(cfg['max_post_bytes'])}: max_post_bytes plus the "
                  "exchange's overhead (a feed page must hold at least one post)")


def exposure_warning(cfg: Mapping[str, Any]) -> str | None:
    """The warning every start logs when the admin API is deliberately off loopback."""
    if is_loopback(cfg["admin_host"]):
        return None
    return (f"the admin API listens on {cfg['admin_host']} (admin_expose = true): "
            "anyone who can reach it can try the token, and without TLS in front the token "
            "and private posts cross the network readable")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        if not isinstance(s.default, bool):
            lines.append(f"# allowed: {s.allowed()}")
        lines += [f"# {s.help}", f"{s.name} = {value}", ""]
    return "\n".join(lines)


def data_dir_from_env(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data directory as an absolute path: ``explicit``, else ``DIWAN_DATA_DIR``, else
    the current directory. The directory need not exist; nothing is checked or raised."""
    raw = explicit or os.environ.get("DIWAN_DATA_DIR") or os.getcwd()
    return Path(raw).resolve()
