"""What the guard knows and counts about each SQLAlchemy pool, and the registry of them."""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from typing import Any

from sqlalchemy.pool import Pool, QueuePool

from ...ledger import Hold


class PoolInfo:
    """What the guard knows and counts about one pool (kept across ``dispose()``).

    ``holds`` is the pool's table of live checkouts (hold id -> hold), part of the ledger.
    The counters are statistics for the metrics and the advisor; the hot path updates them
    without a lock, each with one atomic step (a dict store or pop, ``next()`` on a counter)
    or one load-add-store with no call inside, which the GIL does not split.
    """

    def __init__(self, pool: Pool, url: str | None, name: str | None = None) -> None:
        self.url = url
        self.name = name
        self.pool_class = type(pool).__name__
        self.pool_ref = weakref.ref(pool)
        self.lock = threading.Lock()
        self.holds: dict[int, Hold] = {}
        self.checkout_counter = itertools.count(1)  # next() on it: one atomic step
        self.timeouts = 0
        self.waits = 0
        self.waiting = 0
        self.waited: dict[int, float] = {}  # thread id -> seconds waited in its checkout
        self.connects = 0
        self.gc_reclaimed = 0
        self.peak_checked_out = 0
        self.max_wait_ms = 0.0
        self.wait_s_total = 0.0  # sum of the time blocking checkouts waited
        self.hold_s_total = 0.0  # sum of completed hold times (advise: Little's law)
        self.started = time.monotonic()

    @property
    def checkouts(self) -> int:
        """Checkouts seen since the guard adopted the pool."""
        return int(repr(self.checkout_counter)[6:-1]) - 1  # repr is "count(N)", N the next

    @property
    def checked_out(self) -> int:
        """Connections checked out right now (the live holds of this pool)."""
        return len(self.holds)

    @property
    def label(self) -> str:
        return self.name or self.url or f"{self.pool_class}@{id(self):x}"

    def pool(self) -> Pool | None:
        return self.pool_ref()

    def to_dict(self) -> dict[str, Any]:
        pool = self.pool()
        d: dict[str, Any] = {"url": self.url, "pool_class": self.pool_class}
        if self.name:
            d["name"] = self.name
        if isinstance(pool, QueuePool):
            d["size"] = pool.size()
            d["max_overflow"] = pool._max_overflow
            d["timeout"] = pool.timeout()
        if pool is not None:
            d.update(recycle=pool._recycle, pre_ping=pool._pre_ping)
        d.update(checkouts=self.checkouts, timeouts=self.timeouts, waits=self.waits,
                 connects=self.connects, gc_reclaimed=self.gc_reclaimed,
                 checked_out=self.checked_out, peak_checked_out=self.peak_checked_out,
                 max_wait_ms=round(self.max_wait_ms, 3),
                 hold_ms_total=round(self.hold_s_total * 1000, 3),
                 observed_s=round(time.monotonic() - self.started, 3))
        return d


class Mode:
    """How the guard is installed (read on the checkout path: two plain attributes)."""

    global_ = False  # every engine of the process (install_global)
    via_events = False  # checkouts seen by pool events (fork_safety='repair')


LOCK = threading.RLock()
ALL_INFOS: list[PoolInfo] = []  # kept for the report after pools are gone
MODE = Mode()


def all_infos() -> list[PoolInfo]:
    """Every pool the guard has seen in this process (also those since disposed)."""
    with LOCK:
        return list(ALL_INFOS)


def idle_server_ids(info: PoolInfo) -> tuple[set[int], int]:
    """Server ids of the connections resting idle in a guarded QueuePool, and how many idle
    connections have no known id (the pool's queue is read without taking its lock)."""
    pool = info.pool()
    if not isinstance(pool, QueuePool):
        return set(), 0
    try:
        records = list(pool._pool.queue)  # type: ignore[attr-defined]
    except Exception:
        return set(), pool.checkedin()
    ids: set[int] = set()
    unknown = 0
    for rec in records:
        if getattr(rec, "dbapi_connection", None) is None:
            continue  # not connected (invalidated, or not yet reconnected)
        sid = rec.__dict__.get("_pd_server_id")
        if isinstance(sid, int):
            ids.add(sid)
        else:
            unknown += 1
    return ids, unknown


def pool_infos() -> list[dict[str, Any]]:
    with LOCK:
        return [i.to_dict() for i in ALL_INFOS]


def stats_for(engine: Any) -> PoolInfo | None:
    engine = getattr(engine, "sync_engine", engine)
    info: PoolInfo | None = engine.pool.__dict__.get("_pooldoctor")
    return info


def reset_stats() -> None:
    with LOCK:
        ALL_INFOS[:] = [i for i in ALL_INFOS if i.pool() is not None]
