"""asyncpg: ``Pool.acquire()`` (awaited, or ``async with``) to ``Pool.release()`` is a
checkout; ``asyncpg.connect()`` to ``close()``/``terminate()`` a raw connection.

asyncpg's objects have ``__slots__``: the pool and the connection proxy take no weak
reference, so a checkout is held on the proxy's ``Connection`` (it has ``__weakref__``) and
the pool is known through one of its connection holders. ``acquire(timeout=...)`` raises the
builtin ``TimeoutError`` (``asyncio.TimeoutError``), which gets the holders; without a
timeout asyncpg waits for ever (PD109 tells the wait). The pool keeps its proxies alive, so
PD102 does not apply to checkouts. A connection closed through its proxy ends the checkout.

The checkin is seen in ``Connection._on_release()``, the plain function ``Pool.release()``
calls once it has accepted the connection (asyncpg 0.29 and later have it): a coroutine
wrapper around ``release()`` cost more than the rest of the checkin.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any
from urllib.parse import unquote, urlsplit

from ...guard import GUARD
from ..drivers.core import Patcher, pool_owned
from .fastpath import checkin, checkout, wait_begins
from .protocol import careful_checkout, careful_wait, checkout_failed
from .protocol import checkin as careful_checkin
from .raw import closed, closed_check, opened
from .stats import PoolStats, stats_of, url_of

LABEL = "asyncpg"
MODULE = "asyncpg"


def _figures(pool: Any) -> dict[str, Any]:
    return {"size": pool.get_size(), "min_size": pool.get_min_size(),
            "max_size": pool.get_max_size(), "idle": pool.get_idle_size()}


def _address(pool: Any) -> str | None:
    args, kw = pool._connect_args, pool._connect_kwargs
    dsn = args[0] if args else kw.get("dsn")
    d: dict[str, Any] = {}
    if isinstance(dsn, str) and dsn:
        u = urlsplit(dsn)
        d = {"host": u.hostname, "port": u.port, "database": unquote(u.path.lstrip("/"))}
    d.update({k: kw[k] for k in ("host", "port", "database") if kw.get(k) is not None})
    return url_of("postgresql", d.get("host"), d.get("port"), d.get("database"))


def _stats(pool: Any) -> PoolStats:
    holders = pool._holders
    return stats_of(pool, LABEL, _figures, "", anchor=holders[0] if holders else None,
                    via="_pool", address=_address)


def patch(p: Patcher) -> None:
    apg = sys.modules["asyncpg"]
    conn_mod = sys.modules["asyncpg.connection"]
    pool_cls = sys.modules["asyncpg.pool"].Pool
    acquire = pool_cls._acquire

    async def _acquire(self: Any, timeout: float | None) -> Any:
        t0 = wait_begins(self)
        if t0 is None:
            t0 = careful_wait(self, _stats)
            if t0 is None:
                return await acquire(self, timeout)
        try:
            proxy = await acquire(self, timeout)
        except BaseException as e:
            checkout_failed(self, _stats, t0, e, asyncio.TimeoutError, timeout)
            raise
        con = getattr(proxy, "_con", None)
        if con is not None and checkout(self, con, None, t0) is None:
            careful_checkout(self, _stats, con, None, t0)
        return proxy

    p.wrap(pool_cls, "_acquire", _acquire)
    conn_cls = conn_mod.Connection
    on_release = conn_cls._on_release

    def _on_release(self: Any, *args: Any, **kwargs: Any) -> Any:
        """Pool.release() accepted the connection: it goes back to the pool."""
        if not checkin(self):  # before the pool has it: another task may take it at once
            careful_checkin(self)
        return on_release(self, *args, **kwargs)

    p.wrap(conn_cls, "_on_release", _on_release)

    connect = conn_mod.connect

    async def connect_(*args: Any, **kwargs: Any) -> Any:
        conn = await connect(*args, **kwargs)
        if GUARD.active and not pool_owned():
            opened(conn, LABEL)
        return conn

    p.wrap(conn_mod, "connect", connect_)
    if apg.__dict__.get("connect") is connect:
        p.set(apg, "connect", connect_)
    p.rebind(connect, connect_)

    cleanup = conn_cls._cleanup

    def _cleanup(self: Any) -> None:
        """Every close() and terminate() ends here: so does the hold."""
        try:
            cleanup(self)
        finally:
            closed(self)

    p.wrap(conn_cls, "_cleanup", _cleanup)
    closed_check(LABEL, lambda c: bool(c.is_closed()))
