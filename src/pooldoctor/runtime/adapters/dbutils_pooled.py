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
from .fastpath import checkin, checkout
from .protocol import careful_checkout, checkout_failed, dropped, wait_begins
from .protocol import checkin as careful_checkin
from .stats import PoolStats, stats_of, url_of

LABEL = "dbutils.pooled_db"
MODULE = "dbutils.pooled_db"
FATE = "DBUtils gave it back to the pool when it was collected"

_waits = threading.local()  # the wait of this thread's checkout: (stats, t0)


def _figures(pool: Any) -> dict[str, Any]:
    return {"max_size": pool._maxconnections or None, "in_use": pool._connections,
            "idle": len(pool._idle_cache), "max_cached": pool._maxcached or None}


def address(creator: Any, kw: dict[str, Any]) -> str | None:
    """The server and database of a DBUtils pool's connections, from its creator's module."""
    mod = getattr(creator, "__name__", None) or getattr(creator, "__module__", None) or ""
    if "mysql" in mod.lower() or "mariadb" in mod.lower():
        return url_of("mysql", kw.get("host"), kw.get("port", 3306),
                      kw.get("database") or kw.get("db"))
    if "psycopg" in mod or "pg8000" in mod:
        return url_of("postgresql", kw.get("host"), kw.get("port"),
                      kw.get("dbname") or kw.get("database"))
    return None


def _stats(pool: Any) -> PoolStats:
    return stats_of(pool, "dbutils", _figures, FATE,
                    address=lambda p: address(p._creator, p._kwargs))


def _driver_connection(wrapper: Any) -> Any:
    steady = wrapper.__dict__.get("_con")
    return getattr(steady, "_con", None) if steady is not None else None


def patch(p: Patcher) -> None:
    mod = sys.modules["dbutils.pooled_db"]
    pool_cls = mod.PooledDB
    too_many = mod.TooManyConnectionsError
    connection, wait_lock = pool_cls.connection, pool_cls._wait_lock

    def connection_(self: Any, shareable: bool = True) -> Any:
        try:
            con = connection(self, shareable)
        except BaseException as e:
            checkout_failed(self, _stats, _wait_over(), e, too_many)
            raise
        t0 = _wait_over()  # None but when the pool was exhausted and the checkout waited
        driver = _driver_connection(con)
        if checkout(self, con, driver, t0) is None:
            careful_checkout(self, _stats, con, driver, t0)
        return con

    def _wait_lock(self: Any) -> None:
        """Where a checkout waits (or, not blocking, gives up): the wait starts here."""
        if GUARD.active and getattr(_waits, "t0", None) is None:
            try:
                _waits.t0 = wait_begins(_stats(self))
            except Exception:
                GUARD.internal_error("dbutils wait")
        wait_lock(self)

    p.wrap(pool_cls, "connection", connection_)
    p.wrap(pool_cls, "_wait_lock", _wait_lock)
    for name in ("PooledDedicatedDBConnection", "PooledSharedDBConnection"):
        _patch_wrapper(p, getattr(mod, name))


def _wait_over() -> float | None:
    """When this thread's checkout began to wait (None: it did not); the wait is over."""
    t0: float | None = getattr(_waits, "t0", None)
    if t0 is not None:
        _waits.t0 = None
    return t0


def _patch_wrapper(p: Patcher, cls: type) -> None:
    close, finalize = cls.close, cls.__del__  # type: ignore[attr-defined]

    def close_(self: Any) -> None:
        if not checkin(self):  # before the pool has it back: another thread may take it
            careful_checkin(self)
        close(self)

    def __del__(self: Any) -> None:
        if self.__dict__.get("_con"):
            dropped(self)  # left to the garbage collector's path: PD102
        finalize(self)

    p.wrap(cls, "close", close_)
    p.wrap(cls, "__del__", __del__)
