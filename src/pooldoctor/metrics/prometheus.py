"""Prometheus exporter (``prometheus-client``, extra ``prometheus``).

One process: :class:`PoolCollector` reads the guard's figures when scraped — nothing is added to
the checkout path. Several processes (gunicorn, multiprocessing; ``PROMETHEUS_MULTIPROC_DIR``
set before ``prometheus_client`` is imported): a mirror writes the same metrics through
``prometheus_client``'s multiprocess files as events happen, and :func:`serve` exposes the
aggregate with ``MultiProcessCollector``. Metric names are listed in docs/metrics.md.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

try:
    import prometheus_client
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry
except ModuleNotFoundError as e:  # pragma: no cover - depends on the install
    raise ModuleNotFoundError(
        "pooldoctor.metrics.prometheus needs prometheus-client: "
        "pip install 'pooldoctor[prometheus]'", name=e.name) from None

from ..guard import GUARD
from . import prom_otel
from .pools import current, infos
from .recorder import (
    CLOSE_REASONS,
    CREATE_BUCKETS,
    RECORDER,
    USE_BUCKETS,
    WAIT_BUCKETS,
    Histogram,
    enable,
    metrics_of,
    severity,
    site_label,
)

PREFIX = "pooldoctor"
MULTIPROC_ENV = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")

# name (without _total for counters) -> help
HELP = {
    "connections": "Connections of the pool by state (used: checked out; idle: in the pool).",
    "connections_max": "Most connections the pool may open (pool_size + max_overflow).",
    "checkouts_waiting": "Checkouts waiting for a free connection right now.",
    "checkouts": "Checkouts from the pool.",
    "checkout_waits": "Checkouts that waited at least the guard's wait_threshold (PD109).",
    "checkout_timeouts": "Checkouts that timed out: the pool was exhausted (PD103).",
    "checkout_wait_seconds": "Time a checkout waited for a connection.",
    "connection_use_seconds": "Time a connection stayed checked out (checkout to checkin).",
    "connection_create_seconds": "Time it took to open a new connection to the server.",
    "connections_created": "Connections opened by the pool.",
    "connections_closed": "Connections closed by the pool, by reason.",
    "gc_reclaimed": "Checkouts ended by the garbage collector instead of a checkin (PD102).",
    "findings": "pooldoctor findings made in this process, by code.",
}


def multiprocess_dir() -> str | None:
    for name in MULTIPROC_ENV:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _n(name: str) -> str:
    return f"{PREFIX}_{name}"


def _buckets(h: Histogram) -> list[tuple[str, float]]:
    return [("+Inf" if b == float("inf") else repr(b), float(n)) for b, n in h.cumulative()]


class PoolCollector(Collector):
    """A custom collector: the figures of every guarded pool, read at scrape time.

    Pools are labelled ``pool`` with their name or masked URL; pools with the same label are
    added up. The OpenTelemetry-named families (:mod:`.prom_otel`) follow.
    """

    target_info = True  # also expose target_info (host_name, process_pid)
    otel_names = True  # also expose the OpenTelemetry-named families

    def collect(self) -> Iterator[Metric]:
        conns = GaugeMetricFamily(_n("connections"), HELP["connections"], labels=["pool", "state"])
        cmax = GaugeMetricFamily(_n("connections_max"), HELP["connections_max"], labels=["pool"])
        waiting = GaugeMetricFamily(_n("checkouts_waiting"), HELP["checkouts_waiting"],
                                    labels=["pool"])
        counters = {k: CounterMetricFamily(_n(k), HELP[k], labels=["pool"]) for k in (
            "checkouts", "checkout_waits", "checkout_timeouts", "connections_created",
            "gc_reclaimed")}
        closed = CounterMetricFamily(_n("connections_closed"), HELP["connections_closed"],
                                     labels=["pool", "reason"])
        hists = {k: HistogramMetricFamily(_n(k), HELP[k], labels=["pool"]) for k in (
            "checkout_wait_seconds", "connection_use_seconds", "connection_create_seconds")}

        for label, group in _by_label(infos()).items():
            used = idle = wait_n = 0
            mx: int | None = 0
            sums = dict.fromkeys(counters, 0)
            reasons = dict.fromkeys(CLOSE_REASONS, 0)
            hs = {"checkout_wait_seconds": Histogram(WAIT_BUCKETS),
                  "connection_use_seconds": Histogram(USE_BUCKETS),
                  "connection_create_seconds": Histogram(CREATE_BUCKETS)}
            for info in group:
                cur = current(info)
                used += cur.used
                idle += cur.idle
                wait_n += cur.waiting
                if info.pool() is not None:
                    mx = None if mx is None or cur.max is None else mx + cur.max
                sums["checkouts"] += info.checkouts
                sums["checkout_waits"] += info.waits
                sums["checkout_timeouts"] += info.timeouts
                sums["connections_created"] += info.connects
                sums["gc_reclaimed"] += info.gc_reclaimed
                m = metrics_of(info)
                with m.lock:
                    for r in CLOSE_REASONS:
                        reasons[r] += m.closed[r]
                    hs["checkout_wait_seconds"].add(m.wait)
                    hs["connection_use_seconds"].add(m.use)
                    hs["connection_create_seconds"].add(m.create)
            conns.add_metric([label, "used"], used)
            conns.add_metric([label, "idle"], idle)
            if mx:
                cmax.add_metric([label], mx)
            waiting.add_metric([label], wait_n)
            for k, fam in counters.items():
                fam.add_metric([label], sums[k])
            for r in CLOSE_REASONS:
                closed.add_metric([label, r], reasons[r])
            for k, fam_h in hists.items():
                h = hs[k]
                fam_h.add_metric([label], _buckets(h), h.sum)

        findings = CounterMetricFamily(_n("findings"), HELP["findings"],
                                       labels=["code", "severity"])
        for code, n in sorted(dict(RECORDER.findings).items()):
            findings.add_metric([code, severity(code)], n)

        yield conns
        yield cmax
        yield waiting
        yield from counters.values()
        yield closed
        yield from hists.values()
        yield findings
        if self.otel_names:
            try:
                families = list(prom_otel.collect(self.target_info))
            except Exception:  # the older families are still served
                GUARD.internal_error("metrics collect")
                families = []
            yield from families

    def describe(self) -> Iterator[Metric]:
        return iter(())  # no descriptions: nothing is collected at registration time




def _by_label(all_infos: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for info in all_infos:
        out.setdefault(info.label, []).append(info)
    return out


# ------------------------------------------------------------------------- multiprocess


class _Mirror:
    """Multiprocess mode: the same metrics as :class:`PoolCollector`, written as they happen
    through prometheus_client's per-process files; gauges are set on each watchdog tick."""

    def __init__(self) -> None:
        pc = prometheus_client
        lbl = ["pool"]
        self.checkouts = pc.Counter(_n("checkouts"), HELP["checkouts"], lbl, registry=None)
        self.waits = pc.Counter(_n("checkout_waits"), HELP["checkout_waits"], lbl, registry=None)
        self.timeouts = pc.Counter(_n("checkout_timeouts"), HELP["checkout_timeouts"], lbl,
                                   registry=None)
        self.created = pc.Counter(_n("connections_created"), HELP["connections_created"], lbl,
                                  registry=None)
        self.gc = pc.Counter(_n("gc_reclaimed"), HELP["gc_reclaimed"], lbl, registry=None)
        self.closed = pc.Counter(_n("connections_closed"), HELP["connections_closed"],
                                 ["pool", "reason"], registry=None)
        self.findings = pc.Counter(_n("findings"), HELP["findings"], ["code", "severity"],
                                   registry=None)
        self.wait = pc.Histogram(_n("checkout_wait_seconds"), HELP["checkout_wait_seconds"], lbl,
                                 buckets=WAIT_BUCKETS, registry=None)
        self.use = pc.Histogram(_n("connection_use_seconds"), HELP["connection_use_seconds"],
                                lbl, buckets=USE_BUCKETS, registry=None)
        self.create = pc.Histogram(_n("connection_create_seconds"),
                                   HELP["connection_create_seconds"], lbl,
                                   buckets=CREATE_BUCKETS, registry=None)
        self.conns = pc.Gauge(_n("connections"), HELP["connections"], ["pool", "state"],
                              registry=None, multiprocess_mode="livesum")
        self.cmax = pc.Gauge(_n("connections_max"), HELP["connections_max"], lbl, registry=None,
                             multiprocess_mode="livesum")
        self.waiting = pc.Gauge(_n("checkouts_waiting"), HELP["checkouts_waiting"], lbl,
                                registry=None, multiprocess_mode="livesum")
        self._gc_seen: dict[int, int] = {}
        self.otel = prom_otel.Mirror()

    # guard observer
    def on_checkout(self, info: Any, hold: Any) -> None:
        self.checkouts.labels(info.label).inc()

    def on_checkin(self, info: Any, hold: Any, held_s: float) -> None:
        self.use.labels(info.label).observe(held_s)
        self.otel.use(info, held_s)

    def on_wait(self, info: Any, waited_s: float) -> None:
        if waited_s >= GUARD.options.wait_threshold:
            self.waits.labels(info.label).inc()

    def on_timeout(self, info: Any) -> None:
        self.timeouts.labels(info.label).inc()
        self.otel.timeout(info)

    def on_connect(self, info: Any) -> None:
        self.created.labels(info.label).inc()

    def on_finding(self, f: Any) -> None:
        self.findings.labels(f.code, severity(f.code)).inc()
        self.otel.finding(f.code, severity(f.code), site_label(f))

    # recorder listener
    def on_close(self, info: Any, reason: str) -> None:
        self.closed.labels(info.label, reason).inc()

    def on_create(self, info: Any, seconds: float) -> None:
        self.create.labels(info.label).observe(seconds)
        self.otel.create(info, seconds)

    def on_wait_time(self, info: Any, seconds: float) -> None:
        self.wait.labels(info.label).observe(seconds)
        self.otel.wait(info, seconds)

    def on_timeout_wait(self, info: Any, seconds: float) -> None:
        self.otel.wait(info, seconds)

    # watchdog tick
    def tick(self) -> None:
        for label, group in _by_label(infos()).items():
            used = idle = waiting = mx = 0
            gc_total = 0
            for info in group:
                cur = current(info)
                used += cur.used
                idle += cur.idle
                waiting += cur.waiting
                mx += cur.max or 0
                gc_total += info.gc_reclaimed
            self.conns.labels(label, "used").set(used)
            self.conns.labels(label, "idle").set(idle)
            self.cmax.labels(label).set(mx)
            self.waiting.labels(label).set(waiting)
            seen = self._gc_seen.get(id(group[0]), 0)
            if gc_total > seen:
                self.gc.labels(label).inc(gc_total - seen)
                self._gc_seen[id(group[0])] = gc_total
        self.otel.tick()


class _Refresh(Collector):
    """Registered before ``MultiProcessCollector``: sets the serving process's gauges."""

    def __init__(self, mirror: _Mirror) -> None:
        self.mirror = mirror

    def collect(self) -> Iterator[Metric]:
        try:
            self.mirror.tick()
        except Exception:
            GUARD.internal_error("metrics refresh")
        return iter(())


_lock = threading.Lock()
_collector: PoolCollector | None = None
_mirror: _Mirror | None = None


def collector() -> PoolCollector:
    """The process's :class:`PoolCollector` (one instance, usable in several registries)."""
    global _collector
    with _lock:
        if _collector is None:
            _collector = PoolCollector()
        return _collector


def _ensure_mirror() -> _Mirror:
    global _mirror
    enable()
    with _lock:
        if _mirror is None:
            _mirror = _Mirror()
            GUARD.observers.append(_mirror)
            RECORDER.listeners.append(_mirror)
            GUARD.tick_hooks.append(_mirror.tick)
        return _mirror


def register(registry: CollectorRegistry | None = None, target_info: bool = True,
             otel_names: bool = True) -> PoolCollector | None:
    """Register pooldoctor's metrics on ``registry`` (default: ``prometheus_client.REGISTRY``).

    ``target_info=False`` leaves out ``target_info`` (when the registry has its own, e.g.
    OpenTelemetry's Prometheus exporter's); ``otel_names=False`` leaves out the
    OpenTelemetry-named families (``db_client_connection_*``, findings by site, target_info)
    and halves a scrape. Idempotent. In multiprocess mode nothing is
    registered: the metrics are written to the multiprocess directory and a
    ``MultiProcessCollector`` on the serving registry reads them; returns None then.
    """
    enable()
    if multiprocess_dir():
        _ensure_mirror()
        return None
    reg = REGISTRY if registry is None else registry
    c = collector()
    c.target_info = target_info
    c.otel_names = otel_names
    with _lock:
        if c not in getattr(reg, "_collector_to_names", {}):
            reg.register(c)
    return c


def unregister(registry: CollectorRegistry | None = None) -> None:
    """Remove pooldoctor's collector from ``registry`` (the figures keep being recorded)."""
    reg = REGISTRY if registry is None else registry
    c = _collector
    if c is not None and c in getattr(reg, "_collector_to_names", {}):
        reg.unregister(c)


def serve(port: int, addr: str = "127.0.0.1",
          registry: CollectorRegistry | None = None) -> Any:
    """Serve ``/metrics`` over HTTP on ``addr:port`` from a daemon thread (``port=0``: any free
    port, see ``server.server_port``); returns the server (``.shutdown()`` stops it).

    In multiprocess mode the served registry aggregates every process's files.
    """
    if not 0 <= port <= 65535:
        raise ValueError(f"metrics port must be between 0 and 65535, got {port}")
    path = multiprocess_dir()
    if path:
        from prometheus_client import multiprocess

        if not os.path.isdir(path):
            raise ValueError(f"PROMETHEUS_MULTIPROC_DIR {path!r} is not a directory")
        mirror = _ensure_mirror()
        reg = registry or CollectorRegistry()
        reg.register(_Refresh(mirror))  # this process's gauges are fresh at each scrape
        multiprocess.MultiProcessCollector(reg, path=path)  # type: ignore[no-untyped-call]
    else:
        reg = registry or REGISTRY
        register(reg)
    server, _thread = prometheus_client.start_http_server(port, addr=addr, registry=reg)
    return server
