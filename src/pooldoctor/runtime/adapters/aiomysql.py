"""aiomysql: ``Pool.acquire()`` (awaited, or ``async with``) to ``Pool.release()`` is a
checkout; ``aiomysql.connect()`` to ``close()``/``ensure_closed()`` a raw connection.

aiomysql's pool waits for ever when it is exhausted (no timeout error: PD109 tells the wait)
and keeps its connections in use alive (PD102 does not apply to checkouts). A raw connection
dropped without ``close()`` is closed by its ``__del__`` with a ``ResourceWarning``: PD102.
"""

from __future__ import annotations

import sys
from typing import Any

from ...guard import GUARD
from ..drivers.core import Patcher, pool_owned
from .fastpath import checkin, checkout, wait_begins
from .protocol import careful_checkout, careful_wait, checkout_failed, dropped
from .protocol import checkin as careful_checkin
from .raw import closed, closed_check, opened
from .stats import PoolStats, stats_of, url_of

LABEL = "aiomysql"
MODULE = "aiomysql"


def _figures(pool: Any) -> dict[str, Any]:
    return {"size": pool.size, "min_size": pool.minsize, "max_size": pool.maxsize,
            "idle": pool.freesize}


def _address(pool: Any) -> str | None:
    kw = pool._conn_kwargs
    return url_of("mysql", kw.get("host"), kw.get("port", 3306), kw.get("db"))


def _stats(pool: Any) -> PoolStats:
    return stats_of(pool, LABEL, _figures, address=_address)


def patch(p: Patcher) -> None:
    pool_cls = sys.modules["aiomysql.pool"].Pool
    conn_mod = sys.modules["aiomysql.connection"]
    acquire, release = pool_cls._acquire, pool_cls.release

    async def _acquire(self: Any) -> Any:
        t0 = wait_begins(self)
        if t0 is None:
            t0 = careful_wait(self, _stats)
            if t0 is None:
                return await acquire(self)
        try:
            conn = await acquire(self)
        except BaseException as e:
            checkout_failed(self, _stats, t0, e)
            raise
        if checkout(self, conn, None, t0) is None:
            careful_checkout(self, _stats, conn, None, t0)
        return conn

    def release_(self: Any, conn: Any) -> Any:
        if not checkin(conn):
            careful_checkin(conn)
        return release(self, conn)

    p.wrap(pool_cls, "_acquire", _acquire)
    p.wrap(pool_cls, "release", release_)

    connect = conn_mod._connect  # what aiomysql.connect() awaits, looked up at each call

    async def _connect(*args: Any, **kwargs: Any) -> Any:
        conn = await connect(*args, **kwargs)
        if GUARD.active and not pool_owned():
            opened(conn, LABEL)
        return conn

    p.wrap(conn_mod, "_connect", _connect)

    conn_cls = conn_mod.Connection
    close, finalize = conn_cls.close, conn_cls.__del__

    def close_(self: Any) -> None:
        try:
            close(self)
        finally:
            closed(self)

    def __del__(self: Any) -> None:
        if getattr(self, "_writer", None) is not None:
            dropped(self)  # left to the garbage collector's path: PD102
        finalize(self)

    p.wrap(conn_cls, "close", close_)
    p.wrap(conn_cls, "__del__", __del__)
    closed_check(LABEL, lambda c: bool(c.closed))
