"""Structured JSON logs with the current trace and span ids, and no PII (R-OBS-2, issue 6).

One JSON object per line on stderr: time, level, logger, service, message, trace_id,
span_id and, for exceptions, the exception type and the stack as ``file:line:function``
frames. Defence in depth: the code base logs only PII-free messages, and the formatter
still never prints an exception's message, ``extra=`` fields, or message arguments that
could carry free text: numbers and identifier-like strings (method names, reason codes,
file paths) are interpolated, anything else — text with spaces, strings starting with a
digit such as a date or an identity number — becomes ``<redacted>``.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any, Final

from opentelemetry import trace

REDACTED: Final = "<redacted>"
_SAFE_TEXT = re.compile(r"[A-Za-z_/.][A-Za-z0-9_.:/-]{0,199}")
_MAX_FRAMES: Final = 30


def _safe_arg(value: object) -> object:
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, str) and _SAFE_TEXT.fullmatch(value):
        return value
    return REDACTED


def safe_message(record: logging.LogRecord) -> str:
    """The record's message with only PII-safe arguments interpolated."""
    template = str(record.msg)
    args = record.args
    if not args:
        return template
    safe: tuple[object, ...] | dict[str, object]
    if isinstance(args, Mapping):
        safe = {key: _safe_arg(value) for key, value in args.items()}
    else:
        safe = tuple(_safe_arg(value) for value in args)
    try:
        return template % safe
    except (TypeError, ValueError, KeyError):
        return template


class JsonFormatter(logging.Formatter):
    """Formats records as PII-free JSON lines carrying the current trace context."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self._service = service_name

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "service": self._service,
            "message": safe_message(record),
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _, tb = record.exc_info
            entry["exception_type"] = exc_type.__name__
            entry["stack"] = [
                f"{os.path.basename(frame.filename)}:{frame.lineno}:{frame.name}"
                for frame in traceback.extract_tb(tb, limit=_MAX_FRAMES)
            ]
        return json.dumps(entry, separators=(",", ":"))


def configure_logging(
    service_name: str, level: int | str | None = None, stream: IO[str] | None = None
) -> None:
    """Install the JSON formatter on the root logger (replacing its handlers).

    ``level`` defaults to ``$LEIS_LOG_LEVEL`` or ``INFO``; ``stream`` to stderr.
    """
    chosen = level if level is not None else os.environ.get("LEIS_LOG_LEVEL", "INFO")
    if isinstance(chosen, str):
        numeric = logging.getLevelName(chosen.strip().upper())
        if not isinstance(numeric, int):
            raise ValueError(f"unknown log level {chosen!r} (use DEBUG, INFO, WARNING, ERROR or CRITICAL)")
        chosen = numeric
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service_name))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(chosen)
