# Gunicorn settings for both Diwan apps (plain settings; see docs/architecture.md),
# loaded as --config python:app.run.gunicorn_conf.
# DIWAN_ROLE (admin or peer) picks which bind address from the data directory's
# settings (diwan.toml, then DIWAN_* variables); the app code never binds.
import os
import sys

from app.core.base import lifeline, mallocarenas, runstate, settingsfile
from app.core.base.config import CONFIG_FILE, exposure_warning, load
from app.core.base.datadir import open_datadir, server_root
from app.core.base.errors import DiwanError
from app.core.base.lifeline import bind_hosts
from app.core.base.logsetup import gunicorn_logconfig
from app.core.base.permissions import enforce
from app.run import acceptbalance

role = os.environ.get("DIWAN_ROLE", "admin")
if role not in ("admin", "peer"):
    raise SystemExit(f"DIWAN_ROLE must be admin or peer, not {role!r}")
try:  # a bad setting or an open secret stops the process with one line (no traceback)
    _data_dir = server_root()  # DIWAN_DATA_DIR, or a data directory here; never a checkout
    _settings = load(_data_dir)
    enforce(_data_dir, _settings)
except DiwanError as exc:
    raise SystemExit(f"diwan-{role}: error: {exc.message}") from None
# Workers forked later (a replacement too) read diwan.toml as it is now, not as it may be
# edited meanwhile: app/core/base/settingsfile.py.
settingsfile.pin(_data_dir / CONFIG_FILE)
# Before the workers are forked (they inherit it): app/core/base/mallocarenas.py.
mallocarenas.limit(_settings["malloc_arena_max"])
if role == "admin" and (_warning := exposure_warning(_settings)):
    print(f"diwan-admin: WARNING: {_warning}", file=sys.stderr, flush=True)

# The peer port's default host "::" is bound dual-stack where the system allows (IPv4 and
# IPv6 on one socket; a second 0.0.0.0 socket where sockets are IPv6-only; 0.0.0.0 alone
# without IPv6): lifeline.bind_hosts. An IPv6 address such as ::1 is bound as [::1]:port.
bind = [f"[{h}]:{_settings[role + '_port']}" if ":" in h else f"{h}:{_settings[role + '_port']}"
        for h in bind_hosts(str(_settings[role + "_host"]).strip("[]"))]
# The peer port faces strangers: its worker reads whole requests in the event loop, so
# slow clients never hold a thread, and closes those not sent within client_deadline
# (app/web/worker.py, docs/architecture.md). The admin app keeps plain gthread
# (AdminWorker only answers gunicorn's own errors as JSON, like the apps).
worker_class = f"app.web.worker.{role.capitalize()}Worker"
workers = _settings["workers"]
threads = _settings["threads"]
proc_name = f"diwan-{role}"
timeout = 60
graceful_timeout = 10
keepalive = 5
# Request line and header limits (bodies are limited by the apps themselves).
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190
# Logs go to the terminal (honcho) or the journal (systemd). The access log
# carries method, path, status and size only: never bodies or Authorization.
accesslog = "-"
errorlog = "-"
logconfig_dict = gunicorn_logconfig(_settings, role)
# The master's pid, for 'diwan status' and 'diwan stop' (app/core/base/runstate.py).
for _dir in (_data_dir, os.path.join(_data_dir, "state"), os.path.join(_data_dir, "state", "run")):
    os.makedirs(_dir, mode=0o700, exist_ok=True)  # one at a time: each 0700 from creation
pidfile = os.path.join(_data_dir, "state", "run", f"{role}.pid")
# %(U)s is the path without its query string: a login code (?code=) never reaches a log.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'
# The path is decoded: control characters in it are escaped so no line can be forged.
logger_class = "app.run.accesslog.SafeLogger"


def on_starting(server):  # noqa: ARG001 - gunicorn's hook, before binding
    """Refuse a port in use in one line; hold the node's running lock; die with diwan up."""
    try:
        lifeline.check_port(_settings[role + "_host"], _settings[role + "_port"], role + "_port")
    except lifeline.PortInUse as exc:
        raise SystemExit(f"error: {exc.message}") from None
    _held.append(lifeline.hold_running(open_datadir(_data_dir).locks))
    lifeline.exit_with_supervisor()
    if role == "peer":  # the workers' open connections, shared: app/run/acceptbalance.py
        acceptbalance.share()


def pre_fork(server, worker):  # noqa: ARG001 - gunicorn's hook, in the master
    """A peer worker's row of the shared connection counts (app/run/acceptbalance.py)."""
    acceptbalance.assign(worker)


def child_exit(server, worker):  # noqa: ARG001 - gunicorn's hook, in the master
    """A dead peer worker's connections no longer count (app/run/acceptbalance.py)."""
    acceptbalance.forget(worker)


def when_ready(server):  # noqa: ARG001 - gunicorn's hook, in the master once bound
    """Record where this app listens, for 'diwan status' and 'diwan open' (runstate)."""
    runstate.record_bind(open_datadir(_data_dir), role, _settings[role + "_host"],
                         _settings[role + "_port"])


_held = []  # the running lock's fd, open for the life of the master and its workers
