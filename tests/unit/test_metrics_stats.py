"""stats()/pop_stats() on SQLite pools: counters, current values, close reasons."""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool, QueuePool

import pooldoctor
from pooldoctor import metrics
from pooldoctor.metrics.recorder import RECORDER


@pytest.fixture
def rec(guard: Any) -> Iterator[Any]:
    metrics.enable()
    yield RECORDER
    metrics.disable()


def engine(tmp_path: Path, **kw: Any) -> tuple[sa.Engine, str]:
    name = f"metrics-{uuid.uuid4().hex[:8]}"
    kw.setdefault("poolclass", QueuePool)
    e = sa.create_engine(f"sqlite:///{tmp_path / 'm.sqlite'}", **kw)
    pooldoctor.instrument(e, name=name, log=False, exit_check=False)
    return e, name


def use(e: sa.Engine, n: int = 1) -> None:
    for _ in range(n):
        with e.connect() as c:
            c.exec_driver_sql("SELECT 1")


def test_counts_and_current_values(rec: Any, tmp_path: Path) -> None:
    e, name = engine(tmp_path, pool_size=2, max_overflow=3)
    use(e, 5)
    held = e.connect()
    s = pooldoctor.metrics.stats(e)
    assert s["pool"] == name
    assert s["pool_class"] == "QueuePool"
    assert (s["pool_size"], s["pool_max"]) == (2, 5)
    assert s["requests_num"] == 6
    assert s["returns_num"] == 5
    assert s["connections_num"] == 1
    assert (s["connections_open"], s["connections_used"], s["connections_idle"]) == (1, 1, 0)
    assert s["requests_waiting"] == 0
    assert s["usage_ms"] >= 0 and s["requests_wait_ms"] >= 0 and s["connections_ms"] > 0
    held.close()
    e.dispose()


def test_quiet_workload_reports_no_waits_timeouts_or_closes(rec: Any, tmp_path: Path) -> None:
    e, _ = engine(tmp_path, pool_size=1, max_overflow=0)
    before = dict(RECORDER.findings)
    use(e, 10)
    s = pooldoctor.metrics.stats(e)
    assert s["requests_num"] == 10
    assert s["requests_waited"] == 0
    assert s["requests_timeouts"] == 0
    assert s["connections_gc_reclaimed"] == 0
    assert all(v == 0 for k, v in s.items() if k.startswith("connections_closed_"))
    assert RECORDER.findings == before
    e.dispose()


def test_pop_stats_resets_counters_but_not_current_values(rec: Any, tmp_path: Path) -> None:
    e, _ = engine(tmp_path)
    use(e, 3)
    held = e.connect()
    popped = pooldoctor.pop_stats(e)
    assert popped["requests_num"] == 4
    after = pooldoctor.stats(e)
    assert after["requests_num"] == 0 and after["returns_num"] == 0
    assert after["usage_ms"] == 0 and after["connections_num"] == 0
    assert after["connections_used"] == 1  # current value, not a counter
    held.close()
    use(e, 2)
    assert pooldoctor.stats(e)["requests_num"] == 2  # the held one was counted before the pop
    assert pooldoctor.stats(e)["returns_num"] == 3
    e.dispose()


def test_all_pools_by_label(rec: Any, tmp_path: Path) -> None:
    e, name = engine(tmp_path)
    use(e, 2)
    every = pooldoctor.stats()
    assert every[name]["requests_num"] == 2
    e.dispose()


def test_close_reasons(rec: Any, tmp_path: Path) -> None:
    e, _ = engine(tmp_path, pool_size=1, max_overflow=1)
    # overflow: two out, both back, the pool keeps one
    a, b = e.connect(), e.connect()
    a.close()
    b.close()
    # invalidated
    c = e.connect()
    c.invalidate()
    c.close()
    # recycled: soft invalidation closes the connection at its next checkout
    c = e.connect()
    c.connection.invalidate(soft=True)
    c.close()
    use(e)
    # detached
    c = e.connect()
    c.connection.detach()
    c.close()
    # disposed: the idle connection
    use(e)
    e.dispose()
    s = pooldoctor.stats(e)
    assert s["connections_closed_overflow"] == 1
    assert s["connections_closed_invalidated"] == 1
    assert s["connections_closed_recycled"] == 1
    assert s["connections_closed_detached"] == 1
    assert s["connections_closed_disposed"] == 1
    assert s["connections_closed_unpooled"] == 0


def test_nullpool_closes_are_unpooled(rec: Any, tmp_path: Path) -> None:
    e, _ = engine(tmp_path, poolclass=NullPool)
    use(e, 3)
    s = pooldoctor.stats(e)
    assert s["connections_closed_unpooled"] == 3
    assert s["connections_num"] == 3
    assert s["pool_size"] is None and s["pool_max"] is None
    assert s["connections_open"] == 0
    e.dispose()


def test_gc_reclaimed_counts(rec: Any, tmp_path: Path) -> None:
    from pooldoctor.guard import GUARD

    e, _ = engine(tmp_path)

    def leak() -> None:
        c = e.connect()
        c.exec_driver_sql("SELECT 1")

    before = RECORDER.findings.get("PD102", 0)
    leak()
    gc.collect()
    GUARD.drain()
    s = pooldoctor.stats(e)
    assert s["connections_gc_reclaimed"] == 1
    assert RECORDER.findings.get("PD102", 0) - before == 1
    e.dispose()


def test_unguarded_engine_is_an_error(rec: Any, tmp_path: Path) -> None:
    e = sa.create_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    with pytest.raises(ValueError, match="is not guarded"):
        pooldoctor.stats(e)
    with pytest.raises(TypeError, match="Engine"):
        pooldoctor.stats(object())
    e.dispose()


def test_unguarded_pool_closes_are_not_counted(rec: Any, tmp_path: Path) -> None:
    e, _ = engine(tmp_path)
    other = sa.create_engine(f"sqlite:///{tmp_path / 'o.sqlite'}", poolclass=NullPool)
    use(other, 3)
    other.dispose()
    assert all(v == 0 for k, v in pooldoctor.stats(e).items()
               if k.startswith("connections_closed_"))
    e.dispose()


def test_histogram_buckets_are_cumulative() -> None:
    from pooldoctor.metrics.recorder import Histogram

    h = Histogram((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 2.0, 3.0):
        h.observe(v)
    assert h.cumulative() == [(0.1, 2), (1.0, 3), (float("inf"), 5)]
    assert h.count == 5 and h.sum == pytest.approx(5.65)


async def test_async_engine(rec: Any, tmp_path: Path) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    e = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'a.sqlite'}", pool_size=2,
                            max_overflow=0)
    pooldoctor.instrument(e, name="async-metrics", log=False, exit_check=False)
    for _ in range(3):
        async with e.connect() as c:
            await c.exec_driver_sql("SELECT 1")
    s = pooldoctor.stats(e)
    assert s["pool_class"] == "AsyncAdaptedQueuePool"
    assert (s["requests_num"], s["returns_num"], s["connections_num"]) == (3, 3, 1)
    assert (s["pool_size"], s["pool_max"], s["connections_idle"]) == (2, 2, 1)
    await e.dispose()
