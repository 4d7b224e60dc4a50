"""Logging for pixtag, with secrets scrubbed from every record.

Any value passed to :func:`register_secret` (the settings register the Pixelfed token) is
replaced by ``***`` in the message, its arguments and the formatted traceback of every record
that passes through a handler configured here or through the root logger.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

REDACTED = "***"
_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Never let ``value`` reach a log line (values shorter than 4 chars are ignored)."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)
        _install_on_root()


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record so that it carries no registered secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(formatted)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()


def _install_on_root() -> None:
    root = logging.getLogger()
    for handler in root.handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    if _FILTER not in root.filters:
        root.addFilter(_FILTER)


def get_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


def set_level(level: str) -> None:
    """pixtag's own loggers at ``level`` (inside a host such as an Airflow task, whose handlers
    and root level stay as the host set them)."""
    logging.getLogger("pixtag").setLevel(level.upper())
    _install_on_root()


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (click's test runner, pytest and
    embedding programs swap it; a handler holding the first one would write to a closed file)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def setup(level: str | None = None) -> None:
    """Configure console logging once (level from ``PIXTAG_LOG_LEVEL``, default INFO)."""
    level = (level or os.environ.get("PIXTAG_LOG_LEVEL") or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        level = "INFO"  # the settings, loaded next, reject it with an error naming log_level
    root = logging.getLogger()
    if not any(getattr(h, "_pixtag", False) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._pixtag = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    # urllib3 logs full URLs at DEBUG; they carry no token (it travels in a header) but are noisy.
    logging.getLogger("urllib3").setLevel(max(logging.getLogger().level, logging.INFO))
    _install_on_root()


# --- progress bars ---------------------------------------------------------------------------
_quiet_progress = False


def quiet_progress(quiet: bool = True) -> None:
    """Turn pixtag's progress bars off (``--json``: the output is for a program) or on again."""
    global _quiet_progress
    _quiet_progress = quiet


def progress_enabled() -> bool:
    """Bars on stderr, except in ``--json`` mode and inside an Airflow task (whose log is a
    file: a bar there is thousands of lines of carriage returns)."""
    return not _quiet_progress and not os.environ.get("AIRFLOW_CTX_DAG_ID")


def progress(iterable: Any = None, **kwargs: Any) -> Any:
    """A ``tqdm`` bar on stderr (``total``, ``desc``, ``unit``, ...), disabled where
    :func:`progress_enabled` says so."""
    from tqdm import tqdm

    kwargs.setdefault("disable", not progress_enabled())
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("leave", True)
    return tqdm(iterable, **kwargs)
