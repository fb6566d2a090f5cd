"""One model for what a server holds: :class:`Snapshot` of :class:`ServerConn` rows.

PostgreSQL and MySQL/MariaDB probes both produce it; rendering, watching, killing and
attribution only ever see this model. Ages are measured by the server's own clock (``now() -
backend_start``), so a skewed client clock does not matter.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

ACTIVE = "active"
IDLE = "idle"
IDLE_TXN = "idle in transaction"
IDLE_TXN_ABORTED = "idle in transaction (aborted)"
HIDDEN = "<insufficient privilege>"
OTHER = "other"  # fastpath function call, disabled, ... (PostgreSQL)

STATES = (ACTIVE, IDLE, IDLE_TXN, IDLE_TXN_ABORTED, OTHER, HIDDEN)

# group names accepted by --group, filters and sorting, and the attribute behind each
GROUP_KEYS: dict[str, str] = {
    "user": "user",
    "database": "database",
    "client": "client",
    "application": "application",
    "state": "state",
}


@dataclass
class ServerConn:
    """One connection the server holds, as the server sees it."""

    id: int  # PostgreSQL backend pid, MySQL/MariaDB thread (processlist) id
    user: str | None = None
    database: str | None = None
    client: str | None = None  # client address or host name, without the port
    client_port: int | None = None
    application: str | None = None  # application_name / program_name
    state: str = IDLE
    connected_s: float | None = None  # age of the connection
    state_s: float | None = None  # time in the current state
    xact_s: float | None = None  # age of the open transaction
    query: str | None = None  # last (or current) statement, truncated
    wait: str | None = None  # what an active connection waits for
    own: bool = False  # the watcher's own connection
    backend_start: str | None = None  # server-side identity check for kill (PostgreSQL)
    holder: dict[str, Any] | None = None  # attribution: the guarded process's hold
    tags: dict[str, str] | None = None  # the statement's sqlcommenter tags, read before masking

    @property
    def idle(self) -> bool:
        return self.state in (IDLE, IDLE_TXN, IDLE_TXN_ABORTED)

    @property
    def in_transaction(self) -> bool:
        return self.state in (IDLE_TXN, IDLE_TXN_ABORTED) or (
            self.state == ACTIVE and self.xact_s is not None)

    @property
    def visible(self) -> bool:
        return self.state != HIDDEN

    def value(self, key: str) -> Any:
        """The value of a group/sort/filter key for this connection."""
        if key == "holder":
            h = self.holder or {}
            site = h.get("site") or {}
            return f"{site.get('file')}:{site.get('line')}" if site else h.get("text")
        return getattr(self, GROUP_KEYS.get(key, key))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id, "user": self.user, "database": self.database,
            "client": self.client, "client_port": self.client_port,
            "application": self.application, "state": self.state,
            "connected_s": _r(self.connected_s), "state_s": _r(self.state_s),
            "xact_s": _r(self.xact_s), "query": self.query, "wait": self.wait,
            "own": self.own,
        }
        if self.holder is not None:
            d["holder"] = self.holder
        if self.tags:
            d["tags"] = self.tags
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServerConn:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


@dataclass
class Group:
    """Connections sharing one value of a key (a user, a database, ...)."""

    key: str
    value: Any
    total: int = 0
    states: Counter[str] = field(default_factory=Counter)
    oldest_s: float | None = None  # oldest connection
    longest_idle_s: float | None = None  # longest time idle (any idle state)
    oldest_xact_s: float | None = None

    @property
    def active(self) -> int:
        return self.states[ACTIVE]

    def add(self, c: ServerConn) -> None:
        self.total += 1
        self.states[c.state] += 1
        self.oldest_s = _max(self.oldest_s, c.connected_s)
        if c.idle:
            self.longest_idle_s = _max(self.longest_idle_s, c.state_s)
        self.oldest_xact_s = _max(self.oldest_xact_s, c.xact_s)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "total": self.total,
                "states": dict(self.states), "oldest_s": _r(self.oldest_s),
                "longest_idle_s": _r(self.longest_idle_s),
                "oldest_xact_s": _r(self.oldest_xact_s)}


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _max(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


@dataclass
class Snapshot:
    """What one server holds at one moment."""

    backend: str  # "postgresql" | "mysql"
    url: str  # masked
    server_version: str = ""
    taken_at: float = field(default_factory=time.time)
    max_connections: int = 0
    reserved: int = 0  # slots ordinary users cannot take
    conns: list[ServerConn] = field(default_factory=list)
    rejected_total: int | None = None  # connections refused for the limit, since server start
    notes: list[str] = field(default_factory=list)  # what the watcher cannot see, and why
    query_ms: float = 0.0  # time spent in the probe's queries
    queries: int = 0

    @property
    def limit(self) -> int:
        """Connections ordinary users can open (max_connections minus reserved slots)."""
        return max(self.max_connections - self.reserved, 0)

    @property
    def total(self) -> int:
        return len(self.conns)

    @property
    def used_ratio(self) -> float:
        return self.total / self.limit if self.limit else 0.0

    @property
    def own_id(self) -> int | None:
        return next((c.id for c in self.conns if c.own), None)

    def by_state(self) -> Counter[str]:
        return Counter(c.state for c in self.conns)

    def groups(self, key: str, conns: Iterable[ServerConn] | None = None) -> list[Group]:
        """Connections grouped by ``key``, largest group first."""
        out: dict[Any, Group] = {}
        for c in self.conns if conns is None else conns:
            v = c.value(key)
            g = out.get(v)
            if g is None:
                g = out[v] = Group(key, v)
            g.add(c)
        return sorted(out.values(), key=lambda g: (-g.total, str(g.value)))

    def select(self, pred: Callable[[ServerConn], bool]) -> list[ServerConn]:
        return [c for c in self.conns if pred(c)]

    def get(self, conn_id: int) -> ServerConn | None:
        return next((c for c in self.conns if c.id == conn_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend, "url": self.url, "server_version": self.server_version,
            "taken_at": round(self.taken_at, 3), "max_connections": self.max_connections,
            "reserved": self.reserved, "limit": self.limit, "total": self.total,
            "states": dict(self.by_state()), "rejected_total": self.rejected_total,
            "notes": list(self.notes), "query_ms": round(self.query_ms, 3),
            "queries": self.queries,
            "groups": {k: [g.to_dict() for g in self.groups(k)]
                       for k in ("user", "database", "client", "application")},
            "connections": [self.conn_dict(c) for c in self.conns],
        }

    def conn_dict(self, c: ServerConn) -> dict[str, Any]:
        """A connection as data, with its ages also as UTC timestamps (connected at, ...)."""
        d = c.to_dict()
        for key, secs in (("connected_at", c.connected_s), ("state_since", c.state_s),
                          ("xact_since", c.xact_s)):
            d[key] = None if secs is None else _iso(self.taken_at - secs)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Snapshot:
        return cls(backend=d["backend"], url=d["url"], server_version=d.get("server_version", ""),
                   taken_at=d.get("taken_at", 0.0), max_connections=d.get("max_connections", 0),
                   reserved=d.get("reserved", 0),
                   conns=[ServerConn.from_dict(c) for c in d.get("connections", ())],
                   rejected_total=d.get("rejected_total"), notes=list(d.get("notes", ())),
                   query_ms=d.get("query_ms", 0.0), queries=d.get("queries", 0))
