"""The runtime guard's wiring into SQLAlchemy: pools, engines, transactions.

- Checkouts and checkins: a subclass of the pool's class, swapped in as ``pool.__class__``
  (it survives ``dispose()``, which rebuilds the pool with ``self.__class__``), overrides
  ``connect()`` and ``_return_conn()``. No pool event: SQLAlchemy keeps its checkout fast
  path. The hold is stashed on the connection record from checkout to checkin.
- Garbage-collected proxies: the hold is a weak reference to the proxy (see ledger.py).
- The checkout's and checkin's common case, and the transaction hooks: runtime/hotpath.py
  (in C when ``pooldoctor._speedups`` is built).
- Timeouts: ``connect()`` adds the holders to the message (PD103). Waits: the pool queue's
  ``not_empty`` condition is replaced by a timed one (same lock); an asyncio queue's class is
  swapped for one with a timed ``get()``.
- ``detach()`` and new connections: the pool's ``detach`` and ``connect`` events.
- Engines: ``Engine.__init__`` is wrapped while the guard is global; ``instrument(engine)``
  adopts one engine.
- Transactions: the dialect's ``do_begin``/``do_commit``/``do_rollback``, wrapped on the
  dialect instance (no engine event: see below).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import itertools
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool, QueuePool, StaticPool
from sqlalchemy.pool.base import _ConnectionFairy

from ..findings import Finding
from ..guard import GUARD, fmt_s
from ..ledger import Hold
from ..sites import capture, format_stack, site_of
from ..urls import mask_url
from . import sqltags
from .hotpath import TxnHook, new_hold
from .hotpath import checkin as _fast_checkin
from .hotpath import checkout as _fast_checkout
from .server_ids import server_id

_monotonic = time.monotonic
_get_ident = threading.get_ident


class PoolInfo:
    """What the guard knows and counts about one pool (kept across ``dispose()``).

    ``holds`` is the pool's table of live checkouts (hold id -> hold), part of the ledger.
    The counters are statistics for the metrics and the advisor; the hot path updates them
    without a lock, each with one atomic step (a dict store or pop, ``next()`` on a counter)
    or one load-add-store with no call inside, which the GIL does not split.
    """

    def __init__(self, pool: Pool, url: str | None, name: str | None = None) -> None:
        self.url = url
        self.name = name
        self.pool_class = type(pool).__name__
        self.pool_ref = weakref.ref(pool)
        self.lock = threading.Lock()
        self.holds: dict[int, Hold] = {}
        self.checkout_counter = itertools.count(1)  # next() on it: one atomic step
        self.timeouts = 0
        self.waits = 0
        self.waiting = 0
        self.waited: dict[int, float] = {}  # thread id -> seconds waited in its checkout
        self.connects = 0
        self.gc_reclaimed = 0
        self.peak_checked_out = 0
        self.max_wait_ms = 0.0
        self.wait_s_total = 0.0  # sum of the time blocking checkouts waited
        self.hold_s_total = 0.0  # sum of completed hold times (advise: Little's law)
        self.started = time.monotonic()

    @property
    def checkouts(self) -> int:
        """Checkouts seen since the guard adopted the pool."""
        return int(repr(self.checkout_counter)[6:-1]) - 1  # repr is "count(N)", N the next

    @property
    def checked_out(self) -> int:
        """Connections checked out right now (the live holds of this pool)."""
        return len(self.holds)

    @property
    def label(self) -> str:
        return self.name or self.url or f"{self.pool_class}@{id(self):x}"

    def pool(self) -> Pool | None:
        return self.pool_ref()

    def to_dict(self) -> dict[str, Any]:
        pool = self.pool()
        d: dict[str, Any] = {"url": self.url, "pool_class": self.pool_class}
        if self.name:
            d["name"] = self.name
        if isinstance(pool, QueuePool):
            d["size"] = pool.size()
            d["max_overflow"] = pool._max_overflow
            d["timeout"] = pool.timeout()
        if pool is not None:
            d.update(recycle=pool._recycle, pre_ping=pool._pre_ping)
        d.update(checkouts=self.checkouts, timeouts=self.timeouts, waits=self.waits,
                 connects=self.connects, gc_reclaimed=self.gc_reclaimed,
                 checked_out=self.checked_out, peak_checked_out=self.peak_checked_out,
                 max_wait_ms=round(self.max_wait_ms, 3),
                 hold_ms_total=round(self.hold_s_total * 1000, 3),
                 observed_s=round(time.monotonic() - self.started, 3))
        return d


_lock = threading.RLock()
_infos: weakref.WeakValueDictionary[int, PoolInfo] = weakref.WeakValueDictionary()
_all_infos: list[PoolInfo] = []  # kept for the report after pools are gone
_engines: dict[str, weakref.WeakSet[Engine]] = {}
_engine_sites: weakref.WeakKeyDictionary[Engine, Any] = weakref.WeakKeyDictionary()
_engine_listeners: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()
_global = False
_orig_engine_init: Callable[..., None] | None = None
_swapped: dict[type, type] = {}

# --------------------------------------------------------------------------- pools


def adopt_pool(pool: Pool, url: str | None = None, name: str | None = None) -> PoolInfo | None:
    """Start guarding ``pool``; idempotent. StaticPool is not tracked (one shared connection)."""
    info = cast("PoolInfo | None", pool.__dict__.get("_pooldoctor"))
    if info is not None:
        if url and not info.url:
            info.url = url
        if name:
            info.name = name
        return info
    if isinstance(pool, StaticPool) or not isinstance(pool, Pool):
        return None  # StaticPool: one shared connection; not a Pool: e.g. a test's mock
    with _lock:
        existing: PoolInfo | None = pool.__dict__.get("_pooldoctor")
        if existing is not None:
            return existing
        info = PoolInfo(pool, url, name)
        pool.__dict__["_pooldoctor"] = info
        _all_infos.append(info)
        GUARD.ledger.add_table(info)
        _swap_class(pool)
        if isinstance(pool, QueuePool):
            _guard_queue(pool, info)
    return info


def _swap_class(pool: Pool) -> None:
    cls = type(pool)
    if getattr(cls, "_pd_original", None) is not None:
        return
    sub = _swapped.get(cls)
    if sub is None:
        ns: dict[str, Any] = {"_pd_original": cls, "__module__": cls.__module__,
                              "recreate": _recreate, "__qualname__": cls.__qualname__,
                              "_pooldoctor": None}  # the instance's PoolInfo shadows it
        # Pool.connect() is one call to _ConnectionFairy._checkout(): made directly, as
        # _return_conn() calls _do_return_conn(), our methods add no call to the cycle
        ns["connect"] = _make_connect(
            _ConnectionFairy._checkout if cls.connect is Pool.connect else cls.connect)
        ns["_return_conn"] = _make_return_conn(cls._return_conn)
        sub = type(cls.__name__, (cls,), ns)
        _swapped[cls] = sub
    pool.__class__ = sub


def _restore_class(pool: Pool) -> None:
    orig = getattr(type(pool), "_pd_original", None)
    if orig is not None:
        pool.__class__ = orig
    q: Any = getattr(pool, "_pool", None)  # None for pools without a queue
    qorig = getattr(type(q), "_pd_original", None)
    if qorig is not None:  # an asyncio queue
        q.__class__ = qorig
        q.__dict__.pop("_pd_info", None)
    cond = getattr(q, "not_empty", None)
    if type(cond) is _TimedCondition:
        cond.pd_info = None  # stays while a thread waits on it, as a plain condition
        with q.mutex:
            if not cond._waiters:  # type: ignore[attr-defined]
                q.not_empty = threading.Condition(q.mutex)


def _recreate(self: Any) -> Pool:
    new: Pool = self._pd_original.recreate(self)
    info = self.__dict__.get("_pooldoctor")
    if info is not None:
        new.__dict__["_pooldoctor"] = info
        info.pool_ref = weakref.ref(new)
        if isinstance(new, QueuePool):
            _guard_queue(new, info)
    return new


def _make_queue_get(orig: Callable[..., Any], sync: bool) -> Callable[..., Any]:
    def get(self: Any, block: bool = True, timeout: float | None = None) -> Any:
        """The pool queue's get(): timed only when it may block (nothing idle)."""
        if not block or (self.queue if sync else not self._queue.empty()):
            return orig(self, block, timeout)
        return _timed_get(orig, self, block, timeout)

    return get


def _timed_get(orig: Callable[..., Any], q: Any, block: bool, timeout: float | None) -> Any:
    info: PoolInfo | None = q.__dict__.get("_pd_info")
    if info is None or not GUARD.active:
        return orig(q, block, timeout)
    t0 = _wait_begins(info)
    timed_out = True
    try:
        item = orig(q, block, timeout)
        timed_out = False
        return item
    finally:
        _after_wait(info, _wait_ends(info, t0), timed_out)


def _wait_begins(info: PoolInfo) -> float:
    """A checkout starts waiting for a connection: count it; returns when it started."""
    t0 = time.perf_counter()
    with info.lock:
        info.waiting += 1
    return t0


def _wait_ends(info: PoolInfo, t0: float, tid: int | None = None) -> float:
    """The wait begun at ``t0`` is over: count it; returns the seconds waited. With ``tid``
    the time is also kept for that thread's checkout to report (see :func:`_report_wait`)."""
    waited = time.perf_counter() - t0
    with info.lock:
        info.waiting -= 1
        info.wait_s_total += waited
        if tid is not None:
            info.waited[tid] = info.waited.get(tid, 0.0) + waited
    return waited


class _TimedCondition(threading.Condition):
    """The pool queue's ``not_empty`` condition, replaced (same lock) while no thread waits on
    it: its ``wait()`` is where a checkout blocks on an empty pool, so a checkout that does not
    block costs nothing. (Neither its class nor the queue's is changed: on CPython 3.11+ that
    would turn their attribute storage into dicts and slow every checkout down.)"""

    def __init__(self, lock: Any, info: PoolInfo | None) -> None:
        super().__init__(lock)
        self.pd_info = info

    def wait(self, timeout: float | None = None) -> bool:
        info = self.pd_info
        if info is None or not GUARD.active:
            return threading.Condition.wait(self, timeout)
        t0 = _wait_begins(info)
        try:
            return threading.Condition.wait(self, timeout)
        finally:  # reported by connect(), once the queue's lock is let go
            _wait_ends(info, t0, _get_ident())


def _report_wait(info: PoolInfo, timed_out: bool | None) -> None:
    """After a checkout: report the time this thread waited in it (see _TimedCondition);
    ``timed_out=None`` drops it (a wait that was not a checkout's)."""
    try:
        with info.lock:
            waited = info.waited.pop(_get_ident(), None)
    except Exception:
        GUARD.internal_error("pool wait")
        return
    if waited is not None and timed_out is not None:
        _after_wait(info, waited, timed_out)


_swapped_queues: dict[type, type] = {}


def _guard_queue(pool: Any, info: PoolInfo) -> None:
    """Time the blocking gets of a QueuePool's queue: the sync queue's ``not_empty``
    condition gets a timed ``wait()``; the asyncio queue's class a timed ``get()``."""
    q = getattr(pool, "_pool", None)
    if q is None:
        return
    cond = getattr(q, "not_empty", None)
    if type(cond) is _TimedCondition:
        cond.pd_info = info
        return
    mutex = getattr(q, "mutex", None)
    if type(cond) is threading.Condition and mutex is not None:
        with mutex:  # the queue's get() and put() take it: no thread is inside them now
            if not cond._waiters:  # type: ignore[attr-defined]
                q.not_empty = _TimedCondition(mutex, info)
        return
    q.__dict__["_pd_info"] = info
    cls = type(q)
    if getattr(cls, "_pd_original", None) is not None:
        return
    sub = _swapped_queues.get(cls)
    if sub is None:
        get = _make_queue_get(cls.get, sync=hasattr(q, "queue"))
        sub = type(cls.__name__, (cls,), {"_pd_original": cls, "get": get,
                                          "__module__": cls.__module__})
        _swapped_queues[cls] = sub
    q.__class__ = sub


def _after_wait(info: PoolInfo, waited: float, timed_out: bool = False) -> None:
    try:
        if GUARD.observers:
            GUARD.observe("on_wait", info, waited)
        if waited >= GUARD.options.wait_threshold:
            pool = info.pool()
            if pool is not None:
                # a wait that ended in a timeout is counted, but PD103 tells that story
                _on_wait(pool, info, waited, emit=not timed_out)
    except Exception:
        GUARD.internal_error("pool wait")


def _holds_of(info: PoolInfo) -> list[Hold]:
    return [h for h in GUARD.ledger.holds() if h.pool is info and not h.ended]


def holders_summary(holds: list[Hold], limit: int = 10) -> list[dict[str, Any]]:
    """Group holds by site: count, oldest age, threads — oldest group first."""
    now = time.monotonic()
    groups: dict[Any, list[Hold]] = {}
    for h in holds:
        groups.setdefault(h.key, []).append(h)
    out: list[dict[str, Any]] = []
    for hs in sorted(groups.values(), key=lambda g: min(h.since for h in g)):
        site = site_of(hs[0].frames)
        oldest = max(now - h.since for h in hs)
        threads = sorted({h.task or h.thread_name for h in hs})
        where = site.short() if site else "an unknown site"
        more = f" (+{len(threads) - 5} more)" if len(threads) > 5 else ""
        shown = ", ".join(threads[:5]) + more
        out.append({
            "site": site.to_dict() if site else None,
            "count": len(hs),
            "oldest_s": round(oldest, 3),
            "threads": threads[:20],
            "text": f"{len(hs)} x {where} (oldest {fmt_s(oldest)}; {shown})",
        })
    return out[:limit]


def _on_timeout(pool: Any, info: PoolInfo, e: Exception) -> None:
    try:
        with info.lock:
            info.timeouts += 1
            others_waiting = max(info.waiting - 1, 0)
        if GUARD.observers:
            GUARD.observe("on_timeout", info)
        holds = _holds_of(info)
        holders = holders_summary(holds)
        head = (f"pool {info.label!r} exhausted: size={pool.size()} "
                f"overflow={pool._max_overflow} checked_out={pool.checkedout()} "
                f"waiting={others_waiting}")
        lines = [head + (" ; held by:" if holders else "")]
        lines += [f"  {g['text']}" for g in holders]
        if len(holds) and not holders:
            lines.append("  (holders unknown)")
        original = e.args[0] if e.args else str(e)
        if isinstance(original, str) and "exhausted:" not in original:
            e.args = (original + "\n" + "\n".join(lines), *e.args[1:])
        frames = capture(1, GUARD.options.stack_depth)
        GUARD.emit(Finding(
            code="PD103",
            message=f"{head}; checkout timed out after {pool.timeout():.2f} s",
            site=site_of(frames), stack=format_stack(frames), pids=[GUARD.pid],
            details={"pool": info.label, "size": pool.size(), "max_overflow": pool._max_overflow,
                     "checked_out": pool.checkedout(), "waiting": others_waiting,
                     "timeout_s": pool.timeout(), "holders": holders}))
    except Exception:
        GUARD.internal_error("pool timeout")


def _on_wait(pool: Any, info: PoolInfo, waited: float, emit: bool = True) -> None:
    try:
        with info.lock:
            info.waits += 1
            info.max_wait_ms = max(info.max_wait_ms, waited * 1000)
        if not emit:
            return
        frames = capture(1, GUARD.options.stack_depth)
        GUARD.emit(Finding(
            code="PD109",
            message=(f"checkout waited {waited * 1000:.0f} ms for pool {info.label!r} "
                     f"(size={pool.size()} overflow={pool._max_overflow} "
                     f"checked_out={pool.checkedout()}; threshold "
                     f"{GUARD.options.wait_threshold * 1000:.0f} ms)"),
            site=site_of(frames), stack=format_stack(frames), pids=[GUARD.pid],
            details={"pool": info.label, "waited_ms": round(waited * 1000, 3)}))
    except Exception:
        GUARD.internal_error("pool wait")


# --------------------------------------------------------------------------- pool events


def _on_connect(dbapi_connection: Any, record: Any) -> None:
    try:
        d = record.__dict__
        d["_pd_pid"] = os.getpid()
        d["_pd_server_id"] = server_id(record.driver_connection or dbapi_connection)
        info = _pool_of_record(record)
        if info is not None:
            with info.lock:
                info.connects += 1
            if GUARD.observers:
                GUARD.observe("on_connect", info)
    except Exception:
        GUARD.internal_error("pool connect")


def _pool_of_record(record: Any) -> PoolInfo | None:
    pool = getattr(record, "_ConnectionRecord__pool", None)
    if pool is None:
        return None
    info: PoolInfo | None = pool.__dict__.get("_pooldoctor")
    return info if info is not None else adopt_pool(pool)


def _on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """The checkout event, used only with fork_safety='repair': raising DisconnectionError
    from a checkout listener is SQLAlchemy's way to replace a connection."""
    try:
        _track(proxy._pool, record, proxy, dbapi_connection)
    except exc.DisconnectionError:
        raise
    except Exception:
        GUARD.internal_error("pool checkout")


def _make_connect(orig: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def connect(self: Any) -> Any:
        """Pool.connect(), recording the checkout (no event: SQLAlchemy keeps its fast path).

        The common case (a connection this process made, from a user frame) is
        :func:`hotpath.checkout`, in C when it is built; anything unusual goes to :func:`_track`.
        """
        info: PoolInfo | None = self._pooldoctor
        if info is not None and info.waited:  # a wait of this thread outside a checkout
            _report_wait(info, None)  # (the queue used directly) is not this checkout's
        try:
            fairy = orig(self)
        except exc.TimeoutError as e:  # the pool is exhausted: add the holders (PD103)
            if info is not None and GUARD.active:
                _report_wait(info, timed_out=True)
                _on_timeout(self, info, e)
            raise
        if info is not None and info.waited:  # some checkout waited: was it this one?
            _report_wait(info, timed_out=False)
        if fairy._counter != 1 or not GUARD.active or _via_events:
            return fairy
        try:
            rec = fairy._connection_record
            h = _fast_checkout(info, rec.__dict__, fairy)  # stack: from our caller
            if h is None:
                _track(self, rec, fairy, fairy.dbapi_connection)
            elif GUARD.observers:
                GUARD.observe("on_checkout", info, h)
        except Exception:
            GUARD.internal_error("pool checkout")
        return fairy

    return connect


def _make_return_conn(orig: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    base = orig is Pool._return_conn  # then call _do_return_conn as it would (one call less)

    def _return_conn(self: Any, record: Any) -> None:
        """The pool taking a connection back: every checkin, SQLAlchemy's GC path too
        (``detach()`` skips this method: the detach event ends those holds)."""
        h: Hold | None = record.__dict__.pop("_pd_hold", None)
        if h is not None:
            try:
                if not _fast_checkin(h):
                    _checkin(h)  # the careful way
            except Exception:
                _checkin_failed(h)
        if base:
            self._do_return_conn(record)
        else:
            orig(self, record)

    return _return_conn


def _track(pool: Any, record: Any, proxy: Any, dbapi_connection: Any) -> None:
    """Record a checkout, the careful way: adopt the pool, check for fork(), fill in a
    connection made before the guard started, end a hold left over from a retried checkout."""
    g = GUARD
    if not g.active:
        return
    info: PoolInfo | None = pool.__dict__.get("_pooldoctor")
    if info is None:
        info = adopt_pool(pool)
        if info is None:
            return
    d = record.__dict__
    rpid = d.get("_pd_pid")
    if rpid is not None and rpid != g.pid and _on_forked(record, proxy, info, rpid):
        raise exc.DisconnectionError(
            f"pooldoctor: connection created in process {rpid} is not usable in "
            f"process {g.pid} after fork(); reconnecting")
    if rpid is None:
        d["_pd_pid"] = g.pid
        d["_pd_server_id"] = server_id(record.driver_connection or dbapi_connection)
    old: Hold | None = d.pop("_pd_hold", None)
    if old is not None:  # checked out again, no checkin seen: SQLAlchemy retried the
        _checkin(old)  # checkout after a listener raised DisconnectionError
    h = new_hold(g, info, d, proxy, capture(1, g.depth))
    if g.observers:
        g.observe("on_checkout", info, h)


def _checkin(h: Hold) -> None:
    """End the hold of a connection given back to its pool (never raises)."""
    try:
        if GUARD.observers:
            GUARD.observe("on_checkin", h.pool, h, time.monotonic() - h.since)
        if h() is None:  # the proxy is gone: SQLAlchemy's garbage-collection path
            GUARD.on_collected(h)
            return
        GUARD.release(h)
    except Exception:
        _checkin_failed(h)


def _checkin_failed(h: Hold) -> None:
    GUARD.internal_error("pool checkin")
    if not h.ended:  # never leave a returned connection in the ledger:
        h.ended = True  # it would be reported as leaked later
        with contextlib.suppress(Exception):
            GUARD.ledger.remove(h)


def _on_checkin(dbapi_connection: Any, record: Any) -> None:
    h: Hold | None = record.__dict__.pop("_pd_hold", None)
    if h is not None:
        _checkin(h)


def _on_detach(dbapi_connection: Any, record: Any) -> None:
    """``detach()`` gives the slot back to the pool with no checkin event: the hold ends.

    SQLAlchemy also detaches a garbage-collected asyncio connection (then the proxy is gone
    and :func:`_on_checkin` reports it as collected).
    """
    _on_checkin(dbapi_connection, record)


def _where(frames: Any) -> str:
    site = site_of(frames)
    return site.short() if site else "an unknown site"


def _on_forked(record: Any, proxy: Any, info: PoolInfo, rpid: int) -> bool:
    """PD106; returns True when the connection should be replaced (fork_safety='repair')."""
    g = GUARD
    frames = capture(2, g.options.stack_depth)
    repair = g.options.fork_safety == "repair"
    g.emit(Finding(
        code="PD106",
        message=(f"connection created in process {rpid} checked out in process {g.pid} after "
                 f"fork() at {_where(frames)}"
                 + ("; replaced with a new connection" if repair else "")),
        site=site_of(frames), stack=format_stack(frames), pids=[g.pid],
        details={"pool": info.label, "created_pid": rpid, "repaired": repair}))
    if repair:
        record.dbapi_connection = None
        proxy.dbapi_connection = None
        record.__dict__.pop("_pd_pid", None)
    else:
        record.__dict__["_pd_pid"] = g.pid  # report once per connection
    return repair


# --------------------------------------------------------------------------- transactions


# Transactions are seen through the engine's dialect: do_begin/do_commit/do_rollback are
# replaced on the dialect instance (and connect(), to name new connections for the server).
# The engine's begin/commit/rollback events would do, but any engine event sets
# Engine._has_events, and SQLAlchemy then dispatches its (empty) execution events at every
# statement: several microseconds a statement.


def _hold_of_fairy(fairy: Any) -> Hold | None:
    """The hold of the connection proxy a dialect method was given (None: not a pool's)."""
    try:
        h: Hold | None = fairy._connection_record.__dict__.get("_pd_hold")
    except AttributeError:  # a raw DB-API connection, or a detached proxy (no record)
        return None
    return h


def _make_begin(orig: Callable[[Any], None]) -> Callable[[Any], None]:
    if TxnHook is not None:
        return TxnHook(orig, True)

    def do_begin(dbapi_connection: Any) -> None:
        """The first transaction of a checkout is told by the checkout's stack (an ORM
        Session checks out where it begins; Core code begins next to where it checked out);
        a later one on the same checkout captures its own. A capture here would cost more
        than the checkout's (it climbs through SQLAlchemy's execution frames)."""
        orig(dbapi_connection)
        try:
            h = _hold_of_fairy(dbapi_connection)
            if h is not None:
                h.txn_since = _monotonic()
                h.txn_reported = False
                if h.txn_begun:
                    h.txn_frames = capture(1, GUARD.options.stack_depth)
                else:
                    h.txn_begun = True
        except Exception:
            GUARD.internal_error("transaction begin")

    return do_begin


def _make_end(orig: Callable[[Any], None]) -> Callable[[Any], None]:
    if TxnHook is not None:
        return TxnHook(orig, False)

    def do_end(dbapi_connection: Any) -> None:
        """A commit or rollback (every checkin's reset too): the transaction is over."""
        try:
            orig(dbapi_connection)
        finally:
            _txn_ended(_hold_of_fairy(dbapi_connection))

    return do_end


def _txn_ended(h: Hold | None) -> None:
    try:
        if h is not None and h.txn_since is not None:
            h.txn_since = None
            h.txn_frames = None
    except Exception:
        GUARD.internal_error("transaction end")


def _on_invalidate(dbapi_connection: Any, record: Any, exception: Any) -> None:
    """An invalidated connection's transaction is gone (no rollback will be seen)."""
    _txn_ended(record.__dict__.get("_pd_hold"))


def _make_dialect_connect(orig: Callable[..., Any]) -> Callable[..., Any]:
    def connect(*cargs: Any, **cparams: Any) -> Any:
        """The dialect opening a connection: name it for the server (application_name...)."""
        if GUARD.active:
            try:
                from .tags import tag_connect_params

                tag_connect_params(getattr(getattr(orig, "__self__", None), "driver", ""),
                                   cparams)
            except Exception:
                GUARD.internal_error("dialect connect")
        return orig(*cargs, **cparams)

    return connect


# Not the do_connect event: any dialect event sets Dialect._has_events, and SQLAlchemy then
# dispatches the dialect's (empty) execution events at every statement.
_TXN_METHODS = (("do_begin", _make_begin), ("do_commit", _make_end),
                ("do_rollback", _make_end), ("connect", _make_dialect_connect))
_dialects: weakref.WeakSet[Any] = weakref.WeakSet()


def _wrap_dialect(dialect: Any) -> None:
    if sqltags.enabled:  # statement tags (runtime/sqltags.py), only when asked for
        sqltags.wrap_dialect(dialect)
    d = dialect.__dict__
    if "_pd_saved" in d:
        return
    # what the instance had of its own (usually nothing: the methods are the class's)
    d["_pd_saved"] = {name: d[name] for name, _ in _TXN_METHODS if name in d}
    for name, make in _TXN_METHODS:
        d[name] = make(getattr(dialect, name))
    _dialects.add(dialect)


def _unwrap_dialects() -> None:
    for dialect in list(_dialects):
        d = dialect.__dict__
        saved = d.pop("_pd_saved", None)
        if saved is not None:
            for name, _ in _TXN_METHODS:
                d.pop(name, None)
            d.update(saved)
    _dialects.clear()


_EVENTS = tuple[tuple[str, Callable[..., None]], ...]
_POOL_EVENTS: _EVENTS = (("connect", _on_connect), ("detach", _on_detach),
                         ("invalidate", _on_invalidate))
# Checkouts and checkins are seen by the swapped pool class (connect/_return_conn), which
# keeps SQLAlchemy's checkout fast path; the events serve fork_safety='repair' only.
_REPAIR_EVENTS: _EVENTS = (("checkout", _on_checkout), ("checkin", _on_checkin))
_via_events = False


def _pool_events() -> _EVENTS:
    return _POOL_EVENTS + _REPAIR_EVENTS if _via_events else _POOL_EVENTS


def set_repair_mode(repair: bool) -> None:
    """Switch checkout tracking between the pool class (default) and the pool events."""
    global _via_events
    with _lock:
        if repair == _via_events:
            return
        targets: list[Any] = list(_engine_listeners.keys())
        if _global:
            targets.append(Pool)
        for target in targets:
            for name, fn in _REPAIR_EVENTS:
                if repair and not event.contains(target, name, fn):
                    event.listen(target, name, fn)
                elif not repair and event.contains(target, name, fn):
                    event.remove(target, name, fn)
        _via_events = repair

# --------------------------------------------------------------------------- engines


def _engine_key(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _on_engine_created(engine: Engine, frames: Any = None) -> None:
    try:
        key = _engine_key(engine)
        adopt_pool(engine.pool, mask_url(engine.url))
        _wrap_dialect(engine.dialect)
        with _lock:
            live = _engines.setdefault(key, weakref.WeakSet())
            live.add(engine)
            if frames is not None:
                _engine_sites[engine] = frames
            n = len(live)
        if frames is not None and n >= GUARD.options.engine_threshold:
            _report_proliferation(engine, key, list(live), frames)
    except Exception:
        GUARD.internal_error("engine created")


def _report_proliferation(engine: Engine, key: str, live: list[Engine], frames: Any) -> None:
    held = 0
    for e in live:
        p = e.pool
        if isinstance(p, QueuePool):
            held += p.checkedout() + p.checkedin()
        else:
            info = p.__dict__.get("_pooldoctor")
            held += info.checked_out if info else 0
    site = site_of(frames)
    GUARD.emit(Finding(
        code="PD104",
        message=(f"{len(live)} engines for {mask_url(key)} in this process, the latest created "
                 f"at {site.short() if site else 'an unknown site'}; together they hold {held} "
                 f"connections (threshold {GUARD.options.engine_threshold})"),
        site=site, stack=format_stack(frames), pids=[GUARD.pid],
        details={"url": mask_url(key), "engines": len(live), "connections": held,
                 "threshold": GUARD.options.engine_threshold}))


def _after_engine_init(self: Engine) -> None:
    if GUARD.active and _global:
        try:
            frames = capture(1, GUARD.options.stack_depth)
        except Exception:
            frames = None
        _on_engine_created(self, frames)


class _Name:
    """A default value that prints as a name (to write a signature as source)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_CALL_FORMS: dict[Any, str] = {inspect.Parameter.VAR_POSITIONAL: "*{0}",
                               inspect.Parameter.VAR_KEYWORD: "**{0}",
                               inspect.Parameter.KEYWORD_ONLY: "{0}={0}"}


def _same_signature(orig: Callable[..., None], after: Callable[[Any], None]) -> Any:
    """``orig`` then ``after(self)``, as a function with ``orig``'s exact parameters.

    ``create_engine()`` reads ``Engine.__init__``'s parameter names from its code object
    (``util.get_cls_kwargs``) to sort its keyword arguments; a ``*args, **kwargs`` wrapper
    makes it reject ``echo=``, ``execution_options=``... with a TypeError.
    """
    sig = inspect.signature(orig)
    ns: dict[str, Any] = {"_orig": orig, "_after": after}
    params, args = [], []
    for i, p in enumerate(sig.parameters.values()):
        if p.default is not p.empty:
            ns[f"_d{i}"] = p.default
            p = p.replace(default=_Name(f"_d{i}"))
        params.append(p.replace(annotation=p.empty))
        args.append(_CALL_FORMS.get(p.kind, "{0}").format(p.name))
    src = (f"def __init__{sig.replace(parameters=params, return_annotation=sig.empty)}:\n"
           f"    _orig({', '.join(args)})\n"
           f"    _after({args[0]})\n")
    exec(compile(src, "<pooldoctor generated __init__>", "exec"), ns)
    fn = ns["__init__"]
    functools.update_wrapper(fn, orig)
    return fn


# --------------------------------------------------------------------------- install


def install_global() -> None:
    """Guard every pool and engine of the process, existing and future."""
    global _global, _orig_engine_init
    with _lock:
        if _global:
            return
        for engine in list(_engine_listeners.keys()):
            _remove_engine_listeners(engine)
        for name, fn in _pool_events():
            event.listen(Pool, name, fn)
        if _orig_engine_init is None:
            _orig_engine_init = Engine.__init__
            Engine.__init__ = _same_signature(  # type: ignore[method-assign]
                _orig_engine_init, _after_engine_init)
        _global = True
    for obj in gc.get_objects():
        try:
            if isinstance(obj, Engine) and type(obj).__name__ != "OptionEngine":
                _on_engine_created(obj, None)
        except Exception:
            continue


def install_engine(engine: Any, name: str | None = None) -> None:
    """Guard one engine (an ``AsyncEngine`` is guarded through its ``sync_engine``)."""
    engine = getattr(engine, "sync_engine", engine)
    if not isinstance(engine, Engine):
        raise TypeError(f"instrument() takes an Engine or AsyncEngine, not {type(engine).__name__}")
    with _lock:
        info = adopt_pool(engine.pool, mask_url(engine.url), name)
        if info is not None and name:
            info.name = name
        _on_engine_created(engine, None)
        if _global or engine in _engine_listeners:
            return
        for ev, fn in _pool_events():
            event.listen(engine, ev, fn)
        _engine_listeners[engine] = True


def _remove_engine_listeners(engine: Engine) -> None:
    for ev, fn in _POOL_EVENTS + _REPAIR_EVENTS:
        try:
            event.remove(engine, ev, fn)
        except Exception:
            pass
    _engine_listeners.pop(engine, None)


def uninstall() -> None:
    """Remove every listener and patch; pools get their own class back."""
    global _global, _orig_engine_init, _via_events
    with _lock:
        _via_events = False
        if _global:
            for name, fn in _POOL_EVENTS + _REPAIR_EVENTS:
                if event.contains(Pool, name, fn):
                    event.remove(Pool, name, fn)
            _global = False
        if _orig_engine_init is not None:
            Engine.__init__ = _orig_engine_init  # type: ignore[method-assign]
            _orig_engine_init = None
        for engine in list(_engine_listeners.keys()):
            _remove_engine_listeners(engine)
        for info in _all_infos:
            pool = info.pool()
            if pool is not None:
                _restore_class(pool)
                pool.__dict__.pop("_pooldoctor", None)
        _engines.clear()
        _unwrap_dialects()
        sqltags.disable()


def ensure_global_listeners() -> None:
    """Re-add the class-level listeners if someone cleared them (e.g. a test teardown)."""
    if not _global:
        return
    for name, fn in _pool_events():
        if not event.contains(Pool, name, fn):
            event.listen(Pool, name, fn)


def guarded_dialects() -> list[Any]:
    """The dialects of the guarded engines (statement tags wrap them when turned on)."""
    return list(_dialects)


def all_infos() -> list[PoolInfo]:
    """Every pool the guard has seen in this process (also those since disposed)."""
    with _lock:
        return list(_all_infos)


def idle_server_ids(info: PoolInfo) -> tuple[set[int], int]:
    """Server ids of the connections resting idle in a guarded QueuePool, and how many idle
    connections have no known id (the pool's queue is read without taking its lock)."""
    pool = info.pool()
    if not isinstance(pool, QueuePool):
        return set(), 0
    try:
        records = list(pool._pool.queue)  # type: ignore[attr-defined]
    except Exception:
        return set(), pool.checkedin()
    ids: set[int] = set()
    unknown = 0
    for rec in records:
        if getattr(rec, "dbapi_connection", None) is None:
            continue  # not connected (invalidated, or not yet reconnected)
        sid = rec.__dict__.get("_pd_server_id")
        if isinstance(sid, int):
            ids.add(sid)
        else:
            unknown += 1
    return ids, unknown


def pool_infos() -> list[dict[str, Any]]:
    with _lock:
        return [i.to_dict() for i in _all_infos]


def stats_for(engine: Any) -> PoolInfo | None:
    engine = getattr(engine, "sync_engine", engine)
    info: PoolInfo | None = engine.pool.__dict__.get("_pooldoctor")
    return info


def reset_stats() -> None:
    with _lock:
        _all_infos[:] = [i for i in _all_infos if i.pool() is not None]
