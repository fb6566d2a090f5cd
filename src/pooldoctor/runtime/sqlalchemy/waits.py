"""Waits and timeouts of a guarded SQLAlchemy pool: PD109 and PD103.

The pool queue's ``not_empty`` condition is replaced by a timed one (same lock); an asyncio
queue's class is swapped for one with a timed ``get()``. A timeout adds the holders to the
message of the ``TimeoutError`` the caller gets (type and code unchanged).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ...findings import Finding
from ...guard import GUARD
from ...sites import capture, format_stack, site_of
from ..holders import add_to_error, holders_lines, holders_of, holders_summary
from .info import PoolInfo

_get_ident = threading.get_ident


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


def _on_timeout(pool: Any, info: PoolInfo, e: Exception) -> None:
    try:
        with info.lock:
            info.timeouts += 1
            others_waiting = max(info.waiting - 1, 0)
        if GUARD.observers:
            GUARD.observe("on_timeout", info)
        holds = holders_of(info)
        holders = holders_summary(holds)
        head = (f"pool {info.label!r} exhausted: size={pool.size()} "
                f"overflow={pool._max_overflow} checked_out={pool.checkedout()} "
                f"waiting={others_waiting}")
        add_to_error(e, holders_lines(head, holders, len(holds)))
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


