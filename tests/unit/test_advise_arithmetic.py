"""The advisor's arithmetic on tables of cases (pure functions, no server)."""

from __future__ import annotations

import math

import pytest

from pooldoctor.advise import arithmetic as ar
from pooldoctor.advise.model import Measured, ServerLimits


@pytest.mark.parametrize(("size", "overflow", "pool_class", "expected"), [
    (5, 10, "QueuePool", 15),          # SQLAlchemy's defaults
    (10, 20, "QueuePool", 30),
    (1, 0, "QueuePool", 1),
    (5, -1, "QueuePool", None),        # unbounded overflow
    (0, 10, "QueuePool", None),        # pool_size 0 is "no limit" in QueuePool
    (0, -1, "QueuePool", None),
    (5, 10, "NullPool", None),         # one connection per checkout
    (5, 10, "StaticPool", 1),
    (5, 10, "SingletonThreadPool", None),  # one per thread
    (5, 10, "AsyncAdaptedQueuePool", 15),  # asyncio engines
    (5, -1, "AsyncAdaptedQueuePool", None),
])
def test_pool_bound(size: int, overflow: int, pool_class: str, expected: int | None) -> None:
    assert ar.pool_bound(size, overflow, pool_class) == expected


@pytest.mark.parametrize(("bound", "concurrency", "expected"), [
    (15, None, 15), (15, 4, 15), (None, 4, 4), (None, None, None),
])
def test_per_process(bound: int | None, concurrency: int | None, expected: int | None) -> None:
    assert ar.per_process(bound, concurrency) == expected


@pytest.mark.parametrize(("instances", "workers", "per", "expected"), [
    (1, 8, 30, 240), (3, 4, 15, 180), (1, 1, 1, 1), (2, 1, 5, 10),
])
def test_total(instances: int, workers: int, per: int, expected: int) -> None:
    assert ar.total(instances, workers, per) == expected


@pytest.mark.parametrize(("max_conn", "reserved", "others", "expected"), [
    (151, 0, 12, 139), (100, 3, 0, 97), (100, 3, 120, 0), (10, 10, 0, 0),
])
def test_available(max_conn: int, reserved: int, others: int, expected: int) -> None:
    assert ar.available(max_conn, reserved, others) == expected


@pytest.mark.parametrize(("limits", "allowed", "limit", "words"), [
    (ServerLimits("mysql", max_connections=151, used_by_others=12), 139, "server",
     "139 allowed by the server (max_connections 151 - reserved 0 - used by others 12)"),
    (ServerLimits("postgresql", max_connections=100, reserved=3, used_by_others=10,
                  user="app", user_limit=20, user_limit_name="rolconnlimit", used_by_user=5),
     15, "user", "15 allowed for user 'app' (rolconnlimit 20 - used by its other sessions 5)"),
    (ServerLimits("postgresql", max_connections=100, reserved=3, used_by_others=0,
                  database="shop", db_limit=8, db_limit_name="datconnlimit", used_by_db=2),
     6, "database", "6 allowed for database 'shop' (datconnlimit 8 - used by other sessions 2)"),
    # a user limit larger than the server's room does not bind
    (ServerLimits("mysql", max_connections=50, used_by_others=45, user="app", user_limit=100,
                  user_limit_name="max_user_connections", used_by_user=0), 5, "server",
     "5 allowed by the server"),
    (ServerLimits("unknown", max_connections=151, source="given"), 151, "given",
     "151 allowed by the given limits (max_connections 151 - reserved 0)"),
])
def test_allowance_binding_limit(limits: ServerLimits, allowed: int, limit: str,
                                 words: str) -> None:
    a = ar.allowance(limits)
    assert a is not None
    assert (a.allowed, a.limit) == (allowed, limit)
    assert a.explanation.startswith(words)


def test_allowance_unknown_without_limits() -> None:
    assert ar.allowance(ServerLimits("sqlite")) is None


@pytest.mark.parametrize(("rate", "hold", "expected"), [
    (100.0, 0.05, 5.0), (20.0, 0.5, 10.0), (0.0, 1.0, 0.0), (1000.0, 0.002, 2.0),
])
def test_littles_law(rate: float, hold: float, expected: float) -> None:
    assert ar.littles_law(rate, hold) == pytest.approx(expected)


def test_littles_law_rejects_negative() -> None:
    with pytest.raises(ValueError):
        ar.littles_law(-1.0, 0.1)


@pytest.mark.parametrize(("hold_ms", "observed", "processes", "expected"), [
    (60_000.0, 60.0, 1, 1.0),       # one connection busy all the time
    (300_000.0, 60.0, 1, 5.0),
    (300_000.0, 60.0, 5, 1.0),      # merged over five processes
    (0.0, 10.0, 1, 0.0),
])
def test_mean_concurrency(hold_ms: float, observed: float, processes: int,
                          expected: float) -> None:
    assert ar.mean_concurrency(hold_ms, observed, processes) == pytest.approx(expected)


def test_mean_concurrency_agrees_with_littles_law() -> None:
    m = Measured(checkouts=1200, hold_ms_total=42_000.0, observed_s=60.0)
    assert m.checkout_rate is not None and m.mean_hold_s is not None
    assert ar.littles_law(m.checkout_rate, m.mean_hold_s) == pytest.approx(
        ar.mean_concurrency(42_000.0, 60.0))


def test_mean_concurrency_needs_time() -> None:
    with pytest.raises(ValueError):
        ar.mean_concurrency(10.0, 0.0)


@pytest.mark.parametrize(("mean", "peak", "headroom", "expected"), [
    (2.9, 6, 1.5, (5, 1)),       # ceil(4.35) = 5, bursts to 6
    (4.0, 4, 1.5, (4, 0)),       # never more than the peak
    (0.1, 3, 1.5, (1, 2)),       # at least one connection kept
    (2.0, 10, 1.0, (2, 8)),
    (2.0, 0, 1.5, (1, 0)),       # no peak known: one connection
])
def test_size_for(mean: float, peak: int, headroom: float, expected: tuple[int, int]) -> None:
    assert ar.size_for(mean, peak, headroom) == expected


def test_size_for_rejects_headroom_below_one() -> None:
    with pytest.raises(ValueError):
        ar.size_for(1.0, 2, 0.5)


@pytest.mark.parametrize(("size", "overflow", "budget", "expected"), [
    (5, 10, 30, (5, 10)),   # fits
    (5, 10, 12, (5, 7)),    # overflow goes first
    (10, 5, 8, (8, 0)),     # then the size
    (5, 10, 0, (0, 0)),
    (5, 10, 15, (5, 10)),   # exactly
])
def test_fit(size: int, overflow: int, budget: int, expected: tuple[int, int]) -> None:
    assert ar.fit(size, overflow, budget) == expected
    assert sum(ar.fit(size, overflow, budget)) <= max(budget, 0)


@pytest.mark.parametrize(("allowed", "instances", "workers", "expected"), [
    (139, 1, 8, 17), (97, 1, 8, 12), (10, 3, 4, 0), (100, 2, 5, 10),
])
def test_budget_per_process(allowed: int, instances: int, workers: int, expected: int) -> None:
    assert ar.budget_per_process(allowed, instances, workers) == expected


@pytest.mark.parametrize(("allowed", "workers", "per", "expected"), [
    (151, 8, 30, 0), (151, 8, 4, 4), (97, 4, 15, 1), (100, 1, None, None), (100, 2, 0, None),
])
def test_max_instances(allowed: int, workers: int, per: int | None,
                       expected: int | None) -> None:
    assert ar.max_instances(allowed, workers, per) == expected


@pytest.mark.parametrize(("recycle", "idle", "pre_ping", "ok"), [
    (-1, 28800, False, False),    # not set against MySQL's default
    (3600, 28800, False, True),
    (28800, 28800, False, False),  # equal is too late
    (30000, 28800, False, False),
    (30000, 28800, True, True),    # pre-ping covers it
    (-1, 28800, True, True),
    (-1, None, False, True),       # the server never closes idle connections
    (-1, 0, False, True),
    (0, 600, False, False),        # 0 is not a usable recycle
])
def test_recycle_ok(recycle: float, idle: float | None, pre_ping: bool, ok: bool) -> None:
    assert ar.recycle_ok(recycle, idle, pre_ping) is ok


@pytest.mark.parametrize(("idle", "expected"), [
    (28800, 3600), (600, 480), (60, 48), (1, 1), (None, 3600), (0, 3600),
])
def test_recommended_recycle(idle: float | None, expected: int) -> None:
    got = ar.recommended_recycle(idle)
    assert got == expected
    if idle:
        assert got < idle or idle <= 1


@pytest.mark.parametrize(("given", "expected"), [(30.0, 30.0), (5.0, 5.0), (120.0, 30.0),
                                                 (0.0, 30.0)])
def test_recommended_timeout(given: float, expected: float) -> None:
    assert ar.recommended_timeout(given) == expected


def test_issue_example() -> None:
    """8 gunicorn workers x (10 + 20) against MySQL's default 151, 12 used by others."""
    limits = ServerLimits("mysql", max_connections=151, used_by_others=12)
    a = ar.allowance(limits)
    assert a is not None
    per = ar.per_process(ar.pool_bound(10, 20), None)
    assert per is not None
    assert ar.total(1, 8, per) == 240 > a.allowed == 139
    assert ar.budget_per_process(a.allowed, 1, 8) == 17
    assert ar.max_instances(a.allowed, 8, per) == 0
    assert math.floor(139 / 30) == 4  # four such workers would fit


@pytest.mark.parametrize(("setting", "unit", "expected"), [
    ("300000", "ms", 300.0), ("0", "ms", None), ("5", "min", 300.0), ("2", "h", 7200.0),
    ("45", "s", 45.0), (None, "ms", None),
])
def test_pg_time_settings(setting: str | None, unit: str, expected: float | None) -> None:
    from pooldoctor.advise.server_settings import _pg_seconds

    assert _pg_seconds(setting, unit) == expected
