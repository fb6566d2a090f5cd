"""The OpenTelemetry db.client.connection.* metrics through the real SDK on a PostgreSQL pool
under load (timed-out waits in wait_time), and pooldoctor's Prometheus exposition against
what OpenTelemetry's own Prometheus exporter makes of the same instruments."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.pool import QueuePool

import pooldoctor
from pooldoctor import metrics
from pooldoctor.findings import shorten_path
from pooldoctor.metrics import otel, prometheus, semconv
from pooldoctor.metrics.recorder import RECORDER
from pooldoctor.metrics.semconv import pool_name
from pooldoctor.runtime.sqlalchemy import stats_for

from ..otel_helpers import figures

TIMEOUT = 0.5


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


def test_otel_sdk_on_a_postgres_pool_under_load(rec: Any, pg_url: str) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader],
                             resource=Resource.create(otel.resource_attributes()))
    otel.instrument(provider)
    u = sa.engine.make_url(pg_url)
    name = f"{u.host}:{u.port or 5432}/{u.database}"  # the default pool name
    before = figures(reader, name)  # other pools of this URL in the process, if any
    # timeouts of gone pools of the name (SQLAlchemy's or the adapters') are observed once the
    # name has a live pool again: count them from the start
    earlier = semconv.figures(histograms=False).get(name)
    before[("db.client.connection.timeouts", "")] = earlier.timeouts if earlier else 0
    e = sa.create_engine(pg_url, pool_size=2, max_overflow=0, pool_timeout=TIMEOUT)
    pooldoctor.instrument(e, log=False, exit_check=False)
    info = stats_for(e)
    assert pool_name(info) == name

    def delta(metric: str, state: str = "") -> float:
        return figures(reader, name).get((metric, state), 0) - before.get((metric, state), 0)

    ok = [0]
    timed_out = [0]
    lock = threading.Lock()

    def checkout(sleep: float) -> None:
        try:
            with e.connect() as c:
                if sleep:
                    c.exec_driver_sql(f"SELECT pg_sleep({sleep})")
            with lock:
                ok[0] += 1
        except sa.exc.TimeoutError:
            with lock:
                timed_out[0] += 1

    try:
        # both connections held: three checkouts queue, then time out
        held = [e.connect() for _ in range(2)]
        waiters = [threading.Thread(target=checkout, args=(0,)) for _ in range(3)]
        for t in waiters:
            t.start()
        poll(lambda: info.waiting == 3, "three checkouts to queue")
        assert delta("db.client.connection.pending_requests") == 3
        assert delta("db.client.connection.count", "used") == 2
        assert delta("db.client.connection.count", "idle") == 0
        for t in waiters:
            t.join(10)
        assert timed_out[0] == 3 and ok[0] == 0
        for c in held:
            c.close()
        ok[0] += 2

        # load: 6 threads, 15 checkouts each, on 2 connections
        def worker() -> None:
            for _ in range(15):
                checkout(0.005)

        workers = [threading.Thread(target=worker) for _ in range(6)]
        for t in workers:
            t.start()
        for t in workers:
            t.join(60)
        assert ok[0] + timed_out[0] == 2 + 3 + 90

        # every attempt is in wait_time, the timed-out ones with the time they waited
        assert delta("db.client.connection.wait_time_count") == ok[0] + timed_out[0]
        assert delta("db.client.connection.wait_time_sum") >= 3 * TIMEOUT * 0.95
        assert delta("db.client.connection.timeouts") == timed_out[0]
        assert delta("db.client.connection.use_time_count") == ok[0]
        assert delta("db.client.connection.create_time_count") == 2
        assert delta("db.client.connection.max") == 2
        assert delta("db.client.connection.idle.max") == 2
        assert figures(reader, name)[("db.client.connection.idle.min", "")] == 0
        assert delta("db.client.connection.pending_requests") == 0
        assert delta("db.client.connection.count", "used") == 0
        assert delta("db.client.connection.count", "idle") == 2

        resource = reader.get_metrics_data().resource_metrics[0].resource.attributes
        assert resource["host.name"] == socket.gethostname()
        assert resource["process.pid"] == os.getpid()
    finally:
        otel.uninstrument(provider)
        provider.shutdown()
        e.dispose()


def _families(text: str, pool: str) -> dict[str, tuple[str, dict[tuple[Any, ...], float]]]:
    """``family -> (type, {(sample name, labels without otel_scope_*): value})`` for the
    OpenTelemetry-named families, ``pool``'s samples only."""
    out: dict[str, tuple[str, dict[tuple[Any, ...], float]]] = {}
    for fam in text_string_to_metric_families(text):
        if not fam.name.startswith(("db_client_connection", "pooldoctor_findings_by_site",
                                    "target")):
            continue
        samples: dict[tuple[Any, ...], float] = {}
        for s in fam.samples:
            labels = {k: v for k, v in s.labels.items() if not k.startswith("otel_scope_")}
            if labels.get("db_client_connection_pool_name", pool) != pool:
                continue
            samples[(s.name, tuple(sorted(labels.items())))] = s.value
        out[fam.name] = (fam.type, samples)
    return out


def test_prometheus_exposition_is_what_otel_makes_of_the_same(rec: Any, tmp_path: Path) -> None:
    """Same names, types, labels, buckets and values as OpenTelemetry's Prometheus exporter
    reading pooldoctor's instruments: a dashboard reads either."""
    otel_registry = CollectorRegistry()
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader(registry=otel_registry)],
        resource=Resource.create(otel.resource_attributes()))
    otel.instrument(provider)
    ours = CollectorRegistry()
    prometheus.register(ours)
    name = f"semconv-{uuid.uuid4().hex[:8]}"
    e = sa.create_engine(f"sqlite:///{tmp_path / 'p.sqlite'}", poolclass=QueuePool,
                         pool_size=1, max_overflow=0, pool_timeout=0.05)
    pooldoctor.instrument(e, name=name, log=False, exit_check=False)
    try:
        for _ in range(3):
            with e.connect() as c:
                c.exec_driver_sql("SELECT 1")
        held = e.connect()
        here = sys._getframe().f_code.co_name
        with pytest.raises(sa.exc.TimeoutError):
            timeout_line = sys._getframe().f_lineno + 1
            e.connect()  # PD103, with this line as its site
        mine = _families(generate_latest(ours).decode(), name)
        theirs = _families(generate_latest(otel_registry).decode(), name)
        held.close()
    finally:
        prometheus.unregister(ours)
        otel.uninstrument(provider)
        provider.shutdown()
        e.dispose()

    assert set(mine) == {
        "db_client_connection_count", "db_client_connection_idle_max",
        "db_client_connection_idle_min", "db_client_connection_max",
        "db_client_connection_pending_requests", "db_client_connection_timeouts",
        "db_client_connection_wait_time_seconds", "db_client_connection_use_time_seconds",
        "db_client_connection_create_time_seconds", "pooldoctor_findings_by_site", "target_info"}
    assert set(mine) == set(theirs)
    for fam, (kind, samples) in mine.items():
        their_kind, their_samples = theirs[fam]
        if fam == "target_info":  # theirs has the SDK's attributes too; ours are among them
            (labels,), (their_labels,) = ({k[1] for k in samples}, {k[1] for k in their_samples})
            assert set(labels) <= set(their_labels)
            assert dict(labels)["host_name"] == socket.gethostname()
            assert dict(labels)["process_pid"] == str(os.getpid())
            continue
        assert kind == their_kind, fam
        assert samples, fam
        if fam == "pooldoctor_findings_by_site":  # findings of earlier tests are listed too
            site = f"{shorten_path(__file__)}:{timeout_line} in {here}"
            samples = {k: v for k, v in samples.items() if k[1][2] == ("site", site)}
            assert samples, site
            their_samples = {k: v for k, v in their_samples.items()
                             if dict(k[1]).get("site") == site}
        assert set(samples) == set(their_samples), fam
        for k, v in samples.items():
            assert v == pytest.approx(their_samples[k]), (fam, k)
    used = ("db_client_connection_count", (("db_client_connection_pool_name", name),
                                           ("db_client_connection_state", "used")))
    assert mine["db_client_connection_count"][1][used] == 1
    timeouts = ("db_client_connection_timeouts_total", (("db_client_connection_pool_name",
                                                         name),))
    assert mine["db_client_connection_timeouts"][1][timeouts] == 1
    waits = ("db_client_connection_wait_time_seconds_count",
             (("db_client_connection_pool_name", name),))
    assert mine["db_client_connection_wait_time_seconds"][1][waits] == 5  # 4 + the timed out
