"""A small run of ``scripts/stress.py``: 64 threads / 64 asyncio tasks on one small pool.

Random exceptions, transactions rolled back, bad SQL, invalidations, slow holders that make
others time out, and deliberate leaks from known lines. The script's ``check()`` lists every
way the guard could be wrong (ledger, pool counters, findings, sites, memory); here it must be
empty. The full-size run (>= 100,000 checkouts per workload) is ``python scripts/stress.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "stress.py"

pytestmark = pytest.mark.slow


def _load() -> ModuleType:
    name = "pooldoctor_stress_script"
    mod = sys.modules.get(name)
    if mod is None:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # dataclasses look the module up while it loads
        spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def stress() -> ModuleType:
    return _load()


def _assert_sound(result: Any, kept: int) -> None:
    figures = result.figures()
    assert result.problems == [], figures
    t = result.tally
    # the workload really did what it claims, so the checks above mean something
    assert t.checkouts >= 64 * 30, figures
    assert t.booms > 0 and t.sql_errors > 0 and t.invalidations > 0, figures
    assert t.dropped > 0, figures
    # a leak whose thread ended first is PD110 (check() counts them per line exactly)
    ended = result.findings.get("PD110", 0)
    assert t.dropped <= result.findings.get("PD102", 0) + ended <= t.dropped + kept, figures
    assert result.findings.get("PD101", 0) + ended >= kept, figures


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_threads_sync(stress: ModuleType, backend: str, request: pytest.FixtureRequest,
                      guard: object) -> None:
    url = request.getfixturevalue("pg_url" if backend == "postgresql" else "mysql_url")
    result = stress.stress_sync(url, threads=64, per_thread=15, rounds=4, kept=2,
                                drop_rate=0.01)
    _assert_sound(result, kept=2)


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_asyncio_tasks(stress: ModuleType, backend: str, request: pytest.FixtureRequest,
                       guard: object) -> None:
    url = request.getfixturevalue("pg_url" if backend == "postgresql" else "mysql_url")
    result = stress.stress_async(stress.async_url(url), tasks=64, per_task=15, rounds=4,
                                 kept=2, drop_rate=0.01)
    _assert_sound(result, kept=2)


def test_check_catches_a_lost_hold(stress: ModuleType, pg_url: str, guard: object) -> None:
    """The checker is not blind: a connection the workload does not know about is reported."""
    import sqlalchemy as sa

    import pooldoctor
    from pooldoctor.guard import GUARD

    pooldoctor.instrument(log=False, exit_check=False)
    engine = sa.create_engine(pg_url, pool_size=2, max_overflow=0)
    stray = engine.connect()
    try:
        problems = stress.check(engine, stress.Tally(), [], ("x", 1), ("y", 2),
                                GUARD.internal_errors)
    finally:
        stray.close()
        engine.dispose()
    assert any("the ledger holds 1" in p for p in problems), problems
    assert any("checked out: pool says 1" in p for p in problems), problems
    assert any("checkouts: guard counted 1" in p for p in problems), problems


def test_a_burst_of_dropped_connections_is_not_many_held(any_url: str, guard: object) -> None:
    """Dropped connections wait in the ledger for the next drain: they are not PD108 "held at
    once" (a pool of 2 cannot hold 12; the full stress run once reported it)."""
    import gc

    import sqlalchemy as sa

    import pooldoctor

    pooldoctor.instrument(many_threshold=10, log=False, exit_check=False)
    engine = sa.create_engine(any_url, pool_size=2, max_overflow=0, pool_timeout=5)
    for _ in range(12):
        engine.connect().exec_driver_sql("SELECT 1")  # dropped (a cycle with its transaction)
        gc.collect()  # reclaimed: the slot is back in the pool, the hold waits for a drain
    codes = pooldoctor.report().codes()
    engine.dispose()
    assert "PD108" not in codes
    assert codes.count("PD102") == 1  # one site, merged
    assert pooldoctor.report().findings[0].count == 12
