"""OpenTelemetry exporter (``opentelemetry-api`` only, extra ``otel``; the SDK is the user's).

Instruments follow the semantic conventions for database client connection metrics:

===========================================  ======================  ========================
name                                         kind                    attributes
===========================================  ======================  ========================
``db.client.connection.count``               observable up-down      pool.name, state
``db.client.connection.max``                 observable up-down      pool.name
``db.client.connection.pending_requests``    observable up-down      pool.name
``db.client.connection.timeouts``            observable counter      pool.name
``db.client.connection.wait_time``           histogram (s)           pool.name
``db.client.connection.use_time``            histogram (s)           pool.name
``db.client.connection.create_time``         histogram (s)           pool.name
``pooldoctor.findings``                      counter                 pooldoctor.code, severity
===========================================  ======================  ========================

(``pool.name`` is ``db.client.connection.pool.name``, ``state`` is
``db.client.connection.state`` = ``idle`` | ``used``.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

try:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry.metrics import CallbackOptions, Observation
except ModuleNotFoundError as e:  # pragma: no cover - depends on the install
    raise ModuleNotFoundError(
        "pooldoctor.metrics.otel needs opentelemetry-api: pip install 'pooldoctor[otel]'",
        name=e.name) from None

from .. import __version__
from ..findings import lookup
from ..guard import GUARD
from .pools import current, infos
from .recorder import CREATE_BUCKETS, RECORDER, USE_BUCKETS, WAIT_BUCKETS, enable

POOL_NAME = "db.client.connection.pool.name"
STATE = "db.client.connection.state"
CODE = "pooldoctor.code"
SEVERITY = "pooldoctor.severity"


def _histogram(meter: Any, name: str, description: str, buckets: tuple[float, ...]) -> Any:
    try:
        return meter.create_histogram(name, unit="s", description=description,
                                      explicit_bucket_boundaries_advisory=list(buckets))
    except TypeError:  # opentelemetry-api < 1.23
        return meter.create_histogram(name, unit="s", description=description)


class OTelMetrics:
    """The instruments on one meter; a guard observer for the histograms and the findings."""

    def __init__(self, meter: Any) -> None:
        self.meter = meter
        meter.create_observable_up_down_counter(
            "db.client.connection.count", callbacks=[self._count], unit="{connection}",
            description="The number of connections that are currently in the state described "
                        "by the state attribute.")
        meter.create_observable_up_down_counter(
            "db.client.connection.max", callbacks=[self._max], unit="{connection}",
            description="The maximum number of open connections allowed.")
        meter.create_observable_up_down_counter(
            "db.client.connection.pending_requests", callbacks=[self._pending], unit="{request}",
            description="The number of current pending requests for an open connection.")
        meter.create_observable_counter(
            "db.client.connection.timeouts", callbacks=[self._timeouts], unit="{timeout}",
            description="The number of connection timeouts that have occurred trying to obtain "
                        "a connection from the pool.")
        self.wait_time = _histogram(meter, "db.client.connection.wait_time",
                                    "The time it took to obtain an open connection from the "
                                    "pool.", WAIT_BUCKETS)
        self.use_time = _histogram(meter, "db.client.connection.use_time",
                                   "The time between borrowing a connection and returning it "
                                   "to the pool.", USE_BUCKETS)
        self.create_time = _histogram(meter, "db.client.connection.create_time",
                                      "The time it took to create a new connection.",
                                      CREATE_BUCKETS)
        self.findings = meter.create_counter(
            "pooldoctor.findings", unit="{finding}",
            description="pooldoctor findings made in this process, by code.")

    # ------------------------------------------------------------ observable callbacks

    def _count(self, options: CallbackOptions) -> Iterable[Observation]:
        for label, (used, idle, _mx, _w) in _figures().items():
            yield Observation(used, {POOL_NAME: label, STATE: "used"})
            yield Observation(idle, {POOL_NAME: label, STATE: "idle"})

    def _max(self, options: CallbackOptions) -> Iterable[Observation]:
        for label, (_u, _i, mx, _w) in _figures().items():
            if mx:
                yield Observation(mx, {POOL_NAME: label})

    def _pending(self, options: CallbackOptions) -> Iterable[Observation]:
        for label, (_u, _i, _mx, waiting) in _figures().items():
            yield Observation(waiting, {POOL_NAME: label})

    def _timeouts(self, options: CallbackOptions) -> Iterable[Observation]:
        totals: dict[str, int] = {}
        for info in infos():
            totals[info.label] = totals.get(info.label, 0) + info.timeouts
        for label, n in totals.items():
            yield Observation(n, {POOL_NAME: label})

    # ------------------------------------------------------------ guard observer

    def on_checkin(self, info: Any, hold: Any, held_s: float) -> None:
        self.use_time.record(held_s, {POOL_NAME: info.label})


    def on_finding(self, f: Any) -> None:
        severity: str
        try:
            severity = lookup(f.code).severity
        except Exception:
            severity = "unknown"
        self.findings.add(1, {CODE: f.code, SEVERITY: severity})

    # recorder listener
    def on_create(self, info: Any, seconds: float) -> None:
        self.create_time.record(seconds, {POOL_NAME: info.label})

    def on_wait_time(self, info: Any, seconds: float) -> None:
        self.wait_time.record(seconds, {POOL_NAME: info.label})


def _figures() -> dict[str, tuple[int, int, int | None, int]]:
    """``label -> (used, idle, max, waiting)`` over live pools; same labels added up."""
    out: dict[str, tuple[int, int, int | None, int]] = {}
    for info in infos():
        if info.pool() is None:
            continue
        cur = current(info)
        u, i, mx, w = out.get(info.label, (0, 0, 0, 0))
        mx = None if mx is None or cur.max is None else mx + cur.max
        out[info.label] = (u + cur.used, i + cur.idle, mx, w + cur.waiting)
    return out


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
