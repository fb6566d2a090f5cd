"""The figures behind every exporter: one observer of the guard, per-pool timings and reasons.

:class:`PoolInfo` (runtime/sqlalchemy/info.py) already counts checkouts, timeouts, waits,
connects and garbage-collected checkouts. The recorder adds what needs a clock or a reason:
checkout wait time, use (hold) time, connection create time, checkins, and connections closed
by reason. It keeps monotonic totals; :func:`pooldoctor.metrics.stats.pop_stats` resets a
*view* of them, so Prometheus counters never go backwards.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool, Pool, QueuePool

from ..findings import Finding, lookup
from ..guard import GUARD

# Bucket upper bounds in seconds (the last bucket is +Inf).
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
USE_BUCKETS = (0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
CREATE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Why a pooled connection was closed (see docs/metrics.md).
CLOSE_REASONS = ("recycled", "invalidated", "overflow", "unpooled", "detached", "disposed")

# Findings by site: a label per site, so their number is bounded.
MAX_SITES = 500

_KEY = "_pd_metrics"
_T0 = "_pd_connect_t0"
_INVALIDATING = "_pd_invalidating"


class Histogram:
    """Cumulative bucket counts, a sum and a count (not thread-safe: callers hold a lock)."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, count <= bound)`` pairs, ending with ``(inf, count)``."""
        out: list[tuple[float, int]] = []
        total = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts):
            total += n
            out.append((bound, total))
        return out

    def add(self, other: Histogram) -> None:
        for i, n in enumerate(other.counts):
            self.counts[i] += n
        self.sum += other.sum
        self.count += other.count


def severity(code: str) -> str:
    """The catalogue severity of ``code`` (``unknown`` for a code it does not have)."""
    try:
        return lookup(code).severity
    except Exception:
        return "unknown"


def site_label(f: Finding) -> str:
    """The site of a finding as a label: ``path:line in function``, the path relative to
    the working directory when inside it (so a fleet's processes agree); ``""`` when none."""
    return f.site.short() if f.site is not None else ""


class PoolMetrics:
    """The recorder's figures for one pool (kept on its PoolInfo, across ``dispose()``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wait = Histogram(WAIT_BUCKETS)
        self.wait_timed_out = Histogram(WAIT_BUCKETS)  # waits of checkouts that timed out
        self.use = Histogram(USE_BUCKETS)
        self.create = Histogram(CREATE_BUCKETS)
        self.closed = dict.fromkeys(CLOSE_REASONS, 0)
        self.baseline: dict[str, float] = {}  # counter values at the last pop_stats()


def metrics_of(info: Any) -> PoolMetrics:
    """The :class:`PoolMetrics` of a PoolInfo, created on first use."""
    m: PoolMetrics | None = info.__dict__.get(_KEY)
    if m is None:
        with _lock:
            m = info.__dict__.get(_KEY)
            if m is None:
                m = info.__dict__[_KEY] = PoolMetrics()
    return m


class Recorder:
    """A guard observer; one per process (:data:`RECORDER`)."""

    def __init__(self) -> None:
        self.enabled = False
        self.findings: dict[str, int] = {}
        # (code, severity, site) -> count; at most MAX_SITES sites, the rest under "(other)"
        self.site_findings: dict[tuple[str, str, str], int] = {}
        # Exporters that need every event (Prometheus multiprocess, OpenTelemetry): objects
        # with optional on_close(info, reason), on_create(info, seconds),
        # on_wait_time(info, seconds) (once per successful checkout) and
        # on_timeout_wait(info, seconds) (once per checkout that timed out).
        self.listeners: list[Any] = []

    # ---------------------------------------------------------------- guard observer

    def on_checkin(self, info: Any, hold: Any, held_s: float) -> None:
        m = info.__dict__.get(_KEY) or metrics_of(info)
        with m.lock:
            m.use.observe(held_s)

    # The guard reports a wait only for a checkout that blocked (nothing idle), before its
    # checkout event, and also for one that then timed out. The wait histogram covers every
    # successful checkout: 0 s when it did not block; a timed-out checkout's wait goes to
    # wait_timed_out (OpenTelemetry's wait_time is the time to obtain: it counts both).
    def on_wait(self, info: Any, waited_s: float) -> None:
        _tls.wait = waited_s

    def on_timeout(self, info: Any) -> None:
        waited = getattr(_tls, "wait", 0.0)
        _tls.wait = 0.0
        m = info.__dict__.get(_KEY) or metrics_of(info)
        with m.lock:
            m.wait_timed_out.observe(waited)
        if self.listeners:
            self._tell("on_timeout_wait", info, waited)

    def on_checkout(self, info: Any, hold: Any) -> None:
        waited = getattr(_tls, "wait", 0.0)
        if waited:
            _tls.wait = 0.0
        m = info.__dict__.get(_KEY) or metrics_of(info)
        with m.lock:
            m.wait.observe(waited)
        if self.listeners:
            self._tell("on_wait_time", info, waited)

    def on_finding(self, f: Finding) -> None:
        key = (f.code, severity(f.code), site_label(f))
        with _lock:
            self.findings[f.code] = self.findings.get(f.code, 0) + 1
            if key not in self.site_findings and len(self.site_findings) >= MAX_SITES:
                key = (key[0], key[1], "(other)")
            self.site_findings[key] = self.site_findings.get(key, 0) + 1

    # ---------------------------------------------------------------- pool events

    def closed(self, info: Any, reason: str) -> None:
        m = metrics_of(info)
        with m.lock:
            m.closed[reason] += 1
        self._tell("on_close", info, reason)

    def created(self, info: Any, seconds: float) -> None:
        m = metrics_of(info)
        with m.lock:
            m.create.observe(seconds)
        self._tell("on_create", info, seconds)

    def _tell(self, method: str, *args: Any) -> None:
        GUARD.notify(self.listeners, "metrics listener", method, *args)


RECORDER = Recorder()


def _after_fork() -> None:
    """In a forked child: the parent's findings are the parent's (the per-pool figures start
    afresh with the ledger's, see ``ledger.restart_figures``)."""
    RECORDER.findings = {}
    RECORDER.site_findings = {}


os.register_at_fork(after_in_child=_after_fork)

_lock = threading.RLock()
_tls = threading.local()


def _info_of_record(record: Any) -> Any:
    pool = getattr(record, "_ConnectionRecord__pool", None)
    return None if pool is None else pool.__dict__.get("_pooldoctor")


def _on_do_connect(dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> None:
    try:
        if conn_rec is not None:
            conn_rec.__dict__[_T0] = time.perf_counter()
    except Exception:
        GUARD.internal_error("metrics do_connect")


def _on_connect(dbapi_connection: Any, record: Any) -> None:
    try:
        t0 = record.__dict__.pop(_T0, None)
        info = _info_of_record(record)
        if t0 is not None and info is not None:
            RECORDER.created(info, time.perf_counter() - t0)
    except Exception:
        GUARD.internal_error("metrics connect")


def _on_invalidate(dbapi_connection: Any, record: Any, exception: Any) -> None:
    try:
        if record is not None:
            record.__dict__[_INVALIDATING] = True
    except Exception:
        GUARD.internal_error("metrics invalidate")


def close_reason(record: Any) -> str:
    """Why SQLAlchemy is closing this record's connection (called from the ``close`` event)."""
    if record.__dict__.pop(_INVALIDATING, False):
        return "invalidated"
    pool = getattr(record, "_ConnectionRecord__pool", None)
    if isinstance(pool, NullPool):
        return "unpooled"
    if isinstance(pool, QueuePool) and pool._pool.full():
        return "overflow"  # checked in while the pool already keeps pool_size connections
    start = getattr(record, "starttime", 0.0) or 0.0
    if pool is not None and (
        (pool._recycle > -1 and time.time() - start > pool._recycle)
        or pool._invalidate_time > start
        or getattr(record, "_soft_invalidate_time", 0.0) > start
    ):
        return "recycled"
    return "disposed"


def _on_close(dbapi_connection: Any, record: Any) -> None:
    try:
        info = _info_of_record(record)
        if info is None:
            record.__dict__.pop(_INVALIDATING, None)
            return
        RECORDER.closed(info, close_reason(record))
    except Exception:
        GUARD.internal_error("metrics close")


def _on_detach(dbapi_connection: Any, record: Any) -> None:
    try:
        info = _info_of_record(record)
        if info is not None:
            RECORDER.closed(info, "detached")
    except Exception:
        GUARD.internal_error("metrics detach")


_POOL_EVENTS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("connect", _on_connect), ("invalidate", _on_invalidate), ("close", _on_close),
    ("detach", _on_detach))


def enable() -> Recorder:
    """Start recording (idempotent). Exporters call this; so can a program at start-up."""
    with _lock:
        if not RECORDER.enabled:
            for name, fn in _POOL_EVENTS:
                event.listen(Pool, name, fn)
            event.listen(Engine, "do_connect", _on_do_connect)
            if RECORDER not in GUARD.observers:
                GUARD.observers.append(RECORDER)
            RECORDER.enabled = True
    return RECORDER


def disable() -> None:
    """Stop recording; figures recorded so far stay."""
    with _lock:
        if not RECORDER.enabled:
            return
        for name, fn in _POOL_EVENTS:
            if event.contains(Pool, name, fn):
                event.remove(Pool, name, fn)
        if event.contains(Engine, "do_connect", _on_do_connect):
            event.remove(Engine, "do_connect", _on_do_connect)
        while RECORDER in GUARD.observers:
            GUARD.observers.remove(RECORDER)
        RECORDER.enabled = False
