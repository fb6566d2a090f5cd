"""Alarms over snapshots: PD301-PD305.

:class:`Watcher` keeps a short history of snapshots and turns each new one into findings:

- PD301 the server is near its limit (connections / (max_connections - reserved));
- PD302 connections idle in transaction longer than a limit;
- PD303 a group (user, database, application, client host) whose connection count rose at
  every one of the last samples while its active connections stayed flat: the leak signature;
- PD304 connections idle longer than a limit;
- PD305 connections rejected for the limit since the previous sample (MySQL
  ``Connection_errors_max_connections``; PostgreSQL: the watcher's own reconnect refused).

Server findings have no code site unless the connections are attributed to a guarded process:
then the finding points at the holding site. The watcher's own connection is never counted
as a finding's subject.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from ..findings import Finding, Site
from ..guard import fmt_s
from .model import ACTIVE, IDLE, IDLE_TXN, IDLE_TXN_ABORTED, ServerConn, Snapshot

GroupKey = tuple[str | None, str | None, str | None, str | None]
STATE_SCHEMA = "pooldoctor.watch-state/1"


@dataclass
class Thresholds:
    near: float = 0.8  # PD301: fraction of the limit
    idle_in_transaction_s: float = 60.0  # PD302
    idle_s: float = 1800.0  # PD304
    growth_samples: int = 5  # PD303: samples in the window (>= 3)
    growth_min: int = 3  # PD303: connections gained over the window
    flat_active: int = 1  # PD303: how much a group's active count may move and stay "flat"

    def validate(self) -> None:
        if not 0 < self.near <= 1:
            raise ValueError(f"near must be a fraction in (0, 1], got {self.near!r}")
        for name in ("idle_in_transaction_s", "idle_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.growth_samples < 3:
            raise ValueError(f"growth_samples must be at least 3, got {self.growth_samples}")
        if self.growth_min < 1:
            raise ValueError(f"growth_min must be at least 1, got {self.growth_min}")


def group_key(c: ServerConn) -> GroupKey:
    return (c.user, c.database, c.application, c.client)


def group_label(k: GroupKey) -> str:
    user, db, app, client = k
    text = f"{user or '?'}@{db or '?'}"
    if app:
        text += f" app {app!r}"
    if client:
        text += f" from {client}"
    return text


@dataclass
class Sample:
    taken_at: float
    counts: dict[GroupKey, tuple[int, int]]  # group -> (total, active)


class Watcher:
    """Findings from a sequence of snapshots of one server."""

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self.t = thresholds or Thresholds()
        self.t.validate()
        self.history: deque[Sample] = deque(maxlen=self.t.growth_samples)
        self.last_rejected: int | None = None
        self.refused_connects = 0  # PostgreSQL: the watcher's own reconnects refused

    # ------------------------------------------------------------------ state between runs

    def state(self, server: str) -> dict[str, Any]:
        """What the next run needs (``watch --once --state FILE`` from cron)."""
        return {"schema": STATE_SCHEMA, "server": server, "last_rejected": self.last_rejected,
                "history": [{"taken_at": s.taken_at,
                             "counts": [[*k, t, a] for k, (t, a) in s.counts.items()]}
                            for s in self.history]}

    def restore(self, state: dict[str, Any], server: str) -> bool:
        """Take back a saved state; False (and nothing changed) if it is for another server."""
        if state.get("schema") != STATE_SCHEMA or state.get("server") != server:
            return False
        last = state.get("last_rejected")
        self.last_rejected = int(last) if last is not None else None
        for s in state.get("history") or ():
            counts = {tuple(row[:4]): (int(row[4]), int(row[5])) for row in s["counts"]}
            self.history.append(Sample(float(s["taken_at"]), counts))
        return True

    def observe(self, snap: Snapshot) -> list[Finding]:
        out: list[Finding] = []
        out += self.near_limit(snap)
        out += self.idle_findings(snap, (IDLE_TXN, IDLE_TXN_ABORTED),
                                  self.t.idle_in_transaction_s, "PD302",
                                  "idle in transaction")
        out += self.idle_findings(snap, (IDLE,), self.t.idle_s, "PD304", "idle")
        out += self.growth(snap)
        out += self.rejected(snap)
        return out

    # ------------------------------------------------------------------ PD301

    def near_limit(self, snap: Snapshot) -> list[Finding]:
        if not snap.limit or snap.used_ratio < self.t.near:
            return []
        top = snap.groups("user")[:3]
        who = ", ".join(f"{g.value} {g.total}" for g in top)
        return [Finding(
            "PD301",
            f"{snap.total} of {snap.limit} connections in use on {snap.url} "
            f"({snap.used_ratio:.0%}, threshold {self.t.near:.0%}; "
            f"max_connections={snap.max_connections}, reserved={snap.reserved}); "
            f"by user: {who}",
            details={"server": snap.url, "total": snap.total, "limit": snap.limit,
                     "max_connections": snap.max_connections, "reserved": snap.reserved,
                     "ratio": round(snap.used_ratio, 4), "threshold": self.t.near,
                     "states": dict(snap.by_state()),
                     "by_user": {str(g.value): g.total for g in top}})]

    # ------------------------------------------------------------------ PD302 / PD304

    def idle_findings(self, snap: Snapshot, states: tuple[str, ...], limit: float, code: str,
                      what: str) -> list[Finding]:
        hits = [c for c in snap.conns if c.state in states and not c.own
                and c.state_s is not None and c.state_s >= limit]
        if not hits:
            return []
        out: list[Finding] = []
        for site, conns in _by_site(hits).items():
            oldest = max(conns, key=lambda c: c.state_s or 0.0)
            n = len(conns)
            where = f" held at {site.short()}" if site else ""
            groups = sorted({group_label(group_key(c)) for c in conns})
            msg = (f"{n} connection{'s' if n != 1 else ''} {what} longer than {fmt_s(limit)} "
                   f"on {snap.url}{where}; oldest {fmt_s(oldest.state_s or 0.0)} "
                   f"(id {oldest.id}, {group_label(group_key(oldest))})")
            if len(groups) > 1:
                msg += f"; {len(groups)} groups"
            out.append(Finding(
                code, msg, site=site, stack=_stack(oldest),
                pids=_pids(conns),
                details={"server": snap.url, "threshold_s": limit, "count": n,
                         "connections": [_brief(c) for c in conns[:50]],
                         "groups": groups[:20]}))
        return out

    # ------------------------------------------------------------------ PD303

    def growth(self, snap: Snapshot) -> list[Finding]:
        counts: dict[GroupKey, list[int]] = {}
        for c in snap.conns:
            if c.own:
                continue
            tc = counts.setdefault(group_key(c), [0, 0])
            tc[0] += 1
            tc[1] += c.state == ACTIVE
        self.history.append(Sample(snap.taken_at, {k: (v[0], v[1]) for k, v in counts.items()}))
        if len(self.history) < self.t.growth_samples:
            return []
        out: list[Finding] = []
        first, last = self.history[0], self.history[-1]
        span = max(last.taken_at - first.taken_at, 1e-3)
        for key in last.counts:
            series = [s.counts.get(key, (0, 0)) for s in self.history]
            totals = [t for t, _ in series]
            actives = [a for _, a in series]
            rising = all(b >= a for a, b in pairwise(totals))
            steps = sum(b > a for a, b in pairwise(totals))
            gained = totals[-1] - totals[0]
            flat = max(actives) - min(actives) <= self.t.flat_active
            if not (rising and gained >= self.t.growth_min and flat
                    and steps >= (len(totals) - 1) // 2):
                continue
            conns = [c for c in snap.conns if group_key(c) == key and not c.own]
            sites = _by_site(conns)
            site = max(sites.items(), key=lambda kv: len(kv[1]))[0] if sites else None
            where = f"; most held at {site.short()}" if site else ""
            idle = sum(c.state == IDLE or c.state == IDLE_TXN for c in conns)
            out.append(Finding(
                "PD303",
                f"{group_label(key)} on {snap.url} grew from {totals[0]} to {totals[-1]} "
                f"connections in {fmt_s(span)} ({gained / span * 60:.1f}/min) while active "
                f"stayed at {min(actives)}-{max(actives)}; {idle} idle now{where}",
                site=site,
                pids=_pids(conns),
                details={"server": snap.url, "group": dict(zip(
                    ("user", "database", "application", "client"), key)),
                         "totals": totals, "active": actives, "over_s": round(span, 3),
                         "per_minute": round(gained / span * 60, 2),
                         "connections": [_brief(c) for c in conns[:50]]}))
        return out

    # ------------------------------------------------------------------ PD305

    def rejected(self, snap: Snapshot) -> list[Finding]:
        out: list[Finding] = []
        total = snap.rejected_total
        if total is not None:
            prev, self.last_rejected = self.last_rejected, total
            if prev is not None and total > prev:
                n = total - prev
                out.append(Finding(
                    "PD305",
                    f"{n} connection{'s' if n != 1 else ''} rejected for the limit on "
                    f"{snap.url} since the previous sample (Connection_errors_max_connections "
                    f"{prev} -> {total}; max_connections={snap.max_connections})",
                    details={"server": snap.url, "rejected": n, "rejected_total": total,
                             "max_connections": snap.max_connections}))
        if self.refused_connects:
            n, self.refused_connects = self.refused_connects, 0
            out.append(Finding(
                "PD305",
                f"the watcher's own connection to {snap.url} was refused {n} time"
                f"{'s' if n != 1 else ''} for the limit (too many clients); "
                f"{snap.total} of {snap.limit} connections in use",
                details={"server": snap.url, "rejected": n}))
        return out


def _by_site(conns: Iterable[ServerConn]) -> dict[Site | None, list[ServerConn]]:
    out: dict[Site | None, list[ServerConn]] = {}
    for c in conns:
        site = c.holder.get("site") if c.holder else None
        key = Site.from_dict(site) if site else None
        out.setdefault(key, []).append(c)
    return out


def _pids(conns: Iterable[ServerConn]) -> list[int]:
    """The pids the holders name (a holder from another tool's tags may name none)."""
    return sorted({c.holder["pid"] for c in conns
                   if c.holder and isinstance(c.holder.get("pid"), int)})


def _stack(c: ServerConn) -> list[Site]:
    if not c.holder:
        return []
    return [Site.from_dict(s) for s in c.holder.get("stack") or ()]


def _brief(c: ServerConn) -> dict[str, Any]:
    d: dict[str, Any] = {"id": c.id, "user": c.user, "database": c.database,
                         "application": c.application, "client": c.client, "state": c.state,
                         "state_s": c.state_s, "xact_s": c.xact_s}
    if c.holder:
        d["holder"] = c.holder.get("text")
    return d
