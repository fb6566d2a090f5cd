"""The protocol every pool adapter speaks to the guard: checkout, checkin, waited, timed out
(raw connections, opened and closed, are in :mod:`.raw`).

An adapter wraps one library's pool (or async driver) and calls these verbs; they feed the
ledger and the guard (PD101, PD102, PD105, PD108 through the ledger and the watchdog; PD109 and
PD103 here). A checkout is a hold on the object the library hands out (the hold is a weak
reference to it: it is never kept alive); the object's hold is found again through a side
table keyed by ``id()`` (asyncpg's objects have ``__slots__``). Most checkouts and checkins
are done in one call by :mod:`.fastpath` (C when built); the verbs here are the careful path
for every other case. Nothing here raises into the user's program: every verb counts its
own failures.
"""

from __future__ import annotations

import sys
import time
import weakref
from collections.abc import Callable
from typing import Any

from ...findings import Finding
from ...guard import GUARD
from ...ledger import CHECKOUT, Hold
from ...sites import capture, format_stack, site_of
from .. import hotpath as _hotpath
from ..holders import add_to_error, holders_lines, holders_summary
from ..server_ids import server_id
from .fastpath import OBJECTS as _objs
from .fastpath import SERVER_IDS as _sids
from .stats import PoolStats, all_stats, pool_infos, stats_for_pool

__all__ = ["all_stats", "begin", "careful_checkout", "careful_wait", "checkin", "checkout",
           "checkout_failed", "dropped", "forget_objects", "live_hold", "pool_infos",
           "stats_for_pool", "timed_out", "wait_begins", "waited"]

_monotonic = time.monotonic
_getframe = sys._getframe
_fast_checkin = _hotpath.checkin  # the SQLAlchemy path's checkin (C when built): same ledger
# the C stack walker when built (None: a frame not judged yet; capture() then judges it)
_user_stack: Callable[[Any, int], Any] = (
    _hotpath._c.user_stack if _hotpath._c is not None else _hotpath.user_stack_py)


def _server_id(conn: Any) -> int | None:
    """The server's id of a driver connection (it never changes: asked once per connection,
    then found in ``_sids``; its entry goes with the connection)."""
    key = id(conn)
    e = _sids.get(key)
    if e is not None and e[0]() is conn:
        return e[1]
    sid = server_id(conn)
    try:
        ref = weakref.ref(conn, lambda _: _sids.pop(key, None))
    except TypeError:  # no weak reference: asked at each checkout
        return sid
    _sids[key] = (ref, sid)
    return sid


def live_hold(obj: Any) -> Hold | None:
    """The live hold of ``obj`` (a checkout or a raw connection), if it has one."""
    h = _objs.get(id(obj))
    return h if h is not None and not h.ended and h() is obj else None



# --------------------------------------------------------------------------- checkouts


def checkout(st: PoolStats, obj: Any, conn: Any = None, skip: int = 1) -> Hold | None:
    """``obj`` was checked out of ``st``'s pool by the user's code (``conn``: the driver
    connection behind it, for the server id); a second checkout of a held object keeps the
    first hold. None: not guarded (no user frame on the stack, or the guard is off).

    The stack is taken by the C walker when it is built and every frame's file is judged
    already (the SQLAlchemy path's ``user_stack``), else by :func:`capture`."""
    g = GUARD
    if not g.active:
        return None
    try:
        key = id(obj)
        old = _objs.get(key)
        if old is not None and not old.ended and old() is obj:
            return old
        depth = g.depth
        frames = _user_stack(_getframe(skip + 1), depth)
        if frames is None:
            frames = capture(skip + 1, depth)
            if not frames:
                return None
        c = obj if conn is None else conn
        e = _sids.get(id(c))
        sid = e[1] if e is not None and e[0]() is c else _server_id(c)
        h = _hotpath.make_hold(obj, st, frames, g.pid, sid)
        _objs[key] = h
        _hotpath.enter(st, h)
        if g.observers:
            g.observe("on_checkout", st, h)
        return h
    except Exception:
        g.internal_error(f"{st.library} checkout")
        return None


def checkin(obj: Any) -> None:
    """``obj`` went back to its pool (or was closed): its hold ends."""
    try:
        h = _objs.pop(id(obj), None)
        if h is None:
            return
        held = h()
        if held is not obj:
            if held is not None:  # another live object's entry (ids are reused): keep it
                _objs[id(obj)] = h
            return  # a collected object's: the garbage collector's path reports it
        if h.kind is CHECKOUT and _fast_checkin(h):
            return  # ended (C or Python twin): nothing to report, no observer to tell
        if GUARD.observers and h.kind == CHECKOUT:
            GUARD.observe("on_checkin", h.pool, h, _monotonic() - h.since)
        GUARD.release(h)
    except Exception:
        GUARD.internal_error("adapter checkin")


def dropped(obj: Any) -> None:
    """``obj`` is being finalised with its hold live (the library's ``__del__`` is about to
    give it back): leave the hold to the garbage collector's path (PD102)."""
    try:
        h = _objs.get(id(obj))
        if h is not None and h() is obj:
            del _objs[id(obj)]
    except Exception:
        GUARD.internal_error("adapter finaliser")


# --------------------------------------------------------------------------- waits, timeouts


def begin(pool: Any, stats: Callable[[Any], PoolStats]) -> tuple[PoolStats, float] | None:
    """A checkout of ``pool`` starts: its stats and when it began waiting; None when not
    guarded (the adapter then calls the library alone). Never raises."""
    if not GUARD.active:
        return None
    try:
        st = stats(pool)
        return st, wait_begins(st)
    except Exception:
        GUARD.internal_error("adapter checkout")
        return None


def wait_begins(st: PoolStats) -> float:
    """A checkout may wait: count it as waiting; returns when it began (monotonic, as the
    fast path's)."""
    st.waiting += 1  # one load-add-store: no thread switch inside (as the ledger's sums)
    return _monotonic()


def waited(st: PoolStats, t0: float, timed_out: bool = False, skip: int = 1) -> None:
    """The checkout begun (waiting) at ``t0`` is over: PD109 when it waited past the
    threshold (a timeout is told by PD103 instead)."""
    try:
        seconds = _monotonic() - t0
        st.waiting -= 1  # as in wait_begins: no lock on the path of every checkout
        st.wait_s_total += seconds
        g = GUARD
        if g.observers:
            g.observe("on_wait", st, seconds)
        if seconds < g.options.wait_threshold or not g.active:
            return
        with st.lock:
            st.waits += 1
            st.max_wait_ms = max(st.max_wait_ms, seconds * 1000)
        if timed_out:
            return
        frames = capture(skip + 1, g.depth)
        figures = _figures_text(st)
        g.emit(Finding(
            code="PD109",
            message=(f"checkout waited {seconds * 1000:.0f} ms for pool {st.label!r} "
                     f"({figures}checked_out={st.checked_out}; threshold "
                     f"{g.options.wait_threshold * 1000:.0f} ms)"),
            site=site_of(frames), stack=format_stack(frames), pids=[g.pid],
            details={"pool": st.label, "waited_ms": round(seconds * 1000, 3)}))
    except Exception:
        GUARD.internal_error(f"{st.library} wait")


def _figures_text(st: PoolStats) -> str:
    return "".join(f"{k}={v} " for k, v in st.sizes().items())


def timed_out(st: PoolStats, e: BaseException, timeout: float | None = None,
              skip: int = 1) -> None:
    """The library's own timeout or exhaustion error ``e`` is about to reach the caller: add
    the holders to its message (same exception, same type) and report PD103."""
    g = GUARD
    if not g.active:
        return
    try:
        with st.lock:
            st.timeouts += 1
            others = max(st.waiting - 1, 0)
        if g.observers:
            g.observe("on_timeout", st)
        holds = sorted((h for h in list(st.holds.values()) if not h.ended),
                       key=lambda h: h.id)
        holders = holders_summary(holds)
        sizes = st.sizes()
        head = (f"pool {st.label!r} exhausted: {_figures_text(st)}"
                f"checked_out={len(holds)} waiting={others}")
        add_to_error(e, holders_lines(head, holders, len(holds)))
        frames = capture(skip + 1, g.depth)
        how = (f"checkout timed out after {timeout:.2f} s" if timeout is not None
               else f"checkout failed: {type(e).__name__}")
        g.emit(Finding(
            code="PD103", message=f"{head}; {how}",
            site=site_of(frames), stack=format_stack(frames), pids=[g.pid],
            details={"pool": st.label, **sizes, "checked_out": len(holds),
                     "waiting": others, "timeout_s": timeout, "holders": holders,
                     "error": type(e).__name__}))
    except Exception:
        g.internal_error(f"{st.library} timeout")


def forget_objects() -> None:
    """Forget which object holds what (the guard was removed: no checkin will come through
    the wrappers any more, and a later checkout of the same object must start afresh)."""
    _objs.clear()


# --------------------------------------------------------------------------- for the wrappers
# An adapter's wrapper calls the fast path (:mod:`.fastpath`) and, when it declines, these.


def careful_wait(pool: Any, stats: Callable[[Any], PoolStats]) -> float | None:
    """The fast ``wait_begins`` declined: the wait begins here; None when not guarded."""
    b = begin(pool, stats)
    return None if b is None else b[1]


def careful_checkout(pool: Any, stats: Callable[[Any], PoolStats], obj: Any, conn: Any = None,
                     t0: float | None = None, skip: int = 1) -> None:
    """The fast checkout declined: end the wait begun at ``t0`` (PD109), record the
    checkout of ``obj`` (see :func:`checkout`)."""
    if t0 is None and not GUARD.active:
        return
    try:
        st = stats(pool)
    except Exception:
        GUARD.internal_error("adapter checkout")
        return
    if t0 is not None:
        waited(st, t0, skip=skip + 1)
    checkout(st, obj, conn, skip + 1)


def checkout_failed(pool: Any, stats: Callable[[Any], PoolStats], t0: float | None,
                    e: BaseException, errors: Any = (), timeout: float | None = None,
                    skip: int = 1) -> None:
    """The library's checkout raised ``e``: the wait is over; its own timeout or exhaustion
    error (an instance of ``errors``) gets the holders (PD103)."""
    try:
        if t0 is None and not GUARD.active:
            return
        st = stats(pool)
    except Exception:
        GUARD.internal_error("adapter checkout")
        return
    if t0 is not None:
        waited(st, t0, timed_out=True)
    if isinstance(e, errors):
        timed_out(st, e, timeout, skip + 1)
