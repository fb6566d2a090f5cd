"""The protocol every pool adapter speaks to the guard: checkout, checkin, waited, timed out,
opened, closed.

An adapter wraps one library's pool (or async driver) and calls these verbs; they feed the
ledger and the guard (PD101, PD102, PD105, PD108 through the ledger and the watchdog; PD109 and
PD103 here). A checkout is a hold on the object the library hands out (the hold is a weak
reference to it: it is never kept alive); the object's hold is found again through a side
table keyed by ``id()`` (asyncpg's objects have ``__slots__``). Nothing here raises into the
user's program: every verb counts its own failures.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from ...findings import Finding
from ...guard import GUARD
from ...ledger import CHECKOUT, CONNECTION, Hold, current_task_name
from ...sites import capture, format_stack, site_of
from .. import hotpath as _hotpath
from ..holders import add_to_error, holders_lines, holders_summary
from ..server_ids import server_id

_monotonic = time.monotonic
_get_ident = threading.get_ident
_active: dict[int, threading.Thread] = threading._active  # type: ignore[attr-defined]
_modules = sys.modules
_getframe = sys._getframe
_perf_counter = time.perf_counter
_fast_checkin = _hotpath.checkin  # the SQLAlchemy path's checkin (C when built): same ledger
# the C stack walker when built (None: a frame not judged yet; capture() then judges it)
_user_stack: Callable[[Any, int], Any] = (
    _hotpath._c.user_stack if _hotpath._c is not None else _hotpath.user_stack_py)
_on_collected = GUARD.on_collected  # the guard is one object for the process's life
_next_id = GUARD.ledger.next_id

Figures = Callable[[Any], dict[str, Any]]  # a pool -> the sizes its library exposes


class PoolStats:
    """What the guard knows and counts about one pool of an adapter's library (kept after the
    pool is gone, for the report). Shares its field names with SQLAlchemy's ``PoolInfo``: the
    ledger (``holds``, ``hold_s_total``), the PD102 report (``fate``) and observers read them.
    """

    def __init__(self, pool: Any, library: str, figures: Figures | None, fate: str,
                 name: str | None = None, tag: str | None = None) -> None:
        self.library = library
        self.url: str | None = None
        self.name = name  # given by the user: the metrics' pool name
        self.tag = tag  # the library's own default name: the label's, not the metrics'

        self.pool_class = type(pool).__name__
        self.pool_ref: Callable[[], Any] = _none
        self.figures = figures
        self.fate = fate  # PD102: what the library does with a checkout collected unreturned
        self.lock = threading.Lock()
        self.holds: dict[int, Hold] = {}
        self.checkout_counter = itertools.count(1)
        self.timeouts = 0
        self.waits = 0
        self.waiting = 0
        self.connects = 0
        self.gc_reclaimed = 0
        self.peak_checked_out = 0
        self.max_wait_ms = 0.0
        self.wait_s_total = 0.0
        self.hold_s_total = 0.0
        self.started = _monotonic()

    @property
    def checkouts(self) -> int:
        return int(repr(self.checkout_counter)[6:-1]) - 1  # repr is "count(N)"

    @property
    def checked_out(self) -> int:
        return len(self.holds)

    @property
    def label(self) -> str:
        return f"{self.library}:{self.name or self.tag or f'{self.pool_class}@{id(self):x}'}"

    def pool(self) -> Any:
        return self.pool_ref()

    def sizes(self) -> dict[str, Any]:
        """The figures the library exposes for the pool (empty when it is gone)."""
        pool = self.pool()
        if pool is None or self.figures is None:
            return {}
        try:
            return self.figures(pool)
        except Exception:
            GUARD.internal_error(f"{self.library} figures")
            return {}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"url": self.url, "pool_class": self.pool_class,
                             "library": self.library, "name": self.label}
        d.update(self.sizes())
        d.update(checkouts=self.checkouts, timeouts=self.timeouts, waits=self.waits,
                 connects=self.connects, gc_reclaimed=self.gc_reclaimed,
                 checked_out=self.checked_out, peak_checked_out=self.peak_checked_out,
                 max_wait_ms=round(self.max_wait_ms, 3),
                 hold_ms_total=round(self.hold_s_total * 1000, 3),
                 observed_s=round(_monotonic() - self.started, 3))
        return d


_lock = threading.Lock()
_pools: dict[int, PoolStats] = {}  # id(pool) -> its stats, while the pool lives
_all: list[PoolStats] = []  # every pool seen, for the report
_objs: dict[int, Hold] = {}  # id(object held) -> its hold (checkouts and raw connections)
_closed_checks: dict[str, Callable[[Any], bool]] = {}  # raw label -> "closed by the server?"
# id(driver connection) -> (weak reference to it, its server id): read inline at checkout
_sids: dict[int, tuple[Callable[[], Any], int | None]] = {}
STATS = "_pd_stats"  # a pool's stats, in the pool's __dict__ when it has one


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


def _none() -> None:
    return None


def url_of(scheme: str, host: Any, port: Any, database: Any) -> str | None:
    """A URL naming a pool's server and database (no user, no password: it is shown in
    reports and is the metrics' default pool name ``server.address:server.port/db.namespace``)."""
    if host is not None and not isinstance(host, str):
        return None
    h = host or "localhost"
    if ":" in h and not h.startswith("["):
        h = f"[{h}]"  # IPv6
    if h.startswith("/"):  # a Unix socket directory
        h = "localhost"
    p = f":{int(port)}" if isinstance(port, (int, str)) and str(port).isdigit() else ""
    return f"{scheme}://{h}{p}/{database or ''}"


def stats_of(pool: Any, library: str, figures: Figures | None = None, fate: str = "",
             name: str | None = None, anchor: Any = None,
             resolve: Callable[[Any], Any] | None = None,
             address: Callable[[Any], str | None] | None = None,
             tag: str | None = None) -> PoolStats:
    """The stats of ``pool`` (created at its first sight). A pool that takes no weak
    reference (asyncpg's) names an ``anchor`` that lives as long as it does, and how to
    ``resolve`` the pool from the anchor. ``address``: the pool's :func:`url_of`, asked once."""
    d = getattr(pool, "__dict__", None)
    st = d.get(STATS) if d is not None else _pools.get(id(pool))
    if st is not None and st.pool_ref() is pool:
        return st
    with _lock:
        st = _pools.get(id(pool))
        if st is not None and st.pool_ref() is pool:
            return st
        st = PoolStats(pool, library, figures, fate, name, tag)
        if address is not None:
            try:
                st.url = address(pool)
            except Exception:
                GUARD.internal_error(f"{library} address")
        key = id(pool)
        ref = weakref.ref(pool if anchor is None else anchor,
                          lambda _: _pools.pop(key, None))
        if resolve is None:
            st.pool_ref = ref
        else:
            get = resolve

            def pool_ref() -> Any:
                a = ref()
                return None if a is None else get(a)

            st.pool_ref = pool_ref
        _pools[key] = st
        if d is not None:
            d[STATS] = st  # found again with one lookup (asyncpg's pools have no __dict__)
        _all.append(st)
        GUARD.ledger.add_table(st)
    return st


def pool_infos() -> list[dict[str, Any]]:
    """The figures of every adapter pool seen, for the report's ``pools``."""
    with _lock:
        stats = list(_all)
    return [s.to_dict() for s in stats]


def stats_for_pool(pool: Any) -> PoolStats | None:
    """The stats of a pool of an adapter's library (None: never seen by the guard)."""
    st = _pools.get(id(pool))
    return st if st is not None and st.pool_ref() is pool else None


def all_stats() -> list[PoolStats]:
    with _lock:
        return list(_all)


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
        h = Hold(obj, _on_collected)
        h.id = hid = _next_id()
        h.pool = st  # kind: CHECKOUT, the class default (no per-hold __dict__)
        h.frames = frames
        h.since = _monotonic()
        h.thread_id = ident = _get_ident()
        h.thread = _active.get(ident)  # names and PD110 stay right when the id is reused
        h.pid = g.pid
        c = obj if conn is None else conn
        e = _sids.get(id(c))
        h.server_id = e[1] if e is not None and e[0]() is c else _server_id(c)
        h.reported = h.txn_begun = h.txn_reported = False
        h.txn_since = h.txn_frames = None
        aio = _modules.get("asyncio")
        if aio is not None and aio._get_running_loop() is not None:
            h.task = current_task_name()
        _objs[key] = h
        holds = st.holds
        holds[hid] = h
        next(st.checkout_counter)
        n = len(holds)
        if n > st.peak_checked_out:
            st.peak_checked_out = n
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
    """A checkout may wait: count it as waiting; returns when it began."""
    st.waiting += 1  # one load-add-store: no thread switch inside (as the ledger's sums)
    return _perf_counter()


def waited(st: PoolStats, t0: float, timed_out: bool = False, skip: int = 1) -> None:
    """The checkout begun (waiting) at ``t0`` is over: PD109 when it waited past the
    threshold (a timeout is told by PD103 instead)."""
    try:
        seconds = _perf_counter() - t0
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


# --------------------------------------------------------------------------- raw connections


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
        _objs[id(conn)] = h
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
    _objs.clear()


def sweep() -> None:
    """Watchdog tick hook: forget the side table's dead entries; end the holds of raw
    connections that the library reports closed without our seeing ``close()``."""
    for key, h in list(_objs.items()):
        obj = h()
        if obj is None or h.ended:
            if _objs.get(key) is h:
                _objs.pop(key, None)
            continue
        label = h.pool if h.kind == CONNECTION else getattr(h.pool, "library", None)
        check = _closed_checks.get(label) if isinstance(label, str) else None
        try:
            if check is not None and check(obj):
                checkin(obj)
        except Exception:
            GUARD.internal_error("adapter sweep")
