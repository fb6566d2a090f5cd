"""``pooldoctor.stats(engine)``: the pool's figures as a plain dict (after psycopg_pool's
``get_stats()``); ``pop_stats()`` returns them and starts the counters again from zero.

Current values are computed when asked; counters are totals since the guard adopted the pool
(or since the last ``pop_stats()``). Units are in the key names. See docs/metrics.md.
"""

from __future__ import annotations

from typing import Any

from .pools import current, info_for, infos
from .recorder import CLOSE_REASONS, enable, metrics_of

# Counters (reset by pop_stats); the other keys are current values.
COUNTERS = (
    "requests_num", "requests_waited", "requests_wait_ms", "requests_timeouts",
    "returns_num", "usage_ms", "connections_num", "connections_ms",
    *(f"connections_closed_{r}" for r in CLOSE_REASONS), "connections_gc_reclaimed",
)


def _totals(info: Any) -> dict[str, float]:
    m = metrics_of(info)
    with m.lock:
        d: dict[str, float] = {
            "requests_num": info.checkouts,
            "requests_waited": info.waits,
            "requests_wait_ms": m.wait.sum * 1000,
            "requests_timeouts": info.timeouts,
            "returns_num": m.use.count,
            "usage_ms": m.use.sum * 1000,
            "connections_num": info.connects,
            "connections_ms": m.create.sum * 1000,
        }
        for r in CLOSE_REASONS:
            d[f"connections_closed_{r}"] = m.closed[r]
    d["connections_gc_reclaimed"] = info.gc_reclaimed
    return d


def _one(info: Any, pop: bool) -> dict[str, Any]:
    cur = current(info)
    out: dict[str, Any] = {
        "pool": info.label,
        "pool_class": info.pool_class,
        "pool_size": cur.size,
        "pool_max": cur.max,
        "connections_open": cur.open,
        "connections_used": cur.used,
        "connections_idle": cur.idle,
        "requests_waiting": cur.waiting,
    }
    m = metrics_of(info)
    totals = _totals(info)
    base = m.baseline
    for k in COUNTERS:
        v = totals[k] - base.get(k, 0)
        out[k] = round(v, 3) if k.endswith("_ms") else int(v)
    if pop:
        m.baseline = totals
    return out


def stats(engine: Any = None) -> dict[str, Any]:
    """The figures of ``engine``'s pool; with no engine, ``{pool label: figures}`` for every
    guarded pool of the process (pools with the same label are listed once, the latest)."""
    enable()
    if engine is not None:
        return _one(info_for(engine), pop=False)
    return {i.label: _one(i, pop=False) for i in infos()}


def pop_stats(engine: Any = None) -> dict[str, Any]:
    """Like :func:`stats`, then start the counters of the pool (or of every pool) from zero."""
    enable()
    if engine is not None:
        return _one(info_for(engine), pop=True)
    return {i.label: _one(i, pop=True) for i in infos()}
