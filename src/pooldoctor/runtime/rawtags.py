"""Statement tags on raw driver connections (``tag_sql``): psycopg 3 and PyMySQL cursors.

A raw connection the guard holds (opened by user code, not by a pool) gets the same comment as
a SQLAlchemy checkout (``runtime/sqltags.py``): host, pid, driver, and the site that opened it.
The cursor classes' ``execute`` (and psycopg's ``executemany``) are wrapped only while tagging
is on, when the driver is imported (now, or later through ``runtime/dbapi.py``'s import hook);
connections without a hold (a pool's, SQLAlchemy's) pass through untouched.

Not tagged: sqlite3 (no server to read it), psycopg2, mysqlclient and mysql-connector (their
cursors are C types or would need a cursor factory), and ``psycopg.sql.Composed`` statements.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from ..guard import GUARD
from .drivers.core import HOLD, Patcher

_lock = threading.Lock()
_patchers: dict[str, Patcher] = {}


def _tagged(h: Any, query: str, interpolated: bool) -> str:
    """``query`` tagged for the hold ``h`` of a raw connection (never raises)."""
    try:
        if h.ended or not query:
            return query
        from .sqltags import tag

        return tag(query, h, interpolated)
    except Exception:
        GUARD.internal_error("sql tag (raw)")
        return query


# The wrappers look at the connection's hold first: a pool's connection (SQLAlchemy's) has none
# and passes with one attribute read.

def _psycopg_execute(orig: Callable[..., Any]) -> Callable[..., Any]:
    def execute(self: Any, query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        h = getattr(self._conn, HOLD, None)
        if h is not None and type(query) is str:
            query = _tagged(h, query, params is not None)
        return orig(self, query, params, *args, **kwargs)

    return execute


def _psycopg_executemany(orig: Callable[..., Any]) -> Callable[..., Any]:
    def executemany(self: Any, query: Any, params_seq: Any, *args: Any, **kwargs: Any) -> Any:
        h = getattr(self._conn, HOLD, None)
        if h is not None and type(query) is str:
            query = _tagged(h, query, True)
        return orig(self, query, params_seq, *args, **kwargs)

    return executemany


def _pymysql_execute(orig: Callable[..., Any]) -> Callable[..., Any]:
    # executemany() goes through execute(): once per row, or once for a multi-row INSERT
    # that it built itself (and then interpolated: args None)
    def execute(self: Any, query: Any, args: Any = None) -> Any:
        h = getattr(self.connection, HOLD, None)
        if h is not None and type(query) is str:
            query = _tagged(h, query, args is not None)
        return orig(self, query, args)

    return execute


def _patch_psycopg(p: Patcher) -> None:
    cls = sys.modules["psycopg"].Cursor
    p.wrap(cls, "execute", _psycopg_execute(cls.execute))
    p.wrap(cls, "executemany", _psycopg_executemany(cls.executemany))


def _patch_pymysql(p: Patcher) -> None:
    cls = sys.modules["pymysql.cursors"].Cursor
    p.wrap(cls, "execute", _pymysql_execute(cls.execute))


_DRIVERS: dict[str, tuple[str, Callable[[Patcher], None]]] = {
    "psycopg": ("psycopg", _patch_psycopg),
    "pymysql": ("pymysql.cursors", _patch_pymysql),
}


def install(label: str | None = None) -> None:
    """Wrap the cursors of ``label``'s driver (or of every imported one) when the raw driver
    guard wraps that driver (without it no raw connection has a hold); idempotent."""
    from .dbapi import installed

    guarded = set(installed())
    with _lock:
        for name, (module, patch) in _DRIVERS.items():
            if (label is not None and name != label) or name in _patchers \
                    or module not in sys.modules or name not in guarded:
                continue
            p = Patcher()
            try:
                patch(p)
            except Exception:
                p.undo()
                GUARD.internal_error(f"sql tags for {name}")
                continue
            _patchers[name] = p


def uninstall() -> None:
    with _lock:
        for p in _patchers.values():
            p.undo()
        _patchers.clear()
