"""The pools of the adapters' libraries: what the guard knows and counts about each one
(:class:`PoolStats`), found again from the pool at each checkout.

A pool with an instance ``__dict__`` keeps its stats there (``STATS``: one lookup, also from
the C checkout); one without (asyncpg's) is found in a table keyed by ``id()`` (``BY_ID``, also
read by the C checkout), its identity checked through a weak reference to an object that
lives as long as it does and names it (``anchor_ref``, attribute ``via``).
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from ...guard import GUARD
from ...ledger import Hold

_monotonic = time.monotonic

Figures = Callable[[Any], dict[str, Any]]  # a pool -> the sizes its library exposes


class PoolStats:
    """What the guard knows and counts about one pool of an adapter's library (kept after the
    pool is gone, for the report). Shares its field names with SQLAlchemy's ``PoolInfo``: the
    ledger (``holds``, ``hold_s_total``), the PD102 report (``fate``) and observers read them.
    """

    def __init__(self, pool: Any, library: str, figures: Figures | None, fate: str,
                 name: str | None = None, tag: str | None = None) -> None:
        self.library = library
        self.url: str | None = None
        self.name = name  # given by the user: the metrics' pool name
        self.tag = tag  # the library's own default name: the label's, not the metrics'

        self.pool_class = type(pool).__name__
        self.pool_ref: Callable[[], Any] = _none
        # a pool without weak references: a weak reference to an object that lives as long
        # as the pool, and the name of its attribute that is the pool
        self.anchor_ref: Callable[[], Any] | None = None
        self.via: str | None = None
        self.figures = figures
        self.fate = fate  # PD102: what the library does with a checkout collected unreturned
        self.lock = threading.Lock()
        self.holds: dict[int, Hold] = {}
        self.checkout_counter = itertools.count(1)
        self.timeouts = 0
        self.waits = 0
        self.waiting = 0
        self.connects = 0
        self.gc_reclaimed = 0
        self.peak_checked_out = 0
        self.max_wait_ms = 0.0
        self.wait_s_total = 0.0
        self.hold_s_total = 0.0
        self.started = _monotonic()

    @property
    def checkouts(self) -> int:
        return int(repr(self.checkout_counter)[6:-1]) - 1  # repr is "count(N)"

    @property
    def checked_out(self) -> int:
        return len(self.holds)

    @property
    def label(self) -> str:
        return f"{self.library}:{self.name or self.tag or f'{self.pool_class}@{id(self):x}'}"

    def pool(self) -> Any:
        return self.pool_ref()

    def sizes(self) -> dict[str, Any]:
        """The figures the library exposes for the pool (empty when it is gone)."""
        pool = self.pool()
        if pool is None or self.figures is None:
            return {}
        try:
            return self.figures(pool)
        except Exception:
            GUARD.internal_error(f"{self.library} figures")
            return {}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"url": self.url, "pool_class": self.pool_class,
                             "library": self.library, "name": self.label}
        d.update(self.sizes())
        d.update(checkouts=self.checkouts, timeouts=self.timeouts, waits=self.waits,
                 connects=self.connects, gc_reclaimed=self.gc_reclaimed,
                 checked_out=self.checked_out, peak_checked_out=self.peak_checked_out,
                 max_wait_ms=round(self.max_wait_ms, 3),
                 hold_ms_total=round(self.hold_s_total * 1000, 3),
                 observed_s=round(_monotonic() - self.started, 3))
        return d


_lock = threading.Lock()
_pools: dict[int, PoolStats] = {}  # id(pool) -> its stats, while the pool lives
BY_ID = _pools
_all: list[PoolStats] = []  # every pool seen, for the report
STATS = "_pd_stats"  # a pool's stats, in the pool's __dict__ when it has one


def _none() -> None:
    return None


def url_of(scheme: str, host: Any, port: Any, database: Any) -> str | None:
    """A URL naming a pool's server and database (no user, no password: it is shown in
    reports and is the metrics' default pool name ``server.address:server.port/db.namespace``)."""
    if host is not None and not isinstance(host, str):
        return None
    h = host or "localhost"
    if ":" in h and not h.startswith("["):
        h = f"[{h}]"  # IPv6
    if h.startswith("/"):  # a Unix socket directory
        h = "localhost"
    p = f":{int(port)}" if isinstance(port, (int, str)) and str(port).isdigit() else ""
    return f"{scheme}://{h}{p}/{database or ''}"


def stats_of(pool: Any, library: str, figures: Figures | None = None, fate: str = "",
             name: str | None = None, anchor: Any = None, via: str | None = None,
             address: Callable[[Any], str | None] | None = None,
             tag: str | None = None) -> PoolStats:
    """The stats of ``pool`` (created at its first sight). A pool that takes no weak
    reference (asyncpg's) names an ``anchor`` that lives as long as it does, and the name of
    the anchor's attribute that is the pool (``via``). ``address``: the pool's
    :func:`url_of`, asked once."""
    d = getattr(pool, "__dict__", None)
    st = d.get(STATS) if d is not None else _pools.get(id(pool))
    if st is not None and st.pool_ref() is pool:
        return st
    with _lock:
        st = _pools.get(id(pool))
        if st is not None and st.pool_ref() is pool:
            return st
        st = PoolStats(pool, library, figures, fate, name, tag)
        if address is not None:
            try:
                st.url = address(pool)
            except Exception:
                GUARD.internal_error(f"{library} address")
        key = id(pool)
        ref = weakref.ref(pool if anchor is None else anchor,
                          lambda _: _pools.pop(key, None))
        if via is None:
            st.pool_ref = ref
        else:
            attr = via

            def pool_ref() -> Any:
                a = ref()
                return None if a is None else getattr(a, attr, None)

            st.pool_ref = pool_ref
            st.anchor_ref, st.via = ref, via
        _pools[key] = st
        if d is not None:
            d[STATS] = st  # found again with one lookup (asyncpg's pools have no __dict__)
        _all.append(st)
        GUARD.ledger.add_table(st)
    return st


def pool_infos() -> list[dict[str, Any]]:
    """The figures of every adapter pool seen, for the report's ``pools``."""
    with _lock:
        stats = list(_all)
    return [s.to_dict() for s in stats]


def stats_for_pool(pool: Any) -> PoolStats | None:
    """The stats of a pool of an adapter's library (None: never seen by the guard)."""
    st = _pools.get(id(pool))
    return st if st is not None and st.pool_ref() is pool else None


def all_stats() -> list[PoolStats]:
    with _lock:
        return list(_all)
