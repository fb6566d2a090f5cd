"""psycopg2.pool: ``SimpleConnectionPool``, ``ThreadedConnectionPool`` (any subclass of
``AbstractConnectionPool``): ``getconn()`` to ``putconn()`` is a checkout.

The pool never waits: when it is exhausted ``getconn()`` raises ``PoolError("connection pool
exhausted")``, which gets the holders. The pool keeps the connections in use alive (PD102
does not apply). ``getconn(key)`` again with a held key returns the same connection: one hold.
"""

from __future__ import annotations

import sys
from typing import Any

from ...guard import GUARD
from ..drivers.core import Patcher
from .protocol import PoolStats, checkin, checkout, stats_of, timed_out

LABEL = "psycopg2.pool"
MODULE = "psycopg2.pool"


def _figures(pool: Any) -> dict[str, Any]:
    return {"min_size": pool.minconn, "max_size": pool.maxconn, "in_use": len(pool._used),
            "idle": len(pool._pool)}


def _stats(pool: Any) -> PoolStats:
    return stats_of(pool, LABEL, _figures)


def patch(p: Patcher) -> None:
    mod = sys.modules["psycopg2.pool"]
    base = mod.AbstractConnectionPool
    pool_error = mod.PoolError
    getconn, putconn = base._getconn, base._putconn

    def _getconn(self: Any, key: Any = None) -> Any:
        if not GUARD.active:
            return getconn(self, key)
        try:
            conn = getconn(self, key)
        except pool_error as e:
            if "exhausted" in str(e):
                try:
                    st = _stats(self)
                except Exception:
                    GUARD.internal_error("psycopg2.pool exhausted")
                else:
                    timed_out(st, e)
            raise
        try:
            checkout(_stats(self), conn)
        except Exception:
            GUARD.internal_error("psycopg2.pool checkout")
        return conn

    def _putconn(self: Any, conn: Any = None, key: Any = None, close: bool = False) -> None:
        if GUARD.active:
            try:
                checkin(conn if conn is not None else self._used.get(key))
            except Exception:
                GUARD.internal_error("psycopg2.pool checkin")
        putconn(self, conn, key, close)

    p.wrap(base, "_getconn", _getconn)
    p.wrap(base, "_putconn", _putconn)
    simple = mod.SimpleConnectionPool  # binds the functions themselves at class creation
    if simple.__dict__.get("getconn") is getconn:
        p.set(simple, "getconn", _getconn)
    if simple.__dict__.get("putconn") is putconn:
        p.set(simple, "putconn", _putconn)
