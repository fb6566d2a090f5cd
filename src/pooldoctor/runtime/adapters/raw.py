"""Raw (async) connections of the adapters' drivers: open to close is a hold; and the
watchdog's sweep of the side table of held objects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...guard import GUARD
from ...ledger import CONNECTION, Hold
from ...sites import capture
from ..server_ids import server_id
from .fastpath import OBJECTS
from .protocol import checkin, live_hold

_closed_checks: dict[str, Callable[[Any], bool]] = {}  # raw label -> "closed by the server?"


class _Raw:
    enabled = True  # instrument(drivers=False): raw connections are not held


RAW = _Raw()


def opened(conn: Any, label: str, server: bool = True, skip: int = 1) -> Hold | None:
    """A raw (async) connection was opened by the user's code: its hold begins."""
    g = GUARD
    if not g.active or not RAW.enabled:
        return None
    try:
        if live_hold(conn) is not None:
            return None
        frames = capture(skip + 1, g.depth)
        if not frames:
            return None
        h = g.ledger.new(conn, g.on_collected, CONNECTION, label, frames, g.pid,
                         server_id(conn) if server else None)
        OBJECTS[id(conn)] = h
        return h
    except Exception:
        g.internal_error(f"{label} connect")
        return None


def closed(conn: Any) -> None:
    """A raw connection was closed: its hold ends."""
    checkin(conn)


def closed_check(label: str, check: Callable[[Any], bool]) -> None:
    """How to tell that an object held through ``label`` (a raw connection's label, or a pool
    library's) was closed under us (by the server, the network, or a ``close()`` we do not
    wrap): the watchdog then ends its hold."""
    _closed_checks[label] = check


def forget_objects() -> None:
    """Forget which object holds what (the guard was removed: no checkin will come through
    the wrappers any more, and a later checkout of the same object must start afresh)."""
    OBJECTS.clear()


def sweep() -> None:
    """Watchdog tick hook: forget the side table's dead entries; end the holds of raw
    connections that the library reports closed without our seeing ``close()``."""
    for key, h in list(OBJECTS.items()):
        obj = h()
        if obj is None or h.ended:
            if OBJECTS.get(key) is h:
                OBJECTS.pop(key, None)
            continue
        label = h.pool if h.kind == CONNECTION else getattr(h.pool, "library", None)
        check = _closed_checks.get(label) if isinstance(label, str) else None
        try:
            if check is not None and check(obj):
                checkin(obj)
        except Exception:
            GUARD.internal_error("adapter sweep")
