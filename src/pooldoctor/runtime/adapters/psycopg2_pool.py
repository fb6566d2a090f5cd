"""psycopg2.pool: ``SimpleConnectionPool``, ``ThreadedConnectionPool`` (any subclass of
``AbstractConnectionPool``): ``getconn()`` to ``putconn()`` is a checkout.

The pool never waits: when it is exhausted ``getconn()`` raises ``PoolError("connection pool
exhausted")``, which gets the holders. The pool keeps the connections in use alive (PD102
does not apply). ``getconn(key)`` again with a held key returns the same connection: one hold.
"""

from __future__ import annotations

import sys
from typing import Any

from ..drivers.core import Patcher
from .fastpath import checkin, checkout
from .protocol import careful_checkout, checkout_failed
from .protocol import checkin as careful_checkin
from .stats import PoolStats, stats_of, url_of

LABEL = "psycopg2.pool"
MODULE = "psycopg2.pool"


def _figures(pool: Any) -> dict[str, Any]:
    return {"min_size": pool.minconn, "max_size": pool.maxconn, "in_use": len(pool._used),
            "idle": len(pool._pool), "max_idle": pool.minconn}  # putconn() closes beyond minconn


def _address(pool: Any) -> str | None:
    d: dict[str, Any] = {}
    dsn = pool._args[0] if pool._args else pool._kwargs.get("dsn")
    if isinstance(dsn, str) and dsn:
        from psycopg2.extensions import parse_dsn

        d.update(parse_dsn(dsn))
    d.update(pool._kwargs)
    return url_of("postgresql", d.get("host"), d.get("port"),
                  d.get("dbname") or d.get("database"))


def _stats(pool: Any) -> PoolStats:
    return stats_of(pool, LABEL, _figures, address=_address)


def patch(p: Patcher) -> None:
    mod = sys.modules["psycopg2.pool"]
    base = mod.AbstractConnectionPool
    pool_error = mod.PoolError
    getconn, putconn = base._getconn, base._putconn

    def _getconn(self: Any, key: Any = None) -> Any:
        try:
            conn = getconn(self, key)
        except pool_error as e:
            if "exhausted" in str(e):
                checkout_failed(self, _stats, None, e, pool_error)
            raise
        if checkout(self, conn, None, None) is None:
            careful_checkout(self, _stats, conn)
        return conn

    def _putconn(self: Any, conn: Any = None, key: Any = None, close: bool = False) -> None:
        c = conn if conn is not None else self._used.get(key)
        if not checkin(c):
            careful_checkin(c)
        putconn(self, conn, key, close)

    p.wrap(base, "_getconn", _getconn)
    p.wrap(base, "_putconn", _putconn)
    simple = mod.SimpleConnectionPool  # binds the functions themselves at class creation
    if simple.__dict__.get("getconn") is getconn:
        p.set(simple, "getconn", _getconn)
    if simple.__dict__.get("putconn") is putconn:
        p.set(simple, "putconn", _putconn)
