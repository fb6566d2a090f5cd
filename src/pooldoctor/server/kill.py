"""Terminate server connections that match a filter; never the watcher's own connection."""

from __future__ import annotations

from dataclasses import dataclass

from .filters import ConnFilter
from .model import HIDDEN, ServerConn, Snapshot
from .probe import Probe


@dataclass
class KillResult:
    conn: ServerConn
    error: str | None = None  # None: terminated (or would be, in a dry run)


def targets(snap: Snapshot, flt: ConnFilter) -> list[ServerConn]:
    """The connections ``flt`` selects, minus the watcher's own and hidden ones."""
    return [c for c in snap.conns if not c.own and c.state != HIDDEN and flt(c)]


def terminate(probe: Probe, conns: list[ServerConn]) -> list[KillResult]:
    """Terminate each connection; a failure is recorded, never raised."""
    out: list[KillResult] = []
    for c in conns:
        if c.own or c.id == probe.own_id:
            out.append(KillResult(c, "the watcher's own connection"))
            continue
        out.append(KillResult(c, probe.terminate(c)))
    return out
