"""What the dashboard shows, as plain data: pools, holds by site, findings, the server.

One :class:`Dashboard` per app. ``local=True`` reads this process's guard directly (the
dashboard runs inside the guarded program); holds published by other guarded processes on
this machine (``runtime/publish.py``) are added in both modes.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from ..findings import CATALOGUE, Finding, Site, doc_page
from ..urls import mask_text
from .history import History

MAX_CONNECTIONS = 500  # server connections listed (the longest in their state first)
DEFAULT_POINTS = 600  # chart samples sent per pool (the page shows 600)


class Dashboard:
    """The figures behind the API; every method returns JSON-ready data and never raises for
    an unreachable server (the error is in the data)."""

    def __init__(self, *, local: bool = True, server_url: str | None = None,
                 runtime_dir: str | None = None, interval: float = 1.0,
                 history_len: int = 3600, probe: Any = None, timeout: float = 5.0) -> None:
        self.local = local
        self.runtime_dir = runtime_dir
        self.history = History(interval, history_len)
        self.started = time.time()
        self.server = ServerView(server_url, probe, interval, timeout,
                                 runtime_dir) if server_url or probe else None
        self._hooked = False
        if local:
            from ..guard import GUARD
            from ..metrics.recorder import enable

            enable()  # wait and hold time histograms
            GUARD.tick_hooks.append(self.sample)  # keep the charts going between polls
            self._hooked = True

    def close(self) -> None:
        if self._hooked:
            from ..guard import GUARD

            while self.sample in GUARD.tick_hooks:
                GUARD.tick_hooks.remove(self.sample)
            self._hooked = False
        if self.server is not None:
            self.server.close()

    # ------------------------------------------------------------------ pools

    def sample(self) -> None:
        """Record the pools' figures if a sample is due (watchdog tick or API poll)."""
        if self.local and self.history.due():
            self.history.add(_pool_rows())

    def pools(self, points: int | None = DEFAULT_POINTS) -> list[dict[str, Any]]:
        """Every live guarded pool, with the newest ``points`` samples of its history."""
        if not self.local:
            return []
        rows = _pool_rows()
        self.history.add(rows)
        for r in rows:
            r["history"] = self.history.series(r["key"], points)
        return rows

    # ------------------------------------------------------------------ holds

    def holds(self) -> dict[str, Any]:
        """Live holds grouped by site, the group holding the oldest first."""
        now = time.time()
        items: list[dict[str, Any]] = []
        if self.local:
            from ..guard import GUARD

            GUARD.drain()
            for h in GUARD.ledger.holds():
                if not h.ended:
                    d = h.describe()
                    d["program"] = "this process"
                    items.append(d)
        items += _published_holds(self.runtime_dir, now,
                                  skip_pid=os.getpid() if self.local else None)
        for d in items:
            if isinstance(d.get("pool"), str):
                d["pool"] = mask_text(d["pool"])
        return {"total": len(items), "groups": group_by_site(items)}

    # ------------------------------------------------------------------ findings

    def findings(self) -> list[dict[str, Any]]:
        found: list[Finding] = []
        if self.local:
            from ..guard import GUARD

            GUARD.drain()
            found += GUARD.collector.findings()
        if self.server is not None:
            found += self.server.findings()
        out = []
        for f in sorted(found, key=lambda f: f.last_seen, reverse=True):
            d = f.to_dict()
            code = CATALOGUE[f.code]
            d.update(title=code.title, name=code.name, severity=code.severity, hint=code.hint,
                     where=f.site.short() if f.site else None)
            out.append(d)
        return out

    # ------------------------------------------------------------------ all

    def state(self, points: int | None = DEFAULT_POINTS) -> dict[str, Any]:
        return {
            "schema": "pooldoctor.dashboard/1",
            "mode": "process" if self.local else "standalone",
            "pid": os.getpid(),
            "now": round(time.time(), 3),
            "interval": self.history.interval,
            "pools": self.pools(points),
            "holds": self.holds(),
            "findings": self.findings(),
            "server": self.server.data() if self.server is not None else None,
        }


def code_page(code: str) -> dict[str, Any] | None:
    """A finding code's catalogue entry and its Markdown page (explanation, fix)."""
    c = CATALOGUE.get(code.upper())
    if c is None:
        return None
    return {"code": c.code, "name": c.name, "severity": c.severity, "title": c.title,
            "hint": c.hint, "markdown": doc_page(c.code) or ""}


# ---------------------------------------------------------------------- pools


def _pool_rows() -> list[dict[str, Any]]:
    from ..metrics.pools import current, infos
    from ..metrics.recorder import metrics_of

    rows = []
    for info in infos():
        if info.pool() is None:
            continue  # disposed for good, or collected
        cur = current(info)
        m = metrics_of(info)
        with m.lock:
            wait = _buckets(m.wait, m.wait_timed_out)  # every checkout that waited
            use = _buckets(m.use)
        overflow = max(cur.open - cur.size, 0) if cur.size is not None else 0
        d = info.to_dict()
        rows.append({
            "key": f"{info.label}#{id(info):x}",
            "label": mask_text(info.label),
            "url": mask_text(info.url) if info.url else None,
            "pool_class": info.pool_class,
            "size": cur.size, "max": cur.max,
            "used": cur.used, "idle": cur.idle, "overflow": overflow, "waiting": cur.waiting,
            "checkouts": info.checkouts, "timeouts": info.timeouts, "waits": info.waits,
            "connects": info.connects, "gc_reclaimed": info.gc_reclaimed,
            "peak_checked_out": info.peak_checked_out,
            "max_wait_ms": d.get("max_wait_ms"), "timeout_s": d.get("timeout"),
            "wait_s": wait, "hold_s": use,
        })
    return rows


def _buckets(h: Any, timed_out: Any = None) -> dict[str, Any]:
    """A histogram as bucket counts (not cumulative): ``le`` upper bounds, the last None (inf);
    with ``timed_out`` (same bounds) added in, and their number as ``timed_out``."""
    counts = list(h.counts)
    count, total, late = h.count, h.sum, 0
    if timed_out is not None:
        counts = [a + b for a, b in zip(counts, timed_out.counts)]
        count, total, late = count + timed_out.count, total + timed_out.sum, timed_out.count
    out = {"le": [*h.bounds, None], "counts": counts, "count": count, "sum": round(total, 6)}
    if timed_out is not None:
        out["timed_out"] = late
    return out


# ---------------------------------------------------------------------- holds


def _published_holds(runtime_dir: str | None, now: float,
                     skip_pid: int | None) -> list[dict[str, Any]]:
    from ..server.attribution import load

    out = []
    try:
        published = load(runtime_dir, clean=False)
    except OSError:
        return []
    for p in published.values():
        if skip_pid is not None and p.pid == skip_pid:
            continue
        for h in p.holds:
            since = h.get("since")
            d = {k: h.get(k) for k in ("kind", "pool", "site", "stack", "since", "thread",
                                       "task", "server_id", "server")}
            d.update(pid=p.pid, program=p.program, hostname=p.hostname,
                     age_s=None if since is None else round(max(now - float(since), 0.0), 3))
            if h.get("txn_since") is not None:
                d["transaction_age_s"] = round(max(now - float(h["txn_since"]), 0.0), 3)
            out.append(d)
    return out


def group_by_site(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Holds grouped by their site; each group's holds oldest first, groups by oldest hold."""
    groups: dict[Any, dict[str, Any]] = {}
    for d in items:
        site = d.get("site")
        key = (site.get("file"), site.get("line"), site.get("function")) if site else None
        g = groups.get(key)
        if g is None:
            where = Site.from_dict(site).short() if site else "an unknown site"
            g = groups[key] = {"site": site, "where": where, "count": 0, "oldest_s": 0.0,
                               "pids": [], "pools": [], "holds": []}
        g["count"] += 1
        g["oldest_s"] = max(g["oldest_s"], d.get("age_s") or 0.0)
        if d.get("pid") not in g["pids"]:
            g["pids"].append(d.get("pid"))
        if d.get("pool") not in g["pools"]:
            g["pools"].append(d.get("pool"))
        g["holds"].append(d)
    for g in groups.values():
        g["holds"].sort(key=lambda d: -(d.get("age_s") or 0.0))
    return sorted(groups.values(), key=lambda g: -g["oldest_s"])


# ---------------------------------------------------------------------- server


class ServerView:
    """One probe to a server: a snapshot at most once per interval, with attribution and the
    server watch's findings; reconnects after a failure."""

    def __init__(self, url: str | None, probe: Any, interval: float, timeout: float,
                 runtime_dir: str | None) -> None:
        from ..server.watch import Watcher

        self.url = url
        self.probe = probe
        self.interval = interval
        self.timeout = timeout
        self.runtime_dir = runtime_dir
        self.watcher = Watcher()
        self.lock = threading.Lock()
        self.last: dict[str, Any] | None = None
        self.last_at = 0.0
        self.error: str | None = None
        self.history: list[tuple[float, int, int, int, int]] = []  # t, total, active, idle, txn
        self._findings: dict[Any, Finding] = {}

    def close(self) -> None:
        with self.lock:
            if self.probe is not None:
                self.probe.close()
                self.probe = None

    def findings(self) -> list[Finding]:
        with self.lock:
            return [Finding.from_dict(f.to_dict()) for f in self._findings.values()]

    def data(self) -> dict[str, Any]:
        with self.lock:
            now = time.time()
            if now - self.last_at >= self.interval or self.last is None:
                self.last_at = now
                self._take()
            base = dict(self.last or {})
            base["error"] = self.error
            base["history"] = {k: [r[i] for r in self.history[-DEFAULT_POINTS:]] for i, k in
                               enumerate(("t", "total", "active", "idle", "transaction"))}
            return base

    def _take(self) -> None:
        from ..dbconnect import ServerError
        from ..server.attribution import attribute, load
        from ..server.probes import open_probe

        try:
            if self.probe is None:
                if not self.url:
                    raise ServerError("no server url")
                self.probe = open_probe(self.url, timeout=self.timeout)
            snap = self.probe.snapshot()
        except Exception as e:  # unreachable, refused, dropped: say so, retry next time
            self.error = mask_text(str(e).strip().splitlines()[0] if str(e).strip()
                                   else type(e).__name__)
            if self.probe is not None:
                self.probe.close()
                self.probe = None
            return
        self.error = None
        try:
            attribute(snap, load(self.runtime_dir, clean=False))
        except OSError:
            pass
        for f in self.watcher.observe(snap):
            old = self._findings.get(f.key())
            if old is None:
                self._findings[f.key()] = f
            else:
                old.merge(f)
        self.last = _server_dict(snap)
        states = snap.by_state()
        self.history.append((round(snap.taken_at, 3), snap.total, states.get("active", 0),
                             states.get("idle", 0),
                             states.get("idle in transaction", 0)
                             + states.get("idle in transaction (aborted)", 0)))
        del self.history[:-3600]


def _server_dict(snap: Any) -> dict[str, Any]:
    conns = sorted(snap.conns, key=lambda c: -(c.state_s or 0.0))[:MAX_CONNECTIONS]
    return {
        "backend": snap.backend, "url": mask_text(snap.url),
        "server_version": snap.server_version, "taken_at": round(snap.taken_at, 3),
        "limit": snap.limit, "max_connections": snap.max_connections, "total": snap.total,
        "states": dict(snap.by_state()), "notes": list(snap.notes),
        "applications": [_group(g) for g in snap.groups("application")],
        "sites": _by_holding_site(snap.conns),
        "attributed": sum(1 for c in snap.conns if c.holder and c.holder.get("site")),
        "connections": [snap.conn_dict(c) for c in conns],
        "listed": len(conns),
    }


def _group(g: Any) -> dict[str, Any]:
    d: dict[str, Any] = g.to_dict()
    st = d["states"]
    d.update(active=st.get("active", 0), idle=st.get("idle", 0),
             in_transaction=st.get("idle in transaction", 0)
             + st.get("idle in transaction (aborted)", 0))
    return d


def _by_holding_site(conns: list[Any]) -> list[dict[str, Any]]:
    """Server connections attributed to a site of a guarded process, grouped by that site."""
    out: dict[Any, dict[str, Any]] = {}
    for c in conns:
        h = c.holder or {}
        site = h.get("site")
        if not site:
            continue
        key = (site.get("file"), site.get("line"), site.get("function"))
        g = out.get(key)
        if g is None:
            g = out[key] = {"site": site, "where": Site.from_dict(site).short(), "total": 0,
                            "states": {}, "pids": [], "ids": [], "longest_held_s": 0.0}
        g["total"] += 1
        g["states"][c.state] = g["states"].get(c.state, 0) + 1
        if h.get("pid") not in g["pids"]:
            g["pids"].append(h.get("pid"))
        g["ids"].append(c.id)
        g["longest_held_s"] = max(g["longest_held_s"], h.get("held_s") or 0.0)
    return sorted(out.values(), key=lambda g: (-g["total"], -g["longest_held_s"]))
