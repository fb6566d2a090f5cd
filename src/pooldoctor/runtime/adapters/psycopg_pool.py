"""psycopg_pool: ``ConnectionPool`` and ``AsyncConnectionPool`` (and their subclasses).

``getconn()`` is the checkout (``connection()`` calls it), ``putconn()`` the checkin. The
``PoolTimeout`` that ``getconn()`` raises gets the holders. A connection dropped without
``putconn()`` is collected (PD102): psycopg_pool never gets it back. The pool's own
connections (opened by its worker threads or tasks) are not raw holds (``pool_owned``).
"""

from __future__ import annotations

import re
import sys
from typing import Any

from ..drivers.core import Patcher
from .fastpath import checkin, checkout, wait_begins
from .protocol import careful_checkout, careful_wait, checkout_failed
from .protocol import checkin as careful_checkin
from .stats import PoolStats, stats_of, url_of

LABEL = "psycopg_pool"
MODULE = "psycopg_pool"
_DEFAULT_NAME = re.compile(r"pool-\d+")  # what psycopg_pool names a pool given no name
FATE = "psycopg_pool never gets it back: the pool stays one connection short until it is closed"


def _figures(pool: Any) -> dict[str, Any]:
    s = pool.get_stats()
    return {"size": s.get("pool_size"), "min_size": pool.min_size, "max_size": pool.max_size,
            "idle": s.get("pool_available")}


def _address(pool: Any) -> str | None:
    d: dict[str, Any] = {}
    if isinstance(pool.conninfo, str) and pool.conninfo:  # not a callable
        from psycopg.conninfo import conninfo_to_dict

        d.update(conninfo_to_dict(pool.conninfo))
    if isinstance(pool.kwargs, dict):
        d.update(pool.kwargs)
    return url_of("postgresql", d.get("host"), d.get("port"), d.get("dbname"))


def _stats(pool: Any) -> PoolStats:
    name = getattr(pool, "name", None)
    if not isinstance(name, str) or _DEFAULT_NAME.fullmatch(name):
        return stats_of(pool, LABEL, _figures, FATE, address=_address, tag=name)
    return stats_of(pool, LABEL, _figures, FATE, name=name, address=_address)


def _timeout(pool: Any, timeout: float | None) -> float | None:
    t = pool.timeout if timeout is None else timeout
    return float(t) if isinstance(t, (int, float)) else None


def patch(p: Patcher) -> None:
    mod = sys.modules["psycopg_pool"]
    pool_timeout = mod.PoolTimeout
    sync, aio = mod.ConnectionPool, getattr(mod, "AsyncConnectionPool", None)
    getconn, putconn = sync.getconn, sync.putconn

    # one wrapper per method, the sync and async ones alike but for ``await``
    def getconn_(self: Any, timeout: float | None = None) -> Any:
        t0 = wait_begins(self)
        if t0 is None:
            t0 = careful_wait(self, _stats)
            if t0 is None:
                return getconn(self, timeout)
        try:
            conn = getconn(self, timeout)
        except BaseException as e:
            checkout_failed(self, _stats, t0, e, pool_timeout, _timeout(self, timeout))
            raise
        if checkout(self, conn, None, t0) is None:
            careful_checkout(self, _stats, conn, None, t0)
        return conn

    def putconn_(self: Any, conn: Any) -> None:
        if not checkin(conn):  # before the pool has it: another thread may take it at once
            careful_checkin(conn)
        putconn(self, conn)

    p.wrap(sync, "getconn", getconn_)
    p.wrap(sync, "putconn", putconn_)
    if aio is None:
        return
    agetconn, aputconn = aio.getconn, aio.putconn

    async def agetconn_(self: Any, timeout: float | None = None) -> Any:
        t0 = wait_begins(self)
        if t0 is None:
            t0 = careful_wait(self, _stats)
            if t0 is None:
                return await agetconn(self, timeout)
        try:
            conn = await agetconn(self, timeout)
        except BaseException as e:
            checkout_failed(self, _stats, t0, e, pool_timeout, _timeout(self, timeout))
            raise
        if checkout(self, conn, None, t0) is None:
            careful_checkout(self, _stats, conn, None, t0)
        return conn

    async def aputconn_(self: Any, conn: Any) -> None:
        if not checkin(conn):
            careful_checkin(conn)
        await aputconn(self, conn)

    p.wrap(aio, "getconn", agetconn_)
    p.wrap(aio, "putconn", aputconn_)
