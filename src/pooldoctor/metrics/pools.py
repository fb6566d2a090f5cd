"""The guarded pools and their current figures (computed when asked, never stored)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.pool import NullPool, QueuePool, SingletonThreadPool


@dataclass
class Current:
    """What a pool holds right now."""

    size: int | None  # configured pool_size (QueuePool), else None
    max: int | None  # pool_size + max_overflow; None when unbounded or not a QueuePool
    used: int  # checked out
    idle: int  # open and in the pool
    waiting: int  # checkouts waiting for a connection
    idle_max: int | None = None  # most idle connections kept (QueuePool: pool_size)
    idle_min: int | None = None  # fewest idle connections kept (SQLAlchemy keeps none warm)

    @property
    def open(self) -> int:
        return self.used + self.idle


def infos() -> list[Any]:
    """Every pool the guard has seen in this process (also those now gone): SQLAlchemy's
    PoolInfo, then the adapters' PoolStats (psycopg_pool, asyncpg, aiomysql, psycopg2.pool,
    DBUtils), which share their field names."""
    from ..runtime import sqlalchemy as sa
    from ..runtime.adapters.protocol import all_stats

    return [*sa.all_infos(), *all_stats()]


def info_for(engine: Any) -> Any:
    """The PoolInfo of an Engine or AsyncEngine, or the PoolStats of a pool of an adapter's
    library; ValueError when it is not guarded."""
    from ..runtime.adapters.protocol import stats_for_pool
    from ..runtime.sqlalchemy import stats_for
    from ..urls import mask_url

    st = stats_for_pool(engine)
    if st is not None:
        return st
    eng = getattr(engine, "sync_engine", engine)
    pool = getattr(eng, "pool", None)
    if pool is None:
        if any(k in type(engine).__module__ for k in _ADAPTER_MODULES):
            raise ValueError(f"pool {type(engine).__name__} has not been used under the guard "
                             "yet; call pooldoctor.instrument() before its first checkout")
        raise TypeError("stats() takes an Engine, an AsyncEngine or a guarded pool, not "
                        f"{type(engine).__name__}")
    info = stats_for(eng)
    if info is None:
        raise ValueError(f"engine {mask_url(eng.url)} is not guarded; call "
                         "pooldoctor.instrument() or pooldoctor.instrument(engine) first")
    return info


_ADAPTER_MODULES = ("psycopg_pool", "asyncpg", "aiomysql", "psycopg2", "dbutils")


def current(info: Any) -> Current:
    """The current figures of the pool behind ``info`` (zeros when the pool is gone)."""
    pool = info.pool()
    waiting = max(info.waiting, 0)
    if pool is None:
        return Current(None, None, 0, 0, 0)
    if hasattr(info, "sizes"):  # an adapter's PoolStats
        return _adapter_current(info, waiting)
    if isinstance(pool, QueuePool):
        size = pool.size()
        mo = pool._max_overflow
        return Current(size, size + mo if mo > -1 else None, max(pool.checkedout(), 0),
                       max(pool.checkedin(), 0), waiting, idle_max=size, idle_min=0)
    used = max(info.checked_out, 0)
    if isinstance(pool, NullPool):
        return Current(None, None, used, 0, waiting, idle_max=0, idle_min=0)
    if isinstance(pool, SingletonThreadPool):
        opened = len(getattr(pool, "_all_conns", ()))
        limit = getattr(pool, "size", None)  # an attribute on SingletonThreadPool
        return Current(None, limit if isinstance(limit, int) else None, used,
                       max(opened - used, 0), waiting)
    return Current(None, None, used, 0, waiting)


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _adapter_current(st: Any, waiting: int) -> Current:
    """From the figures the library exposes (``PoolStats.sizes()``): in use is the library's
    count when it has one (``in_use``, or ``size - idle``), else the guard's checkouts."""
    f = st.sizes()
    idle = _int(f.get("idle")) or 0
    size, in_use = _int(f.get("size")), _int(f.get("in_use"))
    if in_use is None:
        in_use = size - idle if size is not None else st.checked_out
    lo, hi = _int(f.get("min_size")), _int(f.get("max_size"))
    idle_max = _int(f.get("max_idle", f.get("max_cached", hi)))
    return Current(lo, hi, max(in_use, 0), max(idle, 0), waiting, idle_max=idle_max,
                   idle_min=lo if "max_idle" not in f else 0)
