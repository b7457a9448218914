"""Process-wide logging for long-running commands (`ivrgate serve`): text lines, or JSON lines.

    IVRGATE_SERVER__LOG_FORMAT=json ivrgate serve
    {"ts": "2026-11-24T12:00:00.123Z", "level": "INFO", "logger": "api.runtime.worker", "msg": "...", "pid":
    4242}

JSON lines are for log collectors (journald, Loki, Elasticsearch): one object per record, with the
time in UTC (ISO 8601, milliseconds), the level, the logger, the formatted message, the process id,
any `extra={...}` fields the caller attached, and the traceback as one string when there is one.
uvicorn's own loggers are routed through the same handler, so every line of the process has one shape.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")

_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
"""Attributes every LogRecord has; anything else on a record came from `extra=`."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and key not in entry and key != "color_message":
                plain = isinstance(value, str | int | float | bool | type(None))
                entry[key] = value if plain else repr(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def make_formatter(log_format: str) -> logging.Formatter:
    """The formatter of a `server.log_format` value: 'json' or 'text'."""
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"log format must be text or json, not {log_format!r}")


def configure_logging(
    log_format: str = "text", level: str | int = "INFO", stream: TextIO | None = None
) -> None:
    """Send every record of the process (ours, uvicorn's, alembic's) to one handler on `stream`
    (stderr by default) in `log_format`, at `level` and above. Replaces handlers set up before."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(make_formatter(log_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
