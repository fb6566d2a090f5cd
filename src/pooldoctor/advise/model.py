"""The advisor's inputs and verdicts as plain data: server limits, pool settings, measurements.

Every application figure remembers where it came from (its *source*): ``given`` on the command
line, ``report`` (the live pool's settings in a guarded program's report, next to the figures
*measured* there), ``source`` read from ``create_engine(...)`` in the code, or ``default``
(SQLAlchemy's default). The advice says which is which.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..findings import Site

Source = Literal["given", "report", "source", "default", "server"]

# SQLAlchemy's create_engine defaults for QueuePool
DEFAULTS: dict[str, Any] = {
    "pool_class": "QueuePool",
    "pool_size": 5,
    "max_overflow": 10,
    "pool_timeout": 30.0,
    "pool_recycle": -1.0,
    "pre_ping": False,
    "workers": 1,
    "instances": 1,
    "threads": None,
}

# the field names of PoolConfig that carry a source
CONFIG_FIELDS = tuple(DEFAULTS)


@dataclass
class ServerLimits:
    """What one database server allows, as read from it (or given by hand)."""

    backend: str  # "postgresql" | "mysql" | "sqlite" | "unknown"
    url: str | None = None  # masked
    version: str | None = None
    max_connections: int | None = None
    reserved: int = 0
    reserved_detail: str = ""  # e.g. "superuser_reserved_connections 3"
    user: str | None = None
    user_limit: int | None = None  # None: no per-user limit
    user_limit_name: str = ""  # "rolconnlimit" | "max_user_connections"
    database: str | None = None
    db_limit: int | None = None  # None: no per-database limit
    db_limit_name: str = ""  # "datconnlimit"
    used_by_others: int | None = None  # client connections other than the advisor's own
    used_by_user: int | None = None  # ... of the same user
    used_by_db: int | None = None  # ... to the same database
    idle_timeout_s: float | None = None  # server closes idle connections after this; None: never
    idle_timeout_name: str = ""  # "wait_timeout" | "idle_session_timeout"
    idle_in_transaction_timeout_s: float | None = None
    source: Source = "server"
    settings: dict[str, Any] = field(default_factory=dict)  # raw values read
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PoolConfig:
    """The application's pool settings and deployment shape, each with its source."""

    pool_class: str = "QueuePool"
    pool_size: int = 5
    max_overflow: int = 10
    pool_timeout: float = 30.0
    pool_recycle: float = -1.0  # -1: never recycled
    pre_ping: bool = False
    workers: int = 1  # processes per instance, each with its own engine
    instances: int = 1  # hosts / containers running the workers
    threads: int | None = None  # threads or tasks per worker that use the database
    sources: dict[str, Source] = field(default_factory=dict)
    site: Site | None = None  # the create_engine(...) call, when read from source
    url: str | None = None  # masked, when known

    def source_of(self, name: str) -> Source:
        return self.sources.get(name, "default")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for name in CONFIG_FIELDS:
            d[name] = {"value": getattr(self, name), "source": self.source_of(name)}
        if self.site is not None:
            d["site"] = self.site.to_dict()
        if self.url:
            d["url"] = self.url
        return d


@dataclass
class Measured:
    """Figures of one pool measured by the runtime guard (a ``pooldoctor.report/1`` pool)."""

    checkouts: int = 0
    peak_checked_out: int = 0
    waits: int = 0
    timeouts: int = 0
    max_wait_ms: float = 0.0
    hold_ms_total: float | None = None  # sum of hold times (newer reports)
    observed_s: float | None = None  # how long the pool was watched (newer reports)
    processes: int = 1

    @property
    def checkout_rate(self) -> float | None:
        """Checkouts per second per process."""
        if not self.observed_s or self.observed_s <= 0:
            return None
        return self.checkouts / self.observed_s / max(self.processes, 1)

    @property
    def mean_hold_s(self) -> float | None:
        if self.hold_ms_total is None or self.checkouts <= 0:
            return None
        return self.hold_ms_total / 1000.0 / self.checkouts

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["checkout_rate_per_s"] = _round(self.checkout_rate)
        d["mean_hold_ms"] = _round(None if self.mean_hold_s is None else self.mean_hold_s * 1000)
        return d


def _round(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


@dataclass
class Allowance:
    """How many connections the application may still open, and the limit that binds."""

    allowed: int
    limit: str  # "server" | "user" | "database" | "given"
    explanation: str  # "139 allowed by the server (max_connections 151 - reserved 0 - ...)"


@dataclass
class Recommendation:
    """A configuration that fits the program and the server, with the reasons."""

    pool_size: int
    max_overflow: int
    pool_timeout: float
    pool_recycle: int
    pool_pre_ping: bool
    per_process: int
    total: int
    max_instances: int | None  # instances the server can take with this configuration
    max_instances_current: int | None  # ... with the current configuration
    basis: str  # how pool_size was derived
    reasons: list[str] = field(default_factory=list)

    def create_engine_call(self) -> str:
        return (f"create_engine(url, pool_size={self.pool_size}, max_overflow={self.max_overflow},"
                f" pool_timeout={_num(self.pool_timeout)}, pool_recycle={self.pool_recycle},"
                f" pool_pre_ping={self.pool_pre_ping})")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["create_engine"] = self.create_engine_call()
        return d


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
