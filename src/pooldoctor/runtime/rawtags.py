"""Statement tags on raw driver connections (``tag_sql``): psycopg 3, psycopg2, PyMySQL,
mysqlclient and mysql-connector cursors.

A raw connection the guard holds (opened by user code, not by a pool) gets the same comment as
a SQLAlchemy checkout (``runtime/sqltags.py``): host, pid, driver, and the site that opened it.
The cursor classes' ``execute`` (and psycopg's and psycopg2's ``executemany``) are wrapped only
while tagging is on, when the driver is imported (now, or later through ``runtime/dbapi.py``'s
import hook); connections without a hold (a pool's, SQLAlchemy's) pass through untouched.
psycopg2's cursor is a C type: while tagging is on, a guarded psycopg2 connection's ``cursor()``
hands out a subclass of the cursor class asked for (``drivers/psycopg2.py``). The MySQL drivers'
``executemany`` is not wrapped: it builds a multi-row INSERT only from a statement that ends with
its VALUES clause (its other rows go through ``execute``, tagged).

Not tagged: sqlite3 (no server to read it) and ``psycopg.sql.Composed`` statements.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from ..guard import GUARD
from .drivers.core import CURSOR_CLASSES, HOLD, Patcher, guarded_subclass
from .sqltags import OTEL, _modules, tagged

_lock = threading.Lock()
_patchers: dict[str, Patcher] = {}


def _slow(h: Any, query: str, interpolated: bool) -> str:
    """``query`` tagged for the hold ``h`` of a raw connection (never raises)."""
    try:
        if h.ended or not query:
            return query
        return tagged(query, h, interpolated)
    except Exception:
        GUARD.internal_error("sql tag (raw)")
        return query


# The wrappers look at the connection's hold first: a pool's connection (SQLAlchemy's) has none
# and passes with one attribute read. The steady path is inline, as in sqltags: the site's tags
# on the hold, the tagged statement in them; _slow() the first time.

def _cursor_execute(orig: Callable[..., Any], conn_attr: str,
                    formats: bool) -> Callable[..., Any]:
    """A cursor's ``execute(query, params=None, ...)``; ``formats``: the driver applies ``%``
    formatting to the statement when there are parameters (``%%`` is one ``%``)."""

    def execute(self: Any, query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        try:
            h = getattr(getattr(self, conn_attr), HOLD, None)
        except Exception:
            h = None  # a cursor without its connection (closed; a dead weak proxy)
        if h is not None and type(query) is str:
            i = formats and params is not None
            t = h.sqltag
            q = None if t is None or OTEL in _modules else t[1 if i else 0].get(query)
            query = q if q is not None else _slow(h, query, i)
        return orig(self, query, params, *args, **kwargs)

    return execute


def _cursor_executemany(orig: Callable[..., Any], conn_attr: str) -> Callable[..., Any]:
    def executemany(self: Any, query: Any, params_seq: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            h = getattr(getattr(self, conn_attr), HOLD, None)
        except Exception:
            h = None
        if h is not None and type(query) is str:
            query = _slow(h, query, True)
        return orig(self, query, params_seq, *args, **kwargs)

    return executemany


def _patch_psycopg(p: Patcher) -> None:
    cls = sys.modules["psycopg"].Cursor
    p.wrap(cls, "execute", _cursor_execute(cls.execute, "_conn", True))
    p.wrap(cls, "executemany", _cursor_executemany(cls.executemany, "_conn"))


def _patch_pymysql(p: Patcher) -> None:
    # executemany() goes through execute(): once per row, or once for a multi-row INSERT
    # that it built itself (and then interpolated: args None)
    cls = sys.modules["pymysql.cursors"].Cursor
    p.wrap(cls, "execute", _cursor_execute(cls.execute, "connection", True))


def _patch_mysqldb(p: Patcher) -> None:
    # as PyMySQL: executemany() sends its multi-row INSERT itself (untagged), else per row
    # through execute()
    cls = sys.modules["MySQLdb.cursors"].BaseCursor
    p.wrap(cls, "execute", _cursor_execute(cls.execute, "connection", True))


def _patch_mysqlconnector(p: Patcher) -> None:
    # mysql.connector replaces %s / %(name)s itself and leaves %% alone: nothing to double.
    # executemany() runs its multi-row INSERT, or each row, through execute(). The prepared
    # cursors have their own execute() (a prepared statement: one string per site, tagged).
    for modname, names in (("mysql.connector.cursor", ("MySQLCursor", "MySQLCursorPrepared")),
                           ("mysql.connector.cursor_cext",
                            ("CMySQLCursor", "CMySQLCursorPrepared"))):
        mod = sys.modules.get(modname)
        for name in names:
            cls: Any = getattr(mod, name, None)
            if isinstance(cls, type) and "execute" in vars(cls):
                orig: Any = vars(cls)["execute"]
                p.wrap(cls, "execute", _cursor_execute(orig, "_connection", False))


def _psycopg2_cursor(base: Any) -> dict[str, Any]:
    return {"execute": _cursor_execute(base.execute, "connection", True),
            "executemany": _cursor_executemany(base.executemany, "connection")}


def _tagging_cursor_class(factory: Any) -> Any:
    """The cursor class a guarded psycopg2 connection hands out while tagging is on."""
    return guarded_subclass(factory, "sqltags", _psycopg2_cursor)


def _patch_psycopg2(p: Patcher) -> None:
    # psycopg2's cursor is a C type: the guarded connections (drivers/psycopg2.py) hand out a
    # subclass of the cursor class asked for, whose execute/executemany tag
    CURSOR_CLASSES["psycopg2"] = _tagging_cursor_class  # (uninstall() takes it away)


# the raw driver guard's label -> (the module that must be imported, patch)
_DRIVERS: dict[str, tuple[str, Callable[[Patcher], None]]] = {
    "psycopg": ("psycopg", _patch_psycopg),
    "pymysql": ("pymysql.cursors", _patch_pymysql),
    "psycopg2": ("psycopg2", _patch_psycopg2),
    "MySQLdb": ("MySQLdb.cursors", _patch_mysqldb),
    "mysql.connector": ("mysql.connector", _patch_mysqlconnector),
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
        CURSOR_CLASSES.clear()
        for p in _patchers.values():
            p.undo()
        _patchers.clear()
