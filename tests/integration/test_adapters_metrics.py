"""The adapters' pools in the metrics: ``pooldoctor.stats()``, the Prometheus gauges and
OpenTelemetry's ``db.client.connection.*``, on a real psycopg_pool and asyncpg pool."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import psycopg_pool
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import pooldoctor
from pooldoctor import metrics
from pooldoctor.guard import GUARD
from pooldoctor.metrics import otel, prometheus
from pooldoctor.metrics.semconv import pool_name
from pooldoctor.runtime.adapters.protocol import stats_for_pool

from ..adapter_helpers import pg_args, pg_dsn, pg_uri
from ..otel_helpers import figures


@pytest.fixture
def guarded(pg_url: str, guard: Any) -> Iterator[None]:
    GUARD.clear()
    pooldoctor.instrument(log=False, exit_check=False)
    metrics.enable()
    yield
    metrics.disable()


def prom_gauges(registry: CollectorRegistry, label: str) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in fam.samples:
            if s.labels.get("pool") == label:
                out[(s.name, s.labels.get("state", ""))] = s.value
    return out


def test_psycopg_pool_in_stats_prometheus_and_otel(guarded: None) -> None:
    name = f"pd-metrics-{uuid.uuid4().hex[:8]}"
    reader = InMemoryMetricReader()
    otel.instrument(MeterProvider(metric_readers=[reader]))
    registry = CollectorRegistry()
    prometheus.register(registry)
    pool = psycopg_pool.ConnectionPool(pg_dsn(), min_size=2, max_size=3, name=name, open=True)
    try:
        pool.wait(timeout=30)
        a = pool.getconn()
        b = pool.getconn()
        st = stats_for_pool(pool)
        assert st is not None and pool_name(st) == name  # the name the user gave
        label = st.label
        s = pooldoctor.stats(pool)
        assert (s["connections_used"], s["pool_max"], s["requests_num"]) == (2, 3, 2)
        assert s["connections_idle"] == pool.get_stats()["pool_available"]
        assert pooldoctor.stats()[label]["connections_used"] == 2
        g = prom_gauges(registry, label)
        assert g[("pooldoctor_connections", "used")] == 2
        assert g[("pooldoctor_connections_max", "")] == 3
        o = figures(reader, name)
        assert o[("db.client.connection.count", "used")] == 2
        assert o[("db.client.connection.max", "")] == 3
        assert o[("db.client.connection.idle.min", "")] == 2
        pool.putconn(a)
        pool.putconn(b)
        s = pooldoctor.stats(pool)
        assert (s["connections_used"], s["returns_num"]) == (0, 2)
        assert figures(reader, name)[("db.client.connection.count", "used")] == 0
        assert prom_gauges(registry, label)[("pooldoctor_connections", "used")] == 0
    finally:
        prometheus.unregister(registry)
        pool.close()


def test_unnamed_psycopg_pool_is_named_by_its_server() -> None:
    pool = psycopg_pool.ConnectionPool(pg_dsn(), min_size=0, max_size=1, open=False)
    from pooldoctor.runtime.adapters.psycopg_pool import _stats

    st = _stats(pool)
    a = pg_args()
    assert st.name is None and st.label == f"psycopg_pool:{pool.name}"
    assert pool_name(st) == f"{a['host']}:{a['port']}/{a['dbname']}"


async def test_asyncpg_pool_in_stats_and_otel_by_its_default_name(guarded: None) -> None:
    reader = InMemoryMetricReader()
    otel.instrument(MeterProvider(metric_readers=[reader]))
    a = pg_args()
    name = f"{a['host']}:{a['port']}/{a['dbname']}"  # server.address:server.port/db.namespace
    before = figures(reader, name)  # other pools of this server in the process
    pool = await asyncpg.create_pool(pg_uri(), min_size=1, max_size=2)
    try:
        c = await pool.acquire()
        st = stats_for_pool(pool)
        assert st is not None and pool_name(st) == name
        s = pooldoctor.stats(pool)
        assert (s["connections_used"], s["pool_max"], s["requests_num"]) == (1, 2, 1)
        used = figures(reader, name).get(("db.client.connection.count", "used"), 0)
        assert used - before.get(("db.client.connection.count", "used"), 0) == 1
        await pool.release(c)
        await asyncio.sleep(0)
        assert pooldoctor.stats(pool)["connections_used"] == 0
    finally:
        await pool.close()


def test_stats_of_an_unguarded_pool_says_so(guarded: None) -> None:
    pool = psycopg_pool.ConnectionPool(pg_dsn(), min_size=0, max_size=1, open=False)
    with pytest.raises(ValueError, match="not been used under the guard"):
        pooldoctor.stats(pool)
