"""Logging of the node's processes from one settings table (README "Logs").

``log_level`` and ``log_format`` (``text`` or ``json``) apply to every process;
``admin_log_level``, ``peer_log_level`` and ``scheduler_log_level`` override the
level for one. The scheduler's per-run job lines (the heartbeat every 30 s)
show only at ``debug``. Nothing here logs secrets: callers never pass them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

from .errors import BadInput

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
ROLES = ("admin", "peer", "scheduler", "cli")
TEXT_FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
JSON_FIELDS = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
# Loggers whose INFO lines are routine (each job run): shown at debug only.
CHATTY = ("apscheduler.executors.default", "apscheduler.scheduler")


def level_of(settings: Mapping[str, Any], role: str) -> str:
    """The level name for ``role`` (one of :data:`ROLES`); :class:`BadInput` if a
    setting holds something other than :data:`LEVELS`."""
    own = settings.get(f"{role}_log_level") or ""
    name = str(own or settings.get("log_level", "info")).lower()
    if name not in LEVELS:
        raise BadInput(f"log level must be one of {', '.join(LEVELS)}, not {name!r}",
                       field=f"{role}_log_level" if own else "log_level")
    return name


def format_of(settings: Mapping[str, Any]) -> str:
    """``text`` or ``json`` from ``log_format``; :class:`BadInput` otherwise."""
    name = str(settings.get("log_format", "text")).lower()
    if name not in FORMATS:
        raise BadInput(f"log_format must be text or json, not {name!r}", field="log_format")
    return name


def formatter(settings: Mapping[str, Any]) -> logging.Formatter:
    """The formatter ``log_format`` asks for (python-json-logger for ``json``)."""
    if format_of(settings) == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(JSON_FIELDS, rename_fields={"asctime": "time",
                                                         "levelname": "level",
                                                         "name": "logger"})
    return logging.Formatter(TEXT_FORMAT)


def configure(settings: Mapping[str, Any], role: str) -> None:
    """Send the process's logs to stderr at its level, in its format (call once, early)."""
    level = level_of(settings, role)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(settings))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("diwan").setLevel(level.upper())
    for name in CHATTY:
        logging.getLogger(name).setLevel("DEBUG" if level == "debug" else "WARNING")


def gunicorn_logconfig(settings: Mapping[str, Any], role: str) -> dict[str, Any]:
    """A ``logconfig_dict`` for gunicorn: its error and access logs and the app's loggers
    on stderr, at ``role``'s level, in the configured format."""
    level = level_of(settings, role).upper()
    if format_of(settings) == "json":
        fmt: dict[str, Any] = {"()": "pythonjsonlogger.json.JsonFormatter",
                               "format": JSON_FIELDS,
                               "rename_fields": {"asctime": "time", "levelname": "level",
                                                 "name": "logger"}}
    else:
        fmt = {"format": TEXT_FORMAT}
    handler = {"class": "logging.StreamHandler", "formatter": "diwan",
               "stream": "ext://sys.stderr"}
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"diwan": fmt},
        "handlers": {"stderr": handler},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO" if level in ("DEBUG", "INFO") else level,
                                "handlers": ["stderr"], "propagate": False},
            "diwan": {"level": level, "handlers": ["stderr"], "propagate": False},
        },
    }
