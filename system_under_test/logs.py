"""Structured logs: one JSON object per line on stdout, which supervisord or kubectl collects."""

from __future__ import annotations

import logging
import sys
import time

import orjson

__all__ = ["setup_logging"]


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(time.time(), 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class _OneLineTransientFailures(logging.Filter):
    """A dependency that is down makes every retry of every activity fail: log each as one line
    (what failed and why), not a traceback, or an outage buries the logs."""

    def __init__(self, transient: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self._transient = transient

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], self._transient):
            error = record.exc_info[1]
            record.fields = {
                **getattr(record, "fields", {}),
                "error": f"{type(error).__name__}: {error}",
            }
            record.exc_info = None
            record.exc_text = None
        return True


def setup_logging(
    service: str, level: str = "INFO", transient: tuple[type[BaseException], ...] = ()
) -> logging.Logger:
    """JSON logs on stdout; exceptions of the `transient` types are logged without traceback."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_JsonFormatter())
    if transient:
        handler.addFilter(_OneLineTransientFailures(transient))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger(service)
