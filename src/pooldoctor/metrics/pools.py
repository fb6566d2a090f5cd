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
    """Every PoolInfo the guard has made in this process (also for pools now gone)."""
    from ..runtime import sqlalchemy as sa

    return sa.all_infos()


def info_for(engine: Any) -> Any:
    """The PoolInfo of an Engine or AsyncEngine; ValueError when the engine is not guarded."""
    from ..runtime.sqlalchemy import stats_for
    from ..urls import mask_url

    eng = getattr(engine, "sync_engine", engine)
    pool = getattr(eng, "pool", None)
    if pool is None:
        raise TypeError(f"stats() takes an Engine or AsyncEngine, not {type(engine).__name__}")
    info = stats_for(eng)
    if info is None:
        raise ValueError(f"engine {mask_url(eng.url)} is not guarded; call "
                         "pooldoctor.instrument() or pooldoctor.instrument(engine) first")
    return info


def current(info: Any) -> Current:
    """The current figures of the pool behind ``info`` (zeros when the pool is gone)."""
    pool = info.pool()
    waiting = max(info.waiting, 0)
    if pool is None:
        return Current(None, None, 0, 0, 0)
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
