"""The OpenTelemetry names: default pool names from real engines' URLs, Prometheus names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import pooldoctor
from pooldoctor import metrics
from pooldoctor.metrics.semconv import INSTRUMENTS, figures, pool_name, prometheus_name
from pooldoctor.runtime.sqlalchemy import stats_for


@pytest.fixture
def rec(guard: Any) -> Iterator[None]:
    metrics.enable()
    yield
    metrics.disable()


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql+psycopg://app:s3cret@db.example:6432/orders", "db.example:6432/orders"),
    ("postgresql+psycopg://app:s3cret@db.example/orders", "db.example:5432/orders"),
    ("mysql+pymysql://root:s3cret@10.0.0.7/shop", "10.0.0.7:3306/shop"),
    ("mysql+pymysql://root@[::1]:3307/shop", "[::1]:3307/shop"),
])
def test_default_pool_name_is_address_port_namespace(rec: None, url: str, expected: str) -> None:
    e = sa.create_engine(url)  # nothing connects
    pooldoctor.instrument(e, log=False, exit_check=False)
    try:
        name = pool_name(stats_for(e))
        assert name == expected
        assert "s3cret" not in name
    finally:
        e.dispose()


def test_sqlite_pool_name_is_the_file_and_a_given_name_wins(rec: None, tmp_path: Path) -> None:
    path = tmp_path / "n.sqlite"
    e = sa.create_engine(f"sqlite:///{path}")
    pooldoctor.instrument(e, log=False, exit_check=False)
    named = sa.create_engine(f"sqlite:///{path}")
    pooldoctor.instrument(named, name="orders", log=False, exit_check=False)
    try:
        assert pool_name(stats_for(e)) == str(path)
        assert pool_name(stats_for(named)) == "orders"
        with e.connect(), named.connect():
            got = figures()
        assert got[str(path)].used == 1 and got["orders"].used == 1
    finally:
        e.dispose()
        named.dispose()


def test_two_engines_of_one_server_share_one_pool_name(rec: None) -> None:
    """With and without the default port: one name, figures added up."""
    a = sa.create_engine("postgresql+psycopg://app@db.example/orders", pool_size=3)
    b = sa.create_engine("postgresql+psycopg://app@db.example:5432/orders", pool_size=4)
    for e in (a, b):
        pooldoctor.instrument(e, log=False, exit_check=False)
    try:
        f = figures(histograms=False)["db.example:5432/orders"]
        assert f.max == 3 + 10 + 4 + 10  # pool_size + the default max_overflow, twice
        assert f.idle_max == 7 and f.idle_min == 0
    finally:
        a.dispose()
        b.dispose()


def test_prometheus_names_follow_opentelemetry_compatibility() -> None:
    assert {n: prometheus_name(n) for n in INSTRUMENTS} == {
        "db.client.connection.count": "db_client_connection_count",
        "db.client.connection.idle.max": "db_client_connection_idle_max",
        "db.client.connection.idle.min": "db_client_connection_idle_min",
        "db.client.connection.max": "db_client_connection_max",
        "db.client.connection.pending_requests": "db_client_connection_pending_requests",
        "db.client.connection.timeouts": "db_client_connection_timeouts_total",
        "db.client.connection.create_time": "db_client_connection_create_time_seconds",
        "db.client.connection.wait_time": "db_client_connection_wait_time_seconds",
        "db.client.connection.use_time": "db_client_connection_use_time_seconds",
    }


def test_exposition_options(rec: None, tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from pooldoctor.metrics import prometheus

    e = sa.create_engine(f"sqlite:///{tmp_path / 'o.sqlite'}")
    pooldoctor.instrument(e, name="opts", log=False, exit_check=False)
    registry = CollectorRegistry()
    try:
        with e.connect():
            prometheus.register(registry)
            full = generate_latest(registry).decode()
            prometheus.register(registry, target_info=False)
            no_target = generate_latest(registry).decode()
            prometheus.register(registry, otel_names=False)
            legacy = generate_latest(registry).decode()
    finally:
        prometheus.register(registry)  # the defaults again, for the other tests
        prometheus.unregister(registry)
        e.dispose()
    used = 'db_client_connection_count{db_client_connection_pool_name="opts",' \
           'db_client_connection_state="used"} 1.0'
    assert used in full and "\ntarget_info{" in full
    assert used in no_target and "target_info" not in no_target
    assert "db_client_connection" not in legacy and "target_info" not in legacy
    assert 'pooldoctor_connections{pool="opts",state="used"} 1.0' in legacy


def test_otel_histograms_recorded_off_the_checkout_path(rec: None, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkouts queue their times; a collection records them first, so none is missing;
    a long queue is recorded at once (no tick: no hoarding)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from pooldoctor.metrics import otel

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    m = otel.instrument(provider)
    e = sa.create_engine(f"sqlite:///{tmp_path / 'q.sqlite'}")
    pooldoctor.instrument(e, name="deferred", log=False, exit_check=False)

    def counts() -> dict[str, int]:
        out = {}
        for rm in reader.get_metrics_data().resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for p in metric.data.data_points:
                        if p.attributes.get("db.client.connection.pool.name") == "deferred" \
                                and hasattr(p, "count"):
                            out[metric.name] = p.count
        return out

    try:
        for _ in range(10):
            e.connect().close()
        got = counts()
        assert got["db.client.connection.wait_time"] == 10
        assert got["db.client.connection.use_time"] == 10
        assert len(m.pending) == 0
        monkeypatch.setattr(otel, "MAX_PENDING", 5)
        for _ in range(20):
            e.connect().close()
            assert len(m.pending) <= 6
        assert counts()["db.client.connection.use_time"] == 30
    finally:
        otel.uninstrument(provider)
        provider.shutdown()
        e.dispose()
