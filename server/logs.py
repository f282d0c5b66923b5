"""Structured logging: one JSON object per line (or plain text for a developer's terminal).

Anything passed as ``extra={...}`` becomes a field. Never log tokens, codes, passwords, PINs or
residents' phone numbers: log ids instead.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")
        )
        line = f"{self.formatTime(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if extras:
            line += f" [{extras}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class MalformedRequestFilter(logging.Filter):
    """aiohttp's protocol layer logs a request it cannot parse (a scanner's NUL in a header, a
    garbled request line) at ERROR with a traceback, although it answers a correct 400. That is the
    client's fault, not something an operator must act on: it becomes one WARNING line with the
    client's address and the reason. Real server errors in that logger stay ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError) or not 400 <= (exc.code or 0) < 500:
            return True
        client = record.args[0] if isinstance(record.args, tuple) and record.args else "unknown"
        # The reason can quote the client's bytes: escaped and cut, so it stays one short line.
        reason = (exc.message or type(exc).__name__).encode("unicode_escape").decode("ascii")[:200]
        record.msg = "malformed request from %s: %s"
        record.args = (str(client), reason)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text = None, None
        record.client = str(client)
        return True


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's own access log would print query strings (which can hold codes); ours does not.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    server_logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestFilter) for f in server_logger.filters):
        server_logger.addFilter(MalformedRequestFilter())
    for noisy in ("aioice", "aiortc", "engineio", "socketio"):
        logging.getLogger(noisy).setLevel(max(logging.getLogger().level, logging.WARNING))
