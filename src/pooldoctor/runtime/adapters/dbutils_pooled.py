"""DBUtils ``PooledDB``: ``connection()`` to the wrapper's ``close()`` is a checkout (dedicated
or shared wrappers alike).

With ``blocking=False`` an exhausted pool raises ``TooManyConnectionsError`` from
``connection()``, which gets the holders; with ``blocking=True`` it waits for ever (PD109
tells the wait). A wrapper dropped without ``close()`` is given back by its ``__del__``:
PD102 says where it was checked out.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from ...guard import GUARD
from ..drivers.core import Patcher
from .protocol import (
    PoolStats,
    checkin,
    checkout,
    dropped,
    stats_of,
    timed_out,
    wait_begins,
    waited,
)

LABEL = "dbutils.pooled_db"
MODULE = "dbutils.pooled_db"
FATE = "DBUtils gave it back to the pool when it was collected"

_waits = threading.local()  # the wait of this thread's checkout: (stats, t0)


def _figures(pool: Any) -> dict[str, Any]:
    return {"max_size": pool._maxconnections or None, "in_use": pool._connections,
            "idle": len(pool._idle_cache), "max_cached": pool._maxcached or None}


def _stats(pool: Any) -> PoolStats:
    return stats_of(pool, "dbutils", _figures, FATE)


def _driver_connection(wrapper: Any) -> Any:
    steady = wrapper.__dict__.get("_con")
    return getattr(steady, "_con", None) if steady is not None else None


def patch(p: Patcher) -> None:
    mod = sys.modules["dbutils.pooled_db"]
    pool_cls = mod.PooledDB
    too_many = mod.TooManyConnectionsError
    connection, wait_lock = pool_cls.connection, pool_cls._wait_lock

    def connection_(self: Any, shareable: bool = True) -> Any:
        if not GUARD.active:
            return connection(self, shareable)
        _waits.t0 = None
        try:
            con = connection(self, shareable)
        except too_many as e:
            _wait_over(timed_out_=True)
            try:
                timed_out(_stats(self), e)
            except Exception:
                GUARD.internal_error("dbutils exhausted")
            raise
        except BaseException:
            _wait_over(timed_out_=True)
            raise
        _wait_over()
        try:
            checkout(_stats(self), con, _driver_connection(con))
        except Exception:
            GUARD.internal_error("dbutils checkout")
        return con

    def _wait_lock(self: Any) -> None:
        """Where a checkout waits (or, not blocking, gives up): the wait starts here."""
        if GUARD.active and getattr(_waits, "t0", None) is None:
            try:
                st = _stats(self)
                _waits.t0 = (st, wait_begins(st))
            except Exception:
                GUARD.internal_error("dbutils wait")
        wait_lock(self)

    p.wrap(pool_cls, "connection", connection_)
    p.wrap(pool_cls, "_wait_lock", _wait_lock)
    for name in ("PooledDedicatedDBConnection", "PooledSharedDBConnection"):
        _patch_wrapper(p, getattr(mod, name))


def _wait_over(timed_out_: bool = False) -> None:
    w = getattr(_waits, "t0", None)
    if w is not None:
        _waits.t0 = None
        waited(w[0], w[1], timed_out=timed_out_)


def _patch_wrapper(p: Patcher, cls: type) -> None:
    close, finalize = cls.close, cls.__del__  # type: ignore[attr-defined]

    def close_(self: Any) -> None:
        if GUARD.active:
            checkin(self)  # before the pool has it back: another thread may take it at once
        close(self)

    def __del__(self: Any) -> None:
        if self.__dict__.get("_con"):
            dropped(self)  # left to the garbage collector's path: PD102
        finalize(self)

    p.wrap(cls, "close", close_)
    p.wrap(cls, "__del__", __del__)
