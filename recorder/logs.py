"""Collector logging: stdlib logging to stderr, each line naming account, region, pipeline.

`text`: `2026-11-01T00:00:00Z WARNING account=1234 region=us-east-1 pipeline=web: ...`
`json`: one object per line with time, level, account, region, pipeline, message.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

LOGGER = "cprec"
_FIELDS = ("account", "region", "pipeline")


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        where = " ".join(f"{k}={getattr(record, k)}" for k in _FIELDS if getattr(record, k, None))
        where = f" {where}:" if where else ""
        line = f"{_time(record)} {record.levelname}{where} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        obj = {"time": _time(record), "level": record.levelname}
        obj.update({k: getattr(record, k, None) for k in _FIELDS})
        obj["message"] = record.getMessage()
        if record.exc_info:
            obj["traceback"] = self.formatException(record.exc_info)
        return json.dumps(obj)


@contextmanager
def configure_logging(*, quiet: bool, log_format: str = "text") -> Iterator[logging.Logger]:
    """Send `cprec` log records to the current stderr for the block (errors only if quiet)."""
    logger = logging.getLogger(LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.ERROR if quiet else logging.INFO)
    logger.propagate = False
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate


def logger_for(**where: str | None) -> logging.LoggerAdapter:
    """A logger whose lines name `account`, `region` and `pipeline`."""
    return logging.LoggerAdapter(logging.getLogger(f"{LOGGER}.collect"), dict(where))
