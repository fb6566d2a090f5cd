"""The OpenTelemetry connection metrics in Prometheus exposition (names as OpenTelemetry's
Prometheus compatibility spec writes them: ``db_client_connection_count``,
``db_client_connection_wait_time_seconds``, ...), ``target_info`` with the process's
``host.name`` and ``process.pid``, and findings by site. Used by :mod:`.prometheus`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import prometheus_client
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)

from . import semconv
from .recorder import RECORDER, Histogram
from .semconv import (
    BUCKETS,
    INSTRUMENTS,
    POOL_NAME,
    SITE_FINDINGS_HELP,
    STATE,
    PoolFigures,
    figures,
    pool_name,
    prometheus_label,
    prometheus_name,
)

POOL = prometheus_label(POOL_NAME)  # db_client_connection_pool_name
STATE_LABEL = prometheus_label(STATE)  # db_client_connection_state
SITE_FINDINGS = prometheus_label(semconv.SITE_FINDINGS)  # pooldoctor_findings_by_site
TARGET_HELP = "Target metadata: the process's host.name and process.pid."

_GAUGES: dict[str, Any] = {
    "db.client.connection.idle.max": lambda f: f.idle_max,
    "db.client.connection.idle.min": lambda f: f.idle_min,
    "db.client.connection.max": lambda f: f.max or None,
    "db.client.connection.pending_requests": lambda f: f.pending,
}
_HISTOGRAMS = ("db.client.connection.wait_time", "db.client.connection.use_time",
               "db.client.connection.create_time")


def _help(name: str) -> str:
    return f"{INSTRUMENTS[name][2]} ({name})"


def _family_name(name: str) -> str:
    """prometheus_client adds ``_total`` to counter families itself."""
    out = prometheus_name(name)
    return out[:-len("_total")] if out.endswith("_total") else out


def _buckets(h: Histogram) -> list[tuple[str, float]]:
    return [("+Inf" if b == float("inf") else repr(b), float(n)) for b, n in h.cumulative()]


def host_labels() -> dict[str, str]:
    return {"host_name": socket.gethostname(), "process_pid": str(os.getpid())}


def collect(target_info: bool = True) -> Iterator[Metric]:
    """The families of one process, read now."""
    figs = figures()
    count = GaugeMetricFamily(prometheus_name("db.client.connection.count"),
                              _help("db.client.connection.count"), labels=[POOL, STATE_LABEL])
    gauges = {n: GaugeMetricFamily(prometheus_name(n), _help(n), labels=[POOL]) for n in _GAUGES}
    timeouts = CounterMetricFamily(_family_name("db.client.connection.timeouts"),
                                   _help("db.client.connection.timeouts"), labels=[POOL])
    hists = {n: HistogramMetricFamily(prometheus_name(n), _help(n), labels=[POOL])
             for n in _HISTOGRAMS}
    for label, f in figs.items():
        timeouts.add_metric([label], f.timeouts)
        for n, h in zip(_HISTOGRAMS, (f.wait, f.use, f.create)):
            hists[n].add_metric([label], _buckets(h), h.sum)
        if not f.live:
            continue
        count.add_metric([label, "used"], f.used)
        count.add_metric([label, "idle"], f.idle)
        for n, fam in gauges.items():
            v = _GAUGES[n](f)
            if v is not None:
                fam.add_metric([label], v)
    yield count
    yield from gauges.values()
    yield timeouts
    yield from hists.values()
    sites = CounterMetricFamily(SITE_FINDINGS, SITE_FINDINGS_HELP,
                                labels=["code", "severity", "site"])
    for key, times in sorted(dict(RECORDER.site_findings).items()):
        sites.add_metric(list(key), times)
    yield sites
    if target_info:
        yield InfoMetricFamily("target", TARGET_HELP, value=host_labels())


class Mirror:
    """Multiprocess mode: the same families written through prometheus_client's files as
    events happen; gauges set on each tick (``livesum``: the live processes added up)."""

    def __init__(self) -> None:
        pc = prometheus_client
        self.count = pc.Gauge(prometheus_name("db.client.connection.count"),
                              _help("db.client.connection.count"), [POOL, STATE_LABEL],
                              registry=None, multiprocess_mode="livesum")
        self.gauges = {n: pc.Gauge(prometheus_name(n), _help(n), [POOL], registry=None,
                                   multiprocess_mode="livesum") for n in _GAUGES}
        self.timeouts = pc.Counter(_family_name("db.client.connection.timeouts"),
                                   _help("db.client.connection.timeouts"), [POOL],
                                   registry=None)
        self.hists = {n: pc.Histogram(prometheus_name(n), _help(n), [POOL],
                                      buckets=BUCKETS[n], registry=None) for n in _HISTOGRAMS}
        self.sites = pc.Counter(SITE_FINDINGS, SITE_FINDINGS_HELP, ["code", "severity", "site"],
                                registry=None)
        self.target = pc.Gauge("target_info", TARGET_HELP, ["host_name"], registry=None,
                               multiprocess_mode="livemax")

    def timeout(self, info: Any) -> None:
        self.timeouts.labels(pool_name(info)).inc()

    def wait(self, info: Any, seconds: float) -> None:
        self.hists["db.client.connection.wait_time"].labels(pool_name(info)).observe(seconds)

    def use(self, info: Any, seconds: float) -> None:
        self.hists["db.client.connection.use_time"].labels(pool_name(info)).observe(seconds)

    def create(self, info: Any, seconds: float) -> None:
        self.hists["db.client.connection.create_time"].labels(pool_name(info)).observe(seconds)

    def finding(self, code: str, severity: str, site: str) -> None:
        self.sites.labels(code, severity, site).inc()

    def tick(self) -> None:
        self.target.labels(socket.gethostname()).set(1)
        for label, f in figures(histograms=False).items():
            one: PoolFigures = f
            self.count.labels(label, "used").set(one.used)
            self.count.labels(label, "idle").set(one.idle)
            for n, g in self.gauges.items():
                v = _GAUGES[n](one)
                g.labels(label).set(0 if v is None else v)
