"""Choosing and ordering connections: ``--filter key=glob`` and ``--sort key``."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field

from .model import ACTIVE, HIDDEN, IDLE, IDLE_TXN, IDLE_TXN_ABORTED, OTHER, ServerConn

FILTER_KEYS = ("state", "user", "database", "application", "client", "id", "holder")
SORT_KEYS = {
    "state-age": lambda c: -(c.state_s or 0.0),
    "age": lambda c: -(c.connected_s or 0.0),
    "xact": lambda c: -(c.xact_s or 0.0),
    "id": lambda c: c.id,
    "user": lambda c: (c.user or "", c.id),
    "database": lambda c: (c.database or "", c.id),
    "application": lambda c: (c.application or "", c.id),
    "client": lambda c: (c.client or "", c.id),
    "state": lambda c: (c.state, -(c.state_s or 0.0)),
}
# state names as typed on a command line
STATE_ALIASES = {
    "active": (ACTIVE,), "idle": (IDLE,), "idle-in-transaction": (IDLE_TXN, IDLE_TXN_ABORTED),
    "idle in transaction": (IDLE_TXN, IDLE_TXN_ABORTED), "aborted": (IDLE_TXN_ABORTED,),
    "hidden": (HIDDEN,), "other": (OTHER,), "any-idle": (IDLE, IDLE_TXN, IDLE_TXN_ABORTED),
}


@dataclass
class ConnFilter:
    """Every given criterion must match; within one criterion any value may match."""

    states: set[str] = field(default_factory=set)
    users: list[str] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    applications: list[str] = field(default_factory=list)
    clients: list[str] = field(default_factory=list)
    ids: set[int] = field(default_factory=set)
    holders: list[str] = field(default_factory=list)
    idle_over_s: float | None = None  # in an idle state for at least this long

    def empty(self) -> bool:
        return not (self.states or self.users or self.databases or self.applications
                    or self.clients or self.ids or self.holders or self.idle_over_s is not None)

    def add(self, key: str, value: str) -> None:
        """Add one ``key=value`` criterion (values are shell-style globs)."""
        if key == "state":
            states = STATE_ALIASES.get(value.lower())
            if states is None:
                raise ValueError(f"unknown state {value!r}; one of "
                                 f"{', '.join(k for k in STATE_ALIASES if ' ' not in k)}")
            self.states.update(states)
        elif key in ("user", "database", "application", "client", "holder"):
            getattr(self, f"{key}s").append(value)
        elif key in ("id", "pid"):
            try:
                self.ids.add(int(value))
            except ValueError:
                raise ValueError(f"id must be a number, got {value!r}") from None
        else:
            raise ValueError(f"unknown filter key {key!r}; one of {', '.join(FILTER_KEYS)}")

    def parse(self, specs: Iterable[str]) -> ConnFilter:
        for spec in specs:
            key, sep, value = spec.partition("=")
            if not sep or not key:
                raise ValueError(f"bad filter {spec!r}: expected key=value, e.g. state=idle")
            self.add(key.strip().lower(), value.strip())
        return self

    def __call__(self, c: ServerConn) -> bool:
        if self.states and c.state not in self.states:
            return False
        if self.ids and c.id not in self.ids:
            return False
        for pats, value in ((self.users, c.user), (self.databases, c.database),
                            (self.applications, c.application), (self.clients, c.client),
                            (self.holders, c.value("holder"))):
            if pats and not any(fnmatch.fnmatchcase(value or "", p) for p in pats):
                return False
        return self.idle_over_s is None or (
            c.idle and c.state_s is not None and c.state_s >= self.idle_over_s)


def sort_conns(conns: Iterable[ServerConn], key: str, reverse: bool = False) -> list[ServerConn]:
    if key not in SORT_KEYS:
        raise ValueError(f"unknown sort key {key!r}; one of {', '.join(SORT_KEYS)}")
    return sorted(conns, key=SORT_KEYS[key], reverse=reverse)
