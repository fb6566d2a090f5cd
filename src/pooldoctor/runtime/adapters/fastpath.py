"""What most adapter checkouts and checkins do, in one call: C when built, else the Python
twins below (one behaviour, compared by tests/unit/test_adapter_fastpath.py).

- ``wait_begins(pool) -> float | None``: a checkout of ``pool`` may wait: count it as waiting,
  return when it began (``time.monotonic()``).
- ``checkout(pool, obj, conn, t0) -> Hold | None``: ``obj`` was checked out of ``pool`` (or of
  the pool whose :class:`PoolStats` is given) by the caller of the calling function; ``conn``
  is the driver connection behind it (None: ``obj``); ``t0``: when its wait began (None: no
  wait timed). Ends the wait and creates the hold.
- ``checkin(obj) -> bool``: ``obj`` went back to its pool: its hold ends (True also when it
  had none).

Each declines anything out of the ordinary (None or False, nothing done): the guard off or
observed, a pool or connection seen for the first time (its stats, its server id), a wait
past the threshold (PD109), an object held already, no user frame on the stack. The adapter
then takes the careful path (:mod:`.protocol`), which handles every case.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from ...guard import GUARD
from ...ledger import Hold
from .. import hotpath as _hotpath
from .stats import BY_ID, STATS, PoolStats

_monotonic = time.monotonic
_getframe = sys._getframe
_ref = weakref.ref
_get_ident = threading.get_ident
_active: dict[int, threading.Thread] = threading._active  # type: ignore[attr-defined]
_get_running_loop = asyncio._get_running_loop
_next_id = GUARD.ledger.next_id
_on_collected = GUARD.on_collected
_user_stack = _hotpath.user_stack_py
_checkin = _hotpath.checkin_py
_task_name = _hotpath.task_name

OBJECTS: dict[int, Hold] = {}  # id(object held) -> its hold (checkouts and raw connections)
# id(driver connection) -> (weak reference to it, its server id), filled by the careful path
SERVER_IDS: dict[int, tuple[Callable[[], Any], int | None]] = {}


def _stats(pool: Any) -> PoolStats | None:
    if type(pool) is PoolStats:
        return pool
    d = getattr(pool, "__dict__", None)
    if d is None:  # asyncpg's: in BY_ID, named by the pool's anchor
        st = BY_ID.get(id(pool))
        if type(st) is not PoolStats:
            return None
        ref, via = st.anchor_ref, st.via
        if type(ref) is not _ref or type(via) is not str:
            return None
        a = ref()
        return st if a is not None and getattr(a, via, None) is pool else None
    st = d.get(STATS)
    if type(st) is not PoolStats:
        return None
    ref = st.pool_ref
    return st if type(ref) is _ref and ref() is pool else None


def wait_begins_py(pool: Any) -> float | None:
    g = GUARD
    if g.active is not True or g.observers:
        return None
    try:
        st = _stats(pool)
        if st is None:
            return None
        st.waiting += 1
        return _monotonic()
    except Exception:
        g.internal_error("adapter wait")
        return None


def checkout_py(pool: Any, obj: Any, conn: Any, t0: float | None) -> Hold | None:
    try:
        return _checkout(pool, obj, conn, t0)
    except Exception:
        GUARD.internal_error("adapter checkout")
        return None


def _checkout(pool: Any, obj: Any, conn: Any, t0: float | None) -> Hold | None:
    if t0 is not None and type(t0) is not float:
        return None
    g = GUARD
    if g.active is not True or g.observers:
        return None
    st = _stats(pool)
    if st is None:
        return None
    key = id(obj)
    if key in OBJECTS:
        return None
    c = obj if conn is None else conn
    e = SERVER_IDS.get(id(c))
    if e is None or e[0]() is not c:
        return None
    waited = 0.0
    if t0 is not None:
        waited = _monotonic() - t0
        if waited >= g.options.wait_threshold:
            return None
    frames = _user_stack(_getframe(3), g.depth)  # from the caller of the adapter's wrapper
    if frames is None:
        return None
    if t0 is not None:
        st.waiting -= 1
        st.wait_s_total += waited
    h = Hold(obj, _on_collected)
    h.id = hid = _next_id()
    h.pool = st  # kind: CHECKOUT, the class default (no per-hold __dict__)
    h.frames = frames
    h.since = _monotonic()
    h.thread_id = ident = _get_ident()
    h.thread = _active.get(ident)  # names and PD110 stay right when the id is reused
    h.pid = g.pid
    h.server_id = e[1]
    h.reported = h.txn_begun = h.txn_reported = False
    h.txn_since = h.txn_frames = None
    loop = _get_running_loop()
    if loop is not None:
        h.task = _task_name(loop)
    OBJECTS[key] = h  # in the side table, then in the pool's table
    holds = st.holds
    holds[hid] = h
    next(st.checkout_counter)
    n = len(holds)
    if n > st.peak_checked_out:
        st.peak_checked_out = n
    return h


def checkin_py(obj: Any) -> bool:
    try:
        return _checkin_py(obj)
    except Exception:
        GUARD.internal_error("adapter checkin")
        return False


def _checkin_py(obj: Any) -> bool:
    key = id(obj)
    h = OBJECTS.get(key)
    if h is None:
        return True
    if not isinstance(h, Hold) or h() is not obj or type(h.pool) is not PoolStats:
        return False
    if not _checkin(h):
        return False
    del OBJECTS[key]
    return True


def _load() -> Any:
    """The C functions, configured with these tables; None without the C module."""
    c = _hotpath._c
    if c is None or not hasattr(c, "adapter_checkout"):
        return None
    try:
        c.configure_adapters(PoolStats, OBJECTS, SERVER_IDS, BY_ID)
    except (TypeError, RuntimeError):
        GUARD.internal_error("speedups configure_adapters")
        return None
    return c


_c = _load()
SPEEDUPS = _c is not None
wait_begins: Callable[[Any], float | None] = _c.adapter_wait_begins if _c else wait_begins_py
checkout: Callable[[Any, Any, Any, float | None], Hold | None] = (
    _c.adapter_checkout if _c else checkout_py)
checkin: Callable[[Any], bool] = _c.adapter_checkin if _c else checkin_py
