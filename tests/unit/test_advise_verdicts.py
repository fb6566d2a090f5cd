"""Verdicts PD401-PD404 and the recommendation, on tables of configurations (no server)."""

from __future__ import annotations

from typing import Any

import pytest

from pooldoctor.advise import Measured, PoolConfig, ServerLimits, evaluate
from pooldoctor.advise.inputs import InputError, apply, validate

MYSQL = dict(backend="mysql", max_connections=151, used_by_others=12, idle_timeout_s=28800.0,
             idle_timeout_name="wait_timeout")
PG = dict(backend="postgresql", max_connections=100, reserved=3, used_by_others=0,
          idle_timeout_name="idle_session_timeout")


def cfg(**given: Any) -> PoolConfig:
    c = PoolConfig()
    apply(c, given, "given")
    validate(c)
    return c


CASES = [
    # (id, config, limits, measured, expected codes)
    ("issue-example", dict(workers=8, pool_size=10, max_overflow=20, pre_ping=True),
     MYSQL, None, {"PD401"}),
    ("fits", dict(workers=4, pool_size=10, max_overflow=20, pre_ping=True), MYSQL, None, set()),
    ("exactly-fits", dict(workers=1, pool_size=100, max_overflow=39, pre_ping=True), MYSQL, None,
     set()),
    ("one-over", dict(workers=1, pool_size=100, max_overflow=40, pre_ping=True), MYSQL, None,
     {"PD401"}),
    ("instances-multiply", dict(instances=3, workers=4, pool_size=5, max_overflow=10,
                                pool_recycle=3600), MYSQL, None, {"PD401"}),
    ("threads-exceed-pool", dict(threads=20, pool_size=5, max_overflow=5, pool_recycle=3600),
     MYSQL, None, {"PD402"}),
    ("threads-within-pool", dict(threads=10, pool_size=5, max_overflow=5, pool_recycle=3600),
     MYSQL, None, set()),
    ("mysql-no-recycle", dict(), MYSQL, None, {"PD403"}),
    ("recycle-too-long", dict(pool_recycle=30000), MYSQL, None, {"PD403"}),
    ("recycle-below", dict(pool_recycle=3600), MYSQL, None, set()),
    ("pre-ping-instead", dict(pre_ping=True), MYSQL, None, set()),
    ("pg-no-idle-timeout", dict(), PG, None, set()),  # nothing closes idle connections
    ("pg-idle-session-timeout", dict(pool_recycle=3600),
     dict(PG, idle_timeout_s=300.0), None, {"PD403"}),
    ("unbounded-overflow", dict(max_overflow=-1, pre_ping=True), MYSQL, None, {"PD404"}),
    ("pool-size-zero", dict(pool_size=0, pre_ping=True), MYSQL, None, {"PD404"}),
    ("unbounded-threads-exceed", dict(workers=8, threads=20, max_overflow=-1, pre_ping=True),
     MYSQL, None, {"PD401", "PD404"}),
    ("nullpool-not-unbounded", dict(pool_class="NullPool", threads=4, pre_ping=True), MYSQL,
     None, set()),
    ("async-unbounded", dict(pool_class="AsyncAdaptedQueuePool", max_overflow=-1,
                             pre_ping=True), MYSQL, None, {"PD404"}),
    ("singleton-per-thread", dict(pool_class="SingletonThreadPool", workers=8, threads=20,
                                  pre_ping=True), MYSQL, None, {"PD401"}),
    ("no-server-no-totals", dict(workers=100, pool_size=50), None, None, set()),
    ("user-limit-binds", dict(workers=2, pool_size=5, max_overflow=5, pre_ping=True),
     dict(PG, user="app", user_limit=15, user_limit_name="rolconnlimit", used_by_user=0), None,
     {"PD401"}),
    ("measured-saturated", dict(pre_ping=True), MYSQL,
     Measured(checkouts=500, peak_checked_out=15, waits=40, timeouts=2, max_wait_ms=900.0),
     {"PD402"}),
    ("measured-waits-below-bound", dict(pre_ping=True), MYSQL,  # slow connects, not a small pool
     Measured(checkouts=500, peak_checked_out=6, waits=3, max_wait_ms=150.0), set()),
    ("measured-quiet", dict(pre_ping=True), MYSQL,
     Measured(checkouts=500, peak_checked_out=15, waits=0), set()),
]


@pytest.mark.parametrize(("config", "limits", "measured", "codes"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_verdicts(config: dict[str, Any], limits: dict[str, Any] | None,
                  measured: Measured | None, codes: set[str]) -> None:
    lim = ServerLimits(**limits) if limits is not None else None
    advice = evaluate(cfg(**config), lim, measured)
    assert {f.code for f in advice.findings} == codes


def test_pd401_message_has_the_numbers() -> None:
    advice = evaluate(cfg(workers=8, pool_size=10, max_overflow=20, pre_ping=True),
                      ServerLimits(**MYSQL))
    (f,) = advice.findings
    assert f.message == ("8 workers x (pool_size 10 + max_overflow 20) = 240 connections > 139 "
                         "allowed by the server (max_connections 151 - reserved 0 - "
                         "used by others 12)")
    assert f.details["total"] == 240 and f.details["allowed"] == 139


def test_pd401_unbounded_uses_threads() -> None:
    advice = evaluate(cfg(workers=8, threads=20, max_overflow=-1, pre_ping=True),
                      ServerLimits(**MYSQL))
    f401 = next(f for f in advice.findings if f.code == "PD401")
    assert f401.message.startswith("8 workers x 20 threads (pool unbounded) = 160 connections")


def test_pd402_and_pd403_messages() -> None:
    advice = evaluate(cfg(threads=20, pool_size=5, max_overflow=5, pool_recycle=30000),
                      ServerLimits(**MYSQL))
    by_code = {f.code: f.message for f in advice.findings}
    assert "20 threads per worker share a pool of at most 10 connections" in by_code["PD402"]
    assert "10 of them wait" in by_code["PD402"]
    assert "pool_recycle 30000 s >= the server's wait_timeout 28800 s" in by_code["PD403"]


def test_recommendation_fits_the_server_it_was_fitted_to() -> None:
    limits = ServerLimits(**MYSQL)
    advice = evaluate(cfg(workers=8, threads=40, pool_size=10, max_overflow=20), limits)
    r = advice.recommendation
    assert r.per_process == r.pool_size + r.max_overflow
    assert r.total <= 139
    assert r.pool_recycle < 28800 and r.pool_pre_ping
    # the recommended configuration passes the checks it was made for
    again = evaluate(cfg(workers=8, threads=40, pool_size=r.pool_size,
                         max_overflow=r.max_overflow, pool_recycle=r.pool_recycle,
                         pre_ping=True), limits)
    assert "PD401" not in {f.code for f in again.findings}
    assert "PD403" not in {f.code for f in again.findings}
    assert any("will wait for a connection" in reason for reason in r.reasons)


def test_recommendation_from_littles_law() -> None:
    # 1200 checkouts in 60 s, 42 s held in total: 20/s x 35 ms = 0.7 connections on average
    m = Measured(checkouts=1200, peak_checked_out=4, hold_ms_total=42_000.0, observed_s=60.0)
    advice = evaluate(cfg(pre_ping=True), ServerLimits(**MYSQL), m)
    r = advice.recommendation
    assert (r.pool_size, r.max_overflow) == (2, 2)  # ceil(0.7 x 1.5) = 2, bursts to peak 4
    assert "Little's law: 20.00 checkouts/s x 35.0 ms mean hold = 0.70" in r.basis


def test_recommendation_keeps_a_shorter_recycle() -> None:
    advice = evaluate(cfg(pool_recycle=300), ServerLimits(**MYSQL))
    assert advice.recommendation.pool_recycle == 300


def test_recommendation_when_the_server_is_full() -> None:
    full = dict(MYSQL, used_by_others=151)
    advice = evaluate(cfg(workers=2, pre_ping=True), ServerLimits(**full))
    assert {f.code for f in advice.findings} == {"PD401"}
    assert advice.recommendation.max_instances == 0
    assert any("no room" in reason for reason in advice.recommendation.reasons)


def test_instances_the_server_can_take() -> None:
    advice = evaluate(cfg(workers=4, threads=4, pre_ping=True), ServerLimits(**MYSQL))
    r = advice.recommendation
    assert (r.pool_size, r.max_overflow) == (4, 0)
    assert r.max_instances == 139 // 16
    assert r.max_instances_current == 139 // 60


@pytest.mark.parametrize(("given", "words"), [
    (dict(workers=0), "workers must be at least 1, got 0 (given)"),
    (dict(instances=0), "instances must be at least 1"),
    (dict(threads=0), "threads must be at least 1"),
    (dict(pool_size=-2), "pool_size cannot be negative, got -2"),
])
def test_invalid_inputs(given: dict[str, Any], words: str) -> None:
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")):
        cfg(**given)


def test_sources_are_recorded() -> None:
    c = PoolConfig()
    apply(c, {"pool_size": 3}, "source")
    apply(c, {"pool_size": 7, "workers": 2}, "given")
    assert (c.pool_size, c.source_of("pool_size")) == (7, "given")
    assert c.source_of("max_overflow") == "default"
    d = c.to_dict()
    assert d["workers"] == {"value": 2, "source": "given"}


def test_rolling_deploy_note() -> None:
    tight = evaluate(cfg(workers=4, pool_size=10, max_overflow=20, pre_ping=True),
                     ServerLimits(**MYSQL))  # 120 of 139
    assert not tight.findings
    assert any("2 x 120 = 240" in n for n in tight.notes)
    roomy = evaluate(cfg(workers=2, pool_size=10, max_overflow=20, pre_ping=True),
                     ServerLimits(**MYSQL))  # 60 of 139
    assert not any("rolling deploy" in n for n in roomy.notes)
