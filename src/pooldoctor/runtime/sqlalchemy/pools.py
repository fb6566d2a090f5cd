"""Checkouts and checkins of a guarded SQLAlchemy pool.

A subclass of the pool's class, swapped in as ``pool.__class__`` (it survives ``dispose()``,
which rebuilds the pool with ``self.__class__``), overrides ``connect()`` and
``_return_conn()``. No pool event: SQLAlchemy keeps its checkout fast path. The hold is
stashed on the connection record from checkout to checkin. The common case is
runtime/hotpath.py (in C when ``pooldoctor._speedups`` is built).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import exc
from sqlalchemy.pool import Pool, QueuePool, StaticPool
from sqlalchemy.pool.base import _ConnectionFairy

from ...findings import Finding
from ...guard import GUARD
from ...ledger import Hold
from ...sites import capture, format_stack, site_of
from ..hotpath import checkin as _fast_checkin
from ..hotpath import checkout as _fast_checkout
from ..hotpath import new_hold
from ..server_ids import server_id
from .info import ALL_INFOS, LOCK, MODE, PoolInfo
from .waits import _guard_queue, _on_timeout, _report_wait, _TimedCondition

_swapped: dict[type, type] = {}


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
    with LOCK:
        existing: PoolInfo | None = pool.__dict__.get("_pooldoctor")
        if existing is not None:
            return existing
        info = PoolInfo(pool, url, name)
        pool.__dict__["_pooldoctor"] = info
        ALL_INFOS.append(info)
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
        if fairy._counter != 1 or not GUARD.active or MODE.via_events:
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


