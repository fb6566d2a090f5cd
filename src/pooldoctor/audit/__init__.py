"""The SQL audit log: :func:`enable` / :func:`disable` (also used by ``pooldoctor run``)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from .log import LOGGER_NAME, AuditLog
from .redact import redact

__all__ = ["LOGGER_NAME", "AuditLog", "active", "disable", "enable", "redact"]

_lock = threading.Lock()
_current: AuditLog | None = None


def enable(path: str | None = None, *, params: bool = False, sample: float = 1.0,
           slow_ms: float | None = None, engine: Any = None,
           logger: logging.Logger | str | None = None) -> AuditLog:
    """Log every statement as a JSON line, to ``path`` or (no path) to the ``pooldoctor.audit``
    logger at INFO (or to ``logger``).

    Literals in the SQL are always replaced with ``?``; bound parameters are logged only with
    ``params=True``. A statement is written when it failed, when it took ``slow_ms`` or more,
    or when sampling picks it (``sample``: 1.0 = all, 0.0 = none but slow and failed ones).
    With ``engine``, only that engine; otherwise every engine of the process. Replaces the
    configuration enabled before; returns the new one.
    """
    global _current
    log = AuditLog(path, params=params, sample=sample, slow_ms=slow_ms, engine=engine,
                   logger=logger)
    with _lock:
        old, _current = _current, log
    if old is not None:
        old.detach()
    return log.attach()


def disable() -> None:
    """Stop the audit log enabled by :func:`enable` and close its file."""
    global _current
    with _lock:
        old, _current = _current, None
    if old is not None:
        old.detach()


def active() -> AuditLog | None:
    """The audit configuration in force, if any (for raw DB-API driver wrappers)."""
    return _current
