"""Re-entrant checkouts: one pooled connection checked out again on the same thread.

SingletonThreadPool (SQLite's default for in-memory databases) hands a thread the connection
it already has: ``engine.connect()`` twice gives two ``Connection`` objects over one
``_ConnectionFairy`` whose counter goes to 2, and the pool sees one checkout. Each extra
checkout is recorded as a *level* of the hold: where it was taken, when, and which
``Connection`` took it (weakly). The fairy's class is swapped, for that fairy only, for a
subclass whose ``close()`` tells which level ended: the ``Connection`` whose ``close()`` calls
it, or the latest level when no ``Connection`` is calling (a raw ``pool.connect()``). When the
first checkout ends first, the oldest remaining level takes over the hold: a finding then
names the line of the checkout still open, not the one that was properly closed.
"""

from __future__ import annotations

import sys
import time
import weakref
from types import FrameType
from typing import Any

from sqlalchemy.engine import Connection

from ...guard import GUARD
from ...ledger import Hold
from ...sites import capture

LEVELS = "pd_levels"  # in hold.__dict__: [(connection ref or None, frames, since)]
FIRST = "pd_first"  # in hold.__dict__: a weak reference to the first level's Connection

_fairy_classes: dict[type, type] = {}


def reentered(fairy: Any) -> None:
    """A checkout of a connection this thread holds already (the fairy's counter > 1)."""
    h: Hold | None = fairy._connection_record.__dict__.get("_pd_hold")
    if h is None or h.ended:
        return
    frames = capture(2, GUARD.depth)  # from the caller of Pool.connect()
    conn = _connection_in(sys._getframe(2), "__init__")
    levels = h.__dict__.setdefault(LEVELS, [])
    levels.append((weakref.ref(conn) if conn is not None else None, frames, time.monotonic()))
    cls = type(fairy)
    if getattr(cls, "_pd_fairy_original", None) is None:
        sub = _fairy_classes.get(cls)
        if sub is None:
            sub = _fairy_classes[cls] = type(cls.__name__, (cls,), {
                "__slots__": (), "_pd_fairy_original": cls, "__module__": cls.__module__,
                "close": _close, "_close_special": _close_special})
        fairy.__class__ = sub


def _connection_in(f: FrameType | None, name: str, depth: int = 8) -> Connection | None:
    """The ``Connection`` running method ``name`` at or above frame ``f`` (a few frames)."""
    while f is not None and depth > 0:
        if f.f_code.co_name == name:
            obj = f.f_locals.get("self")
            if isinstance(obj, Connection):
                return obj
        f = f.f_back
        depth -= 1
    return None


def _level_ends(fairy: Any, caller: FrameType | None) -> None:
    h: Hold | None = fairy._connection_record.__dict__.get("_pd_hold")
    levels = h.__dict__.get(LEVELS) if h is not None else None
    if not levels or h is None:
        return
    closing = _connection_in(caller, "close", 2)
    if closing is None:
        levels.pop()  # no Connection: a raw checkout, closed last-in first-out
        return
    for i, (ref, _, _) in enumerate(levels):
        if ref is not None and ref() is closing:
            del levels[i]
            return
    first = h.__dict__.get(FIRST)
    if first is not None and first() is not closing:
        levels.pop()  # a Connection we do not know: last-in first-out
        return
    ref, frames, since = levels.pop(0)  # the first checkout ended: the oldest level left
    h.frames = frames  # takes over the hold, with its own site and age
    h.since = since
    h.__dict__[FIRST] = ref


def _close(self: Any) -> None:
    if self._counter > 1:
        try:
            _level_ends(self, sys._getframe(1))
        except Exception:
            GUARD.internal_error("re-entrant checkin")
    self._pd_fairy_original.close(self)
    _restore(self)


def _close_special(self: Any, transaction_reset: bool = False) -> None:
    if self._counter > 1:
        try:
            _level_ends(self, sys._getframe(1))
        except Exception:
            GUARD.internal_error("re-entrant checkin")
    self._pd_fairy_original._close_special(self, transaction_reset)
    _restore(self)


def _restore(fairy: Any) -> None:
    """Back to the plain class once no extra level is open."""
    if fairy._counter <= 1:
        fairy.__class__ = fairy._pd_fairy_original
