"""Text rendering of a snapshot: totals, states, groups, and every connection (idle too)."""

from __future__ import annotations

from collections.abc import Sequence

from ..findings import Site, utc_iso
from .model import STATES, Group, ServerConn, Snapshot
from .sql import truncate

GROUPS = ("user", "database", "client", "application")
COLUMNS = ("id", "user", "database", "application", "client", "state", "connected",
           "in state", "xact", "held at", "query")


def age(seconds: float | None) -> str:
    """A compact duration: ``0.4s``, ``42s``, ``3m05s``, ``2h10m``, ``3d04h``; ``-`` if unknown."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def header(snap: Snapshot) -> list[str]:
    lines = [f"{snap.backend} {snap.server_version.split(' ')[0]} at {snap.url}  "
             f"({utc_iso(snap.taken_at)}, {snap.queries} quer{'y' if snap.queries == 1 else 'ies'}"
             f" in {snap.query_ms:.1f} ms)"]
    lines.append(f"connections: {snap.total} of {snap.limit} ({snap.used_ratio:.0%})  "
                 f"max_connections={snap.max_connections} reserved={snap.reserved}")
    states = snap.by_state()
    parts = [f"{s} {states[s]}" for s in STATES if states.get(s)]
    lines.append("states: " + (", ".join(parts) if parts else "none"))
    if snap.rejected_total is not None:
        lines.append(f"rejected for the limit since the server started: {snap.rejected_total}")
    attributed = sum(1 for c in snap.conns if c.holder and c.holder.get("site"))
    if attributed:
        lines.append(f"attributed to a holding site in a guarded process: {attributed}")
    lines.extend(f"note: {n}" for n in snap.notes)
    return lines


def group_table(snap: Snapshot, key: str, groups: Sequence[Group], top: int = 10) -> list[str]:
    if not groups:
        return []
    names = [str(g.value) if g.value not in (None, "") else "-" for g in groups[:top]]
    w = max(len(key) + 3, *(len(n) + 2 for n in names))
    w = min(w, 48)
    lines = [f"{'by ' + key:<{w}} {'total':>6} {'active':>6} {'idle':>6} {'in-txn':>6} "
             f"{'oldest':>8} {'idle max':>8} {'txn max':>8}"]
    for name, g in zip(names, groups[:top]):
        in_txn = g.states.get("idle in transaction", 0) + g.states.get(
            "idle in transaction (aborted)", 0)
        lines.append(f"  {truncate(name, w - 2):<{w - 2}} {g.total:>6} {g.active:>6} "
                     f"{g.states.get('idle', 0):>6} {in_txn:>6} {age(g.oldest_s):>8} "
                     f"{age(g.longest_idle_s):>8} {age(g.oldest_xact_s):>8}")
    if len(groups) > top:
        lines.append(f"  ... {len(groups) - top} more")
    return lines


def holder_text(c: ServerConn) -> str:
    h = c.holder
    if not h:
        return ""
    site = h.get("site")
    if site and h.get("source") not in ("statement", "connection"):
        return Site.from_dict(site).short()
    return str(h.get("text", ""))  # from the server's tags: the site, and pid@host


def conn_rows(conns: Sequence[ServerConn]) -> list[tuple[str, ...]]:
    return [(f"{c.id}{'*' if c.own else ''}", c.user or "-", c.database or "-",
             truncate(c.application, 32) or "-", c.client or "-", c.state, age(c.connected_s),
             age(c.state_s), age(c.xact_s), holder_text(c) or "-", c.query or "")
            for c in conns]


def conn_table(conns: Sequence[ServerConn], query_width: int = 60) -> list[str]:
    rows = conn_rows(conns)
    if not rows:
        return ["(no connections match)"]
    widths = [len(h) for h in COLUMNS[:-1]]
    for r in rows:
        for i in range(len(widths)):
            if len(r[i]) > widths[i]:
                widths[i] = len(r[i])
    right = {0, 6, 7, 8}
    fmt = " ".join(f"{{:{'>' if i in right else '<'}{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*COLUMNS[:-1]) + " query"]
    for r in rows:
        lines.append(fmt.format(*r[:-1]) + " " + truncate(r[-1], query_width))
    return lines


def render_snapshot(snap: Snapshot, conns: Sequence[ServerConn] | None = None,
                    query_width: int = 60, groups: bool = True) -> str:
    """The whole text view; ``conns`` is the (filtered, sorted) list to show."""
    shown = list(snap.conns if conns is None else conns)
    lines = header(snap)
    if groups:
        for key in GROUPS:
            table = group_table(snap, key, snap.groups(key, shown))
            if table:
                lines.append("")
                lines.extend(table)
    lines.append("")
    if conns is not None and len(shown) != snap.total:
        lines.append(f"{len(shown)} of {snap.total} connection{'' if snap.total == 1 else 's'} "
                     "shown "
                     f"(* = the watcher's own connection)")
    else:
        lines.append(f"{snap.total} connection{'s' if snap.total != 1 else ''} "
                     "(* = the watcher's own connection)")
    lines.extend(conn_table(shown, query_width))
    return "\n".join(lines) + "\n"
