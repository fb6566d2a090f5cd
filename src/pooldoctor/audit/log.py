"""The SQL audit log: one JSON line per statement, values removed.

Built on SQLAlchemy's engine events (``before_cursor_execute``, ``after_cursor_execute``,
``handle_error``). A statement is written when it failed, when it took at least ``slow_ms``
(if set), or when sampling picks it (probability ``sample``). The site in the code is captured
only for statements that are written. See docs/audit.md for the fields.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime, timezone
from types import FrameType
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from ..findings import Site
from ..guard import GUARD
from ..runtime.server_ids import server_id
from ..sinks import JsonLinesSink
from ..sites import capture, is_internal_file, site_of
from ..urls import mask_text, mask_url
from .redact import redact, redact_message

LOGGER_NAME = "pooldoctor.audit"
MAX_STATEMENT = 10_000  # characters of redacted SQL kept per event
MAX_INPUT = 100_000  # characters of a statement redacted (bounds the cost of huge ones)
MAX_PARAM = 500  # characters kept per parameter value (params=True)
MAX_PARAM_SETS = 100  # parameter sets kept for executemany (params=True)
_T0 = "_pd_audit_t0"
_pid = os.getpid()


def _after_fork() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork)


def _site() -> Site | None:
    """The first user frame above :meth:`AuditLog.record`'s caller or the caller itself
    (cheap: no stack is kept, the line is read directly)."""
    f: FrameType | None = sys._getframe(2)
    while f is not None:
        if not is_internal_file(f.f_code.co_filename):
            return Site(f.f_code.co_filename, f.f_lineno, f.f_code.co_name)
        f = f.f_back
    return site_of(capture(1, 1))  # asyncio: the user's frames are on the parent greenlet


class _FileWriter(JsonLinesSink):
    """Appends whole lines to a file; safe for many processes (see sinks.JsonLinesSink)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.open()  # a bad path fails at enable(), not at the first statement

    def __call__(self, line: str, event: dict[str, Any]) -> None:
        self.write_line(line)


class _LoggerWriter:
    """Sends each line to a ``logging`` logger at INFO; the event dict is in ``extra``."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def __call__(self, line: str, event: dict[str, Any]) -> None:
        self.logger.info("%s", line, extra={"audit": event})

    def close(self) -> None:
        pass


_second: list[Any] = [None, ""]  # the last whole second formatted, and its text


def _iso(ts: float) -> str:
    """UTC ISO 8601 with milliseconds (the seconds part is cached: one call per second)."""
    sec = int(ts)
    last = _second
    if last[0] != sec:
        last[1] = datetime.fromtimestamp(sec, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        last[0] = sec
    return f"{last[1]}.{int((ts - sec) * 1000):03d}Z"


_encode = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":")).encode


_masked: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _pool_label(conn: Any) -> str | None:
    """The guard's label of the pool, else the engine's masked URL (cached per engine)."""
    try:
        engine = conn.engine
        info = engine.pool.__dict__.get("_pooldoctor")
        if info is not None:
            return str(info.label)
        label = _masked.get(engine)
        if label is None:
            label = _masked[engine] = mask_url(engine.url)
        return label
    except Exception:
        return None


def _connection_id(conn: Any) -> int | None:
    try:
        fairy = getattr(conn, "_dbapi_connection", None)
        if fairy is None:
            return None
        rec = getattr(fairy, "_connection_record", None)
        if rec is None:
            return server_id(fairy.driver_connection)
        d = rec.__dict__
        sid = d.get("_pd_server_id")  # set by the guard
        if isinstance(sid, int):
            return sid
        driver = fairy.driver_connection
        cached = d.get("_pd_audit_sid")  # (driver connection id, server id)
        if cached is None or cached[0] != id(driver):
            cached = d["_pd_audit_sid"] = (id(driver), server_id(driver))
        return cached[1]  # type: ignore[no-any-return]
    except Exception:
        return None


def _value(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float)):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        return "0x" + b[:MAX_PARAM // 2].hex() + ("..." if len(b) > MAX_PARAM // 2 else "")
    s = v if isinstance(v, str) else repr(v)
    return s if len(s) <= MAX_PARAM else s[:MAX_PARAM] + "..."


def _params(parameters: Any, many: bool) -> Any:
    def one(p: Any) -> Any:
        if isinstance(p, dict):
            return {str(k): _value(v) for k, v in p.items()}
        if isinstance(p, (list, tuple)):
            return [_value(v) for v in p]
        return _value(p)

    if many and isinstance(parameters, (list, tuple)):
        return [one(p) for p in parameters[:MAX_PARAM_SETS]]
    return one(parameters)


def _error_fields(exc: BaseException, params: bool, sql: str) -> dict[str, Any]:
    """Type, SQLSTATE, MySQL errno and the message (values removed unless ``params``)."""
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    text = str(exc.args[1]) if (len(getattr(exc, "args", ())) > 1
                                and isinstance(exc.args[0], int)) else str(exc)
    message = mask_text(text.strip() if params else redact_message(text, sql))
    out: dict[str, Any] = {"type": type(exc).__name__, "code": code, "message": message}
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], int) and not isinstance(args[0], bool):
        out["errno"] = args[0]  # MySQL/MariaDB error number
    return out


_HAS_EVENTS = "_has_events"
_UNSET = object()


def _flagged_by(target: Any) -> list[Any]:
    """What listening on ``target`` marks as having events for good (``_has_events``): the
    engine (or the Engine class) and its dialect (``handle_error`` is a dialect event)."""
    from sqlalchemy.engine.interfaces import Dialect

    return [target, Dialect if isinstance(target, type) else target.dialect]


def _listeners_left(obj: Any) -> bool:
    """Does ``obj`` (a class or an instance) still have any event listener? True when unsure."""
    try:
        dispatch = obj.dispatch
        for name in dispatch._event_names:
            listeners = getattr(dispatch, name)
            levels = getattr(listeners, "_clslevel", None)  # a class: listeners per subclass
            if any(len(v) for v in levels.values()) if levels is not None else len(listeners):
                return True
        return False
    except Exception:
        return True


def _restore_flags(flags: list[tuple[Any, Any]]) -> None:
    """Give back the bare statement path: SQLAlchemy sets ``_has_events`` at the first listener
    and never clears it, so every later statement would dispatch events to nobody."""
    for obj, before in flags:
        if before is not True and not _listeners_left(obj):
            try:
                if before is _UNSET:
                    delattr(obj, _HAS_EVENTS)
                else:
                    setattr(obj, _HAS_EVENTS, before)
            except Exception:
                pass


class AuditLog:
    """One audit configuration, attached to every engine (or to one)."""

    def __init__(self, path: str | None = None, *, params: bool = False, sample: float = 1.0,
                 slow_ms: float | None = None, engine: Any = None,
                 logger: logging.Logger | str | None = None) -> None:
        if not 0.0 <= sample <= 1.0:
            raise ValueError(f"audit sample must be between 0 and 1, got {sample!r}")
        if slow_ms is not None and slow_ms < 0:
            raise ValueError(f"audit slow_ms must be 0 or more, got {slow_ms!r}")
        self.path = path or None
        self.params = params
        self.sample = sample
        self.slow_ms = slow_ms
        self.target: Any = getattr(engine, "sync_engine", engine) if engine is not None else Engine
        self.written = 0
        self.errors = 0
        self._random: Callable[[], float] = random.random
        self._lock = threading.Lock()
        self._attached = False
        self._flags: list[tuple[Any, Any]] = []
        if self.path:
            self._write: _FileWriter | _LoggerWriter = _FileWriter(self.path)
        elif isinstance(logger, logging.Logger):
            self._write = _LoggerWriter(logger)
        else:
            self._write = _LoggerWriter(logging.getLogger(logger or LOGGER_NAME))

    # ------------------------------------------------------------------ wiring

    def attach(self) -> AuditLog:
        with self._lock:
            if not self._attached:
                self._flags = [(obj, vars(obj).get(_HAS_EVENTS, _UNSET))
                               for obj in _flagged_by(self.target)]
                event.listen(self.target, "before_cursor_execute", self._before)
                event.listen(self.target, "after_cursor_execute", self._after)
                event.listen(self.target, "handle_error", self._on_error)
                self._attached = True
        return self

    def detach(self) -> None:
        with self._lock:
            if self._attached:
                for name, fn in (("before_cursor_execute", self._before),
                                 ("after_cursor_execute", self._after),
                                 ("handle_error", self._on_error)):
                    if event.contains(self.target, name, fn):
                        event.remove(self.target, name, fn)
                self._attached = False
                _restore_flags(self._flags)
            self._write.close()

    # ------------------------------------------------------------------ events

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                executemany: bool) -> None:
        if context is not None:
            try:
                context.__dict__[_T0] = time.perf_counter()
            except Exception:
                pass

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        try:
            t0 = context.__dict__.get(_T0) if context is not None else None
            if t0 is None:
                return
            seconds = time.perf_counter() - t0
            slow = self.slow_ms is not None and seconds * 1000 >= self.slow_ms
            if not slow and self.sample < 1.0 and self._random() >= self.sample:
                return
            rows = getattr(cursor, "rowcount", None)
            self.record(statement, seconds=seconds, dialect=conn.dialect.name,
                        pool=_pool_label(conn), connection=_connection_id(conn),
                        parameters=parameters, executemany=executemany, slow=slow,
                        rows=rows if isinstance(rows, int) and rows >= 0 else None)
        except Exception:
            GUARD.internal_error("audit statement")

    def _on_error(self, ctx: Any) -> None:
        try:
            if ctx.statement is None:
                return
            context = ctx.execution_context
            t0 = context.__dict__.get(_T0) if context is not None else None
            seconds = time.perf_counter() - t0 if t0 is not None else 0.0
            conn = ctx.connection
            self.record(ctx.statement, seconds=seconds, dialect=ctx.dialect.name,
                        pool=_pool_label(conn) if conn is not None else None,
                        connection=_connection_id(conn) if conn is not None else None,
                        parameters=ctx.parameters,
                        executemany=bool(context is not None and context.executemany),
                        error=ctx.original_exception,
                        slow=self.slow_ms is not None and seconds * 1000 >= self.slow_ms)
        except Exception:
            GUARD.internal_error("audit error")

    # ------------------------------------------------------------------ the event

    def record(self, statement: str, *, seconds: float, dialect: str | None = None,
               pool: str | None = None, connection: int | None = None, parameters: Any = None,
               executemany: bool = False, rows: int | None = None,
               error: BaseException | None = None, slow: bool = False) -> None:
        """Write one event (also the entry point for raw DB-API driver wrappers).

        ``seconds`` is the statement's duration; the site is the first frame of the program's
        own code, from the caller outwards.
        """
        now = time.time()
        sql = redact(statement if len(statement) <= MAX_INPUT else statement[:MAX_INPUT],
                     dialect)  # a cut inside a literal redacts to the end: still safe
        ev: dict[str, Any] = {
            "event": "statement",
            "time": _iso(now - seconds),
            "duration_ms": round(seconds * 1000, 3),
            "outcome": "error" if error is not None else "ok",
            "statement": sql[:MAX_STATEMENT],
        }
        if len(sql) > MAX_STATEMENT or len(statement) > MAX_INPUT:
            ev["truncated"] = True
        if error is not None:
            ev["error"] = _error_fields(error, self.params, sql)
        if rows is not None:
            ev["rows"] = rows
        if executemany:
            ev["executemany"] = True
        if slow:
            ev["slow"] = True
        if self.sample < 1.0:
            ev["sample_rate"] = self.sample
        site = _site()
        ev["site"] = site.to_dict() if site is not None else None
        ev["dialect"] = dialect
        ev["pool"] = pool
        ev["connection"] = connection
        ev["pid"] = _pid
        ev["thread"] = threading.current_thread().name
        if self.params and parameters is not None:
            ev["params"] = _params(parameters, executemany)
        line = _encode(ev)
        if self.params or error is not None:
            line = mask_text(line)
        self._write(line, ev)
        self.written += 1
        if error is not None:
            self.errors += 1
