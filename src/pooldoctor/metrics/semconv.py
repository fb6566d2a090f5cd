"""The OpenTelemetry database-client connection metrics (semantic conventions, Development):
names, units and kinds, their Prometheus names, the default pool name, the process's
resource attributes, and the per-pool figures both exporters read.

No OpenTelemetry or Prometheus import here: :mod:`.otel` and :mod:`.prometheus` use it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any

from .pools import current, infos
from .recorder import CREATE_BUCKETS, USE_BUCKETS, WAIT_BUCKETS, Histogram, metrics_of

POOL_NAME = "db.client.connection.pool.name"
STATE = "db.client.connection.state"
# pooldoctor's own: findings by code, severity and site (attribute names chosen so that its
# Prometheus name and labels are the same through OpenTelemetry and pooldoctor's exposition).
SITE_FINDINGS = "pooldoctor.findings_by_site"
SITE_FINDINGS_HELP = "pooldoctor findings made in this process, by code and site (file:line)."

# name -> (kind, unit, description), as model/db/metrics.yaml of semantic-conventions says.
INSTRUMENTS: dict[str, tuple[str, str, str]] = {
    "db.client.connection.count": (
        "updowncounter", "{connection}",
        "The number of connections that are currently in state described by the `state` "
        "attribute."),
    "db.client.connection.idle.max": (
        "updowncounter", "{connection}", "The maximum number of idle open connections allowed."),
    "db.client.connection.idle.min": (
        "updowncounter", "{connection}", "The minimum number of idle open connections allowed."),
    "db.client.connection.max": (
        "updowncounter", "{connection}", "The maximum number of open connections allowed."),
    "db.client.connection.pending_requests": (
        "updowncounter", "{request}",
        "The number of current pending requests for an open connection."),
    "db.client.connection.timeouts": (
        "counter", "{timeout}",
        "The number of connection timeouts that have occurred trying to obtain a connection "
        "from the pool."),
    "db.client.connection.create_time": (
        "histogram", "s", "The time it took to create a new connection."),
    "db.client.connection.wait_time": (
        "histogram", "s", "The time it took to obtain an open connection from the pool."),
    "db.client.connection.use_time": (
        "histogram", "s", "The time between borrowing a connection and returning it to the pool."),
}

# The conventions give no bucket advice for these histograms; ours (seconds).
BUCKETS = {
    "db.client.connection.create_time": CREATE_BUCKETS,
    "db.client.connection.wait_time": WAIT_BUCKETS,
    "db.client.connection.use_time": USE_BUCKETS,
}

# Ports the pool name gets when the URL has none (so one server has one name in a fleet).
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433,
                 "oracle": 1521}

_UNIT_SUFFIX = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": "ratio"}


def prometheus_name(name: str) -> str:
    """The Prometheus name of an instrument, as OpenTelemetry's Prometheus compatibility
    spec builds it: dots to underscores, the unit as a suffix (``{...}`` units add none),
    ``_total`` on counters. ``db.client.connection.wait_time`` ->
    ``db_client_connection_wait_time_seconds``."""
    kind, unit, _ = INSTRUMENTS[name]
    out = prometheus_label(name)
    suffix = _UNIT_SUFFIX.get(unit)
    if suffix and not out.endswith("_" + suffix):
        out += "_" + suffix
    if kind == "counter":
        out += "_total"
    return out


def prometheus_label(attribute: str) -> str:
    """An attribute's Prometheus label name: anything but ``[a-zA-Z0-9_]`` becomes ``_``."""
    return "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in attribute)


_names: dict[tuple[str | None, str | None], str] = {}


def pool_name(info: Any) -> str:
    """``db.client.connection.pool.name`` of a pool: the name given to ``instrument(engine,
    name=...)``, else ``server.address:server.port/db.namespace`` from its URL (the
    dialect's default port when the URL has none; SQLite: the database file)."""
    key = (info.name, info.url)
    got = _names.get(key)
    if got is None:
        got = _names[key] = info.name or _from_url(info.url) or info.label
    return got


def _from_url(url: str | None) -> str | None:
    if not url:
        return None
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception:
        return None
    backend = u.get_backend_name()
    if backend == "sqlite":
        return u.database or ":memory:"
    host = u.host or "localhost"
    if ":" in host:
        host = f"[{host}]"  # IPv6
    port = u.port or DEFAULT_PORTS.get(backend)
    return f"{host}{'' if port is None else f':{port}'}/{u.database or ''}"


def resource_attributes() -> dict[str, Any]:
    """This process's ``host.name`` and ``process.pid`` (OpenTelemetry resource attributes)."""
    return {"host.name": socket.gethostname(), "process.pid": os.getpid()}


@dataclass
class PoolFigures:
    """The figures of one pool name, pools of the same name added up."""

    used: int = 0
    idle: int = 0
    idle_max: int | None = 0
    idle_min: int | None = 0
    max: int | None = 0
    pending: int = 0
    timeouts: int = 0
    live: bool = False
    wait: Histogram = field(default_factory=lambda: Histogram(WAIT_BUCKETS))
    use: Histogram = field(default_factory=lambda: Histogram(USE_BUCKETS))
    create: Histogram = field(default_factory=lambda: Histogram(CREATE_BUCKETS))


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def figures(histograms: bool = True) -> dict[str, PoolFigures]:
    """``pool name -> figures`` over every pool the guard has seen. Limits (``max``,
    ``idle_max``, ``idle_min``) are None when a live pool of the name has none. The wait
    histogram counts timed-out waits too (the time to obtain a connection)."""
    out: dict[str, PoolFigures] = {}
    for info in infos():
        name = pool_name(info)
        f = out.get(name)
        if f is None:
            f = out[name] = PoolFigures()
        f.timeouts += info.timeouts
        if info.pool() is not None:
            cur = current(info)
            f.live = True
            f.used += cur.used
            f.idle += cur.idle
            f.pending += cur.waiting
            f.max = _add(f.max, cur.max)
            f.idle_max = _add(f.idle_max, cur.idle_max)
            f.idle_min = _add(f.idle_min, cur.idle_min)
        if histograms:
            m = metrics_of(info)
            with m.lock:
                f.wait.add(m.wait)
                f.wait.add(m.wait_timed_out)
                f.use.add(m.use)
                f.create.add(m.create)
    return out
