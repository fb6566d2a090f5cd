"""psycopg_pool: ``ConnectionPool`` and ``AsyncConnectionPool`` (and their subclasses).

``getconn()`` is the checkout (``connection()`` calls it), ``putconn()`` the checkin. The
``PoolTimeout`` that ``getconn()`` raises gets the holders. A connection dropped without
``putconn()`` is collected (PD102): psycopg_pool never gets it back. The pool's own
connections (opened by its worker threads or tasks) are not raw holds (``pool_owned``).
"""

from __future__ import annotations

import sys
from typing import Any

from ...guard import GUARD
from ..drivers.core import Patcher
from .protocol import PoolStats, begin, checkin, checkout, stats_of, timed_out, waited

LABEL = "psycopg_pool"
MODULE = "psycopg_pool"
FATE = "psycopg_pool never gets it back: the pool stays one connection short until it is closed"


def _figures(pool: Any) -> dict[str, Any]:
    s = pool.get_stats()
    return {"size": s.get("pool_size"), "min_size": pool.min_size, "max_size": pool.max_size,
            "idle": s.get("pool_available")}


def _stats(pool: Any) -> PoolStats:
    return stats_of(pool, LABEL, _figures, FATE, name=getattr(pool, "name", None))


def _timeout(pool: Any, timeout: float | None) -> float | None:
    t = pool.timeout if timeout is None else timeout
    return float(t) if isinstance(t, (int, float)) else None


def patch(p: Patcher) -> None:
    mod = sys.modules["psycopg_pool"]
    pool_timeout = mod.PoolTimeout
    sync, aio = mod.ConnectionPool, getattr(mod, "AsyncConnectionPool", None)
    getconn, putconn = sync.getconn, sync.putconn

    def getconn_(self: Any, timeout: float | None = None) -> Any:
        b = begin(self, _stats)
        if b is None:
            return getconn(self, timeout)
        st, t0 = b
        try:
            conn = getconn(self, timeout)
        except pool_timeout as e:
            waited(st, t0, timed_out=True)
            timed_out(st, e, _timeout(self, timeout))
            raise
        except BaseException:
            waited(st, t0, timed_out=True)
            raise
        waited(st, t0)
        checkout(st, conn)
        return conn

    def putconn_(self: Any, conn: Any) -> None:
        if GUARD.active:
            checkin(conn)  # before the pool has it: another thread may take it at once
        putconn(self, conn)

    p.wrap(sync, "getconn", getconn_)
    p.wrap(sync, "putconn", putconn_)
    if aio is None:
        return
    agetconn, aputconn = aio.getconn, aio.putconn

    async def agetconn_(self: Any, timeout: float | None = None) -> Any:
        b = begin(self, _stats)
        if b is None:
            return await agetconn(self, timeout)
        st, t0 = b
        try:
            conn = await agetconn(self, timeout)
        except pool_timeout as e:
            waited(st, t0, timed_out=True)
            timed_out(st, e, _timeout(self, timeout))
            raise
        except BaseException:
            waited(st, t0, timed_out=True)
            raise
        waited(st, t0)
        checkout(st, conn)
        return conn

    async def aputconn_(self: Any, conn: Any) -> None:
        if GUARD.active:
            checkin(conn)
        await aputconn(self, conn)

    p.wrap(aio, "getconn", agetconn_)
    p.wrap(aio, "putconn", aputconn_)
