# Gunicorn settings for both Diwan apps (plain settings; see docs/architecture.md).
# DIWAN_ROLE (admin or peer) picks which bind address from the data directory's
# settings (diwan.toml, then DIWAN_* variables); the app code never binds.
import os

from app.core.base.config import data_dir_from_env, load

role = os.environ.get("DIWAN_ROLE", "admin")
if role not in ("admin", "peer"):
    raise SystemExit(f"DIWAN_ROLE must be admin or peer, not {role!r}")
_settings = load(data_dir_from_env())

_host = str(_settings[role + "_host"])
if ":" in _host and not _host.startswith("["):
    _host = f"[{_host}]"  # an IPv6 address such as ::1 is bound as [::1]:port
bind = [f"{_host}:{_settings[role + '_port']}"]
worker_class = "gthread"
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
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
