"""sqlite3: ``connect`` is a built-in function and ``sqlite3.Connection`` has no weak references.

The wrapped ``connect`` passes ``factory=`` a cached subclass of the factory the caller chose
(default ``sqlite3.Connection``); the subclass ends the hold in ``close()`` and counts cursors.
``with conn:`` does not close a sqlite3 connection (it only commits), so it does not end the hold.
Old references (``from sqlite3 import connect``) are rebound in loaded modules' globals.
"""

from __future__ import annotations

import sys
from typing import Any

from ...guard import GUARD
from .core import (
    MARK_DEFAULTS,
    Patcher,
    counting_cursors,
    ending_hold,
    guarded_subclass,
    open_hold,
    pool_owned,
)

LABEL = "sqlite3"
MODULE = "sqlite3"
_FACTORY_POS = 4  # connect(database, timeout, detect_types, isolation_level, check_same_thread,
#                            factory, ...): index of factory in *args after database


def _cursor_ns(base: type) -> dict[str, Any]:
    def close(self: Any) -> None:
        self._pd_closed = True
        base.close(self)  # type: ignore[attr-defined]

    return {"close": close}


def _connection_ns(base: type) -> dict[str, Any]:
    import sqlite3

    def cursor(self: Any, factory: Any = sqlite3.Cursor) -> Any:
        return base.cursor(self, guarded_subclass(factory, "cursor", _cursor_ns))  # type: ignore[attr-defined]

    return {"close": ending_hold(base.close),  # type: ignore[attr-defined]
            "cursor": counting_cursors(cursor), **MARK_DEFAULTS}


def patch(p: Patcher) -> None:
    sqlite3 = sys.modules["sqlite3"]
    dbapi2 = sys.modules.get("sqlite3.dbapi2", sqlite3)
    original = dbapi2.connect
    default_factory = sqlite3.Connection

    def connect(database: Any, *args: Any, **kwargs: Any) -> Any:
        if not GUARD.active or pool_owned():
            return original(database, *args, **kwargs)
        try:
            if len(args) > _FACTORY_POS:
                factory = args[_FACTORY_POS]
                args = (*args[:_FACTORY_POS],
                        guarded_subclass(factory, "connection", _connection_ns),
                        *args[_FACTORY_POS + 1:])
            else:
                factory = kwargs.get("factory", default_factory)
                kwargs["factory"] = guarded_subclass(factory, "connection", _connection_ns)
        except Exception:
            GUARD.internal_error("sqlite3 connect")
            return original(database, *args, **kwargs)
        conn = original(database, *args, **kwargs)
        if getattr(type(conn), "_pd_guarded", False):
            open_hold(conn, LABEL, server=False)
        return conn

    connect.__doc__ = original.__doc__
    connect.__wrapped__ = original  # type: ignore[attr-defined]
    for mod in {sqlite3, dbapi2}:
        p.set(mod, "connect", connect)
    p.rebind(original, connect)
