"""OpenTelemetry exporter (``opentelemetry-api`` only, extra ``otel``; the SDK is the user's).

Instruments follow the semantic conventions for database client connection metrics
(Development upstream; names, units and kinds in :mod:`.semconv`):

=============================================  ======================  ==================
name                                           kind                    attributes
=============================================  ======================  ==================
``db.client.connection.count``                 observable up-down      pool.name, state
``db.client.connection.idle.max``              observable up-down      pool.name
``db.client.connection.idle.min``              observable up-down      pool.name
``db.client.connection.max``                   observable up-down      pool.name
``db.client.connection.pending_requests``      observable up-down      pool.name
``db.client.connection.timeouts``              observable counter      pool.name
``db.client.connection.wait_time``             histogram (s)           pool.name
``db.client.connection.use_time``              histogram (s)           pool.name
``db.client.connection.create_time``           histogram (s)           pool.name
``pooldoctor.findings``                        counter                 code, severity
``pooldoctor.findings_by_site``                counter                 code, severity, site
=============================================  ======================  ==================

(``pool.name`` is ``db.client.connection.pool.name``, see :func:`.semconv.pool_name`;
``state`` is ``db.client.connection.state`` = ``idle`` | ``used``.) ``wait_time`` counts
timed-out checkouts too: the conventions measure the time it took to obtain a connection.
``host.name`` and ``process.pid`` belong to the SDK's Resource (:func:`resource_attributes`).

The SDK's ``Histogram.record()`` costs some 10 us; a checkout and its checkin make two. So
the checkout path only appends ``(histogram, seconds, attributes)`` to a deque; the values
are recorded by the guard's watchdog tick (<= 1 s later) and at the start of every
collection (an observable callback runs first), so an export misses none of them.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

try:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry.metrics import CallbackOptions, Observation
except ModuleNotFoundError as e:  # pragma: no cover - depends on the install
    raise ModuleNotFoundError(
        "pooldoctor.metrics.otel needs opentelemetry-api: pip install 'pooldoctor[otel]'",
        name=e.name) from None

from .. import __version__
from ..guard import GUARD
from .recorder import RECORDER, enable, severity, site_label
from .semconv import (
    BUCKETS,
    INSTRUMENTS,
    POOL_NAME,
    SITE_FINDINGS,
    SITE_FINDINGS_HELP,
    STATE,
    PoolFigures,
    figures,
    pool_name,
)
from .semconv import resource_attributes as resource_attributes

MAX_PENDING = 50_000  # values waiting for the watchdog's tick before a checkout records them
CODE = "pooldoctor.code"
SEVERITY = "pooldoctor.severity"


def _histogram(meter: Any, name: str) -> Any:
    _kind, unit, description = INSTRUMENTS[name]
    try:
        return meter.create_histogram(name, unit=unit, description=description,
                                      explicit_bucket_boundaries_advisory=list(BUCKETS[name]))
    except TypeError:  # opentelemetry-api < 1.23
        return meter.create_histogram(name, unit=unit, description=description)


def _figures() -> dict[str, PoolFigures]:
    try:
        return figures(histograms=False)
    except Exception:  # never into the SDK's collection, never into the program
        GUARD.internal_error("otel collect")
        return {}


def _gauge(meter: Any, name: str, read: Callable[[PoolFigures], int | None],
           drain: Callable[[], None]) -> None:
    kind, unit, description = INSTRUMENTS[name]

    def callback(options: CallbackOptions) -> Iterable[Observation]:
        drain()  # whichever callback runs first, the histograms are complete before export
        for label, f in _figures().items():
            v = read(f)
            if f.live and v is not None:
                yield Observation(v, {POOL_NAME: label})

    make = (meter.create_observable_counter if kind == "counter"
            else meter.create_observable_up_down_counter)
    make(name, callbacks=[callback], unit=unit, description=description)


class OTelMetrics:
    """The instruments on one meter; a guard observer for the histograms and the findings."""

    def __init__(self, meter: Any) -> None:
        self.meter = meter
        self.pending: deque[tuple[Any, float, dict[str, str]]] = deque()
        self._attrs: dict[str, dict[str, str]] = {}  # pool name -> its attributes, reused
        _kind, unit, description = INSTRUMENTS["db.client.connection.count"]
        meter.create_observable_up_down_counter(
            "db.client.connection.count", callbacks=[self._count], unit=unit,
            description=description)
        _gauge(meter, "db.client.connection.idle.max", lambda f: f.idle_max, self.drain)
        _gauge(meter, "db.client.connection.idle.min", lambda f: f.idle_min, self.drain)
        _gauge(meter, "db.client.connection.max", lambda f: f.max or None, self.drain)
        _gauge(meter, "db.client.connection.pending_requests", lambda f: f.pending, self.drain)
        _gauge(meter, "db.client.connection.timeouts", lambda f: f.timeouts, self.drain)
        self.wait_time = _histogram(meter, "db.client.connection.wait_time")
        self.use_time = _histogram(meter, "db.client.connection.use_time")
        self.create_time = _histogram(meter, "db.client.connection.create_time")
        self.findings = meter.create_counter(
            "pooldoctor.findings", unit="{finding}",
            description="pooldoctor findings made in this process, by code.")
        # Its Prometheus name and labels are those of pooldoctor's own exposition
        # (pooldoctor_findings_by_site_total{code,severity,site}): one dashboard reads both.
        self.site_findings = meter.create_counter(
            SITE_FINDINGS, unit="{finding}", description=SITE_FINDINGS_HELP)

    def drain(self) -> None:
        """Record the pending histogram values (the watchdog's tick, each collection)."""
        pop = self.pending.popleft
        while True:
            try:
                hist, seconds, attrs = pop()
            except IndexError:
                return
            try:
                hist.record(seconds, attrs)
            except Exception:
                GUARD.internal_error("otel record")

    def _defer(self, hist: Any, seconds: float, info: Any) -> None:
        self.pending.append((hist, seconds, self._pool(info)))
        if len(self.pending) > MAX_PENDING:  # no tick for a while: never hoard memory
            self.drain()

    def _pool(self, info: Any) -> dict[str, str]:
        name = pool_name(info)
        attrs = self._attrs.get(name)
        if attrs is None:
            attrs = self._attrs[name] = {POOL_NAME: name}
        return attrs

    def _count(self, options: CallbackOptions) -> Iterable[Observation]:
        self.drain()
        for label, f in _figures().items():
            if f.live:
                yield Observation(f.used, {POOL_NAME: label, STATE: "used"})
                yield Observation(f.idle, {POOL_NAME: label, STATE: "idle"})

    # ------------------------------------------------------------ guard observer

    def on_checkin(self, info: Any, hold: Any, held_s: float) -> None:
        self._defer(self.use_time, held_s, info)

    def on_finding(self, f: Any) -> None:
        sev = severity(f.code)
        self.findings.add(1, {CODE: f.code, SEVERITY: sev})
        self.site_findings.add(1, {"code": f.code, "severity": sev, "site": site_label(f)})

    # recorder listener
    def on_create(self, info: Any, seconds: float) -> None:
        self._defer(self.create_time, seconds, info)

    def on_wait_time(self, info: Any, seconds: float) -> None:
        self._defer(self.wait_time, seconds, info)

    def on_timeout_wait(self, info: Any, seconds: float) -> None:
        self._defer(self.wait_time, seconds, info)


_lock = threading.Lock()
_active: dict[int, OTelMetrics] = {}


def instrument(meter_provider: Any = None) -> OTelMetrics:
    """Create pooldoctor's instruments on ``meter_provider`` (default: the global one).

    Idempotent per meter provider. The SDK, readers and exporters are the program's choice.
    """
    enable()
    provider = meter_provider or otel_metrics.get_meter_provider()
    with _lock:
        got = _active.get(id(provider))
        if got is not None:
            return got
        m = OTelMetrics(provider.get_meter("pooldoctor", __version__))
        _active[id(provider)] = m
        GUARD.observers.append(m)
        RECORDER.listeners.append(m)
        GUARD.tick_hooks.append(m.drain)
        return m


def uninstrument(meter_provider: Any = None) -> None:
    """Stop recording histograms and findings for ``meter_provider`` (default: all of them).

    Observable instruments stay on the meter (the API cannot remove them) but report nothing
    new after the provider shuts down.
    """
    with _lock:
        keys = list(_active) if meter_provider is None else [id(meter_provider)]
        for k in keys:
            m = _active.pop(k, None)
            if m is None:
                continue
            while m in GUARD.observers:
                GUARD.observers.remove(m)
            while m in RECORDER.listeners:
                RECORDER.listeners.remove(m)
            while m.drain in GUARD.tick_hooks:
                GUARD.tick_hooks.remove(m.drain)
            m.drain()
