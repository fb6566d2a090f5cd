"""Metric values against known workloads on PostgreSQL and MariaDB: stats(), the Prometheus
endpoint scraped over HTTP, OpenTelemetry through the SDK's in-memory reader."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import pooldoctor
from pooldoctor import metrics
from pooldoctor.metrics import prometheus
from pooldoctor.metrics.recorder import RECORDER
from pooldoctor.runtime.server_ids import server_id

WAIT_THRESHOLD = 0.05


@pytest.fixture(params=["postgresql", "mysql"])
def server_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("pg_url" if request.param == "postgresql" else "mysql_url")
    return url


@pytest.fixture
def rec(guard: Any) -> Iterator[Any]:
    metrics.enable()
    yield RECORDER
    metrics.disable()


def poll(cond: Any, what: str, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        threading.Event().wait(0.005)


def make_engine(url: str) -> tuple[sa.Engine, str]:
    name = f"metrics-it-{uuid.uuid4().hex[:8]}"
    e = sa.create_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.3)
    with e.connect():  # open the one connection first: a slow first connect is a wait too
        pass
    pooldoctor.instrument(e, name=name, wait_threshold=WAIT_THRESHOLD, log=False,
                          exit_check=False)
    return e, name


def workload(e: sa.Engine) -> None:
    """8 checkouts: 5 plain, 1 holder and 1 that waits (>= WAIT_THRESHOLD) behind it, 1 holder
    again while a 9th checkout times out (it waited too: 2 waits, 1 timeout). No connection
    is opened (the pool is warm)."""
    for _ in range(5):
        with e.connect() as c:
            c.exec_driver_sql("SELECT 1")
    info = pooldoctor.runtime.sqlalchemy.stats_for(e)
    holder = e.connect()
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            with e.connect() as c:
                c.exec_driver_sql("SELECT 1")
        except BaseException as ex:  # pragma: no cover - reported below
            errors.append(ex)

    t = threading.Thread(target=waiter)
    t.start()
    poll(lambda: info.waiting == 1, "the waiter to queue")
    threading.Event().wait(WAIT_THRESHOLD * 1.5)  # the wait must exceed the threshold
    holder.close()
    t.join(10)
    assert not errors
    holder = e.connect()
    with pytest.raises(sa.exc.TimeoutError):
        e.connect()
    holder.close()


def test_stats_after_a_known_workload(rec: Any, server_url: str) -> None:
    e, name = make_engine(server_url)
    before = dict(RECORDER.findings)
    workload(e)
    s = pooldoctor.stats(e)
    assert s["pool"] == name
    assert s["requests_num"] == 8
    assert s["returns_num"] == 8
    assert s["requests_waited"] == 2
    assert s["requests_timeouts"] == 1
    assert s["connections_num"] == 0
    assert s["requests_wait_ms"] >= WAIT_THRESHOLD * 1000
    assert (s["pool_size"], s["pool_max"]) == (1, 1)
    assert (s["connections_open"], s["connections_used"], s["connections_idle"]) == (1, 0, 1)
    assert s["requests_waiting"] == 0
    assert all(v == 0 for k, v in s.items() if k.startswith("connections_closed_"))
    assert RECORDER.findings.get("PD103", 0) - before.get("PD103", 0) == 1
    # the wait that timed out is told by PD103, not also by PD109
    assert RECORDER.findings.get("PD109", 0) - before.get("PD109", 0) == 1
    e.dispose()
    assert pooldoctor.stats(e)["connections_closed_disposed"] == 1


def _samples(text: str, pool: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = dict(s.labels)
            if labels.pop("pool", None) == pool:
                out[(s.name, tuple(sorted(labels.items())))] = s.value
    return out


def test_prometheus_endpoint_scraped_over_http(rec: Any, server_url: str) -> None:
    e, name = make_engine(server_url)
    registry = CollectorRegistry()
    server = prometheus.serve(0, registry=registry)
    try:
        workload(e)
        port = server.server_port
        r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert r.status_code == 200
        s = _samples(r.text, name)
        assert s[("pooldoctor_checkouts_total", ())] == 8
        assert s[("pooldoctor_checkout_timeouts_total", ())] == 1
        assert s[("pooldoctor_checkout_waits_total", ())] == 2
        assert s[("pooldoctor_connections_created_total", ())] == 0
        assert s[("pooldoctor_checkout_wait_seconds_count", ())] == 8
        assert s[("pooldoctor_checkout_wait_seconds_bucket", (("le", "+Inf"),))] == 8
        assert s[("pooldoctor_checkout_wait_seconds_sum", ())] >= WAIT_THRESHOLD
        assert s[("pooldoctor_connection_use_seconds_count", ())] == 8
        assert s[("pooldoctor_connection_create_seconds_count", ())] == 0
        assert s[("pooldoctor_connections", (("state", "idle"),))] == 1
        assert s[("pooldoctor_connections", (("state", "used"),))] == 0
        assert s[("pooldoctor_connections_max", ())] == 1
        assert s[("pooldoctor_checkouts_waiting", ())] == 0
        assert s[("pooldoctor_connections_closed_total", (("reason", "overflow"),))] == 0
        # other pools of this process may be listed too: every URL with a password is masked
        assert "password" not in r.text
        assert set(re.findall(r"://[^/\"@:]*:([^/\"@]*)@", r.text)) <= {"***"}
        # a checkout held right now shows as used
        held = e.connect()
        s = _samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text, name)
        assert s[("pooldoctor_connections", (("state", "used"),))] == 1
        assert s[("pooldoctor_connections", (("state", "idle"),))] == 0
        held.close()
    finally:
        server.shutdown()
        server.server_close()
        e.dispose()


def test_register_is_idempotent_and_removable(rec: Any) -> None:
    registry = CollectorRegistry()
    c1 = prometheus.register(registry)
    c2 = prometheus.register(registry)
    assert c1 is c2
    prometheus.unregister(registry)
    assert registry.get_sample_value("pooldoctor_checkouts_total", {"pool": "x"}) is None


def test_opentelemetry_instruments(rec: Any, server_url: str) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from pooldoctor.metrics import otel

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    otel.instrument(provider)
    e, name = make_engine(server_url)
    try:
        workload(e)
        points: dict[str, list[Any]] = {}
        data = reader.get_metrics_data()
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    points.setdefault(m.name, []).extend(m.data.data_points)

        def mine(metric: str, **attrs: str) -> list[Any]:
            want = {"db.client.connection.pool.name": name, **attrs}
            return [p for p in points.get(metric, [])
                    if all(p.attributes.get(k) == v for k, v in want.items())]

        state = "db.client.connection.state"
        assert [p.value for p in mine("db.client.connection.count", **{state: "idle"})] == [1]
        assert [p.value for p in mine("db.client.connection.count", **{state: "used"})] == [0]
        assert [p.value for p in mine("db.client.connection.max")] == [1]
        assert [p.value for p in mine("db.client.connection.pending_requests")] == [0]
        assert [p.value for p in mine("db.client.connection.timeouts")] == [1]
        # the time to obtain a connection: the 8 checkouts and the one that timed out (0.3 s)
        assert [p.count for p in mine("db.client.connection.wait_time")] == [9]
        assert mine("db.client.connection.wait_time")[0].sum >= 0.3
        assert [p.count for p in mine("db.client.connection.use_time")] == [8]
        assert mine("db.client.connection.create_time") == []  # the pool was warm
        codes = {p.attributes["pooldoctor.code"]: p.value
                 for p in points.get("pooldoctor.findings", [])}
        assert codes.get("PD103") == 1 and codes.get("PD109") == 1
    finally:
        otel.uninstrument(provider)
        provider.shutdown()
        e.dispose()


def test_connection_killed_by_the_server_counts_as_invalidated(rec: Any, server_url: str) -> None:
    name = f"metrics-kill-{uuid.uuid4().hex[:8]}"
    e = sa.create_engine(server_url, pool_size=1, max_overflow=0, pool_pre_ping=True)
    pooldoctor.instrument(e, name=name, log=False, exit_check=False)
    admin = sa.create_engine(server_url, poolclass=sa.pool.NullPool)
    try:
        with e.connect() as c:
            sid = server_id(c.connection.driver_connection)
        assert sid
        with admin.connect() as a:
            if e.dialect.name == "postgresql":
                a.exec_driver_sql(f"SELECT pg_terminate_backend({int(sid)})")
            else:
                a.exec_driver_sql(f"KILL {int(sid)}")
        with e.connect() as c:  # pre-ping finds the dead connection and reconnects
            c.exec_driver_sql("SELECT 1")
        s = pooldoctor.stats(e)
        assert s["connections_closed_invalidated"] == 1
        assert s["connections_num"] == 2
        assert s["connections_ms"] > 0
        assert s["connections_closed_recycled"] == 0 and s["connections_closed_overflow"] == 0
    finally:
        e.dispose()
        admin.dispose()
