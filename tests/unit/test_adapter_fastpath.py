"""The pool adapters' fast path: the C functions (``_speedups.adapter_*``) and their Python
twins (runtime/adapters/fastpath.py) must behave the same: a whole checkout (with its wait)
and a checkin in one call, and a decline (nothing done) for anything the careful path must
handle. Exercised on real sqlite3 connections held through a pool's stats."""

from __future__ import annotations

import sqlite3
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from pooldoctor import api
from pooldoctor.guard import GUARD
from pooldoctor.ledger import Hold
from pooldoctor.runtime.adapters import fastpath, protocol
from pooldoctor.runtime.adapters.raw import opened
from pooldoctor.runtime.adapters.stats import STATS, stats_of
from pooldoctor.sites import is_internal_file, site_of

C = fastpath._c
needs_c = pytest.mark.skipif(C is None, reason="pooldoctor._speedups is not built or is off")
IMPLS: list[Any] = [pytest.param("python", id="python"),
                    pytest.param("c", id="c", marks=needs_c)]


class Pool:
    """A pool of the kind the adapters see: a plain object with an instance ``__dict__``."""


class Conn(sqlite3.Connection):
    """A sqlite3 connection that takes weak references (as the driver's own subclass)."""


def line() -> int:
    f = sys._getframe(1)
    return f.f_lineno


@pytest.fixture(params=IMPLS)
def fast(request: pytest.FixtureRequest) -> Iterator[SimpleNamespace]:
    # observers an earlier test left (metrics exporters) send every checkout down the careful
    # path: these tests are about the fast one
    observers = GUARD.observers[:]
    GUARD.observers.clear()
    api.instrument(log=False, exit_check=False)
    is_internal_file(__file__)  # judged, as the careful path's first checkout leaves it
    c = request.param == "c"
    real_checkout = C.adapter_checkout if c else fastpath.checkout_py  # type: ignore[union-attr]

    def checkout(pool: Any, obj: Any, conn: Any = None, t0: float | None = None) -> Any:
        return real_checkout(pool, obj, conn, t0)  # the stack is this function's caller's

    conns: list[sqlite3.Connection] = []

    def connect() -> sqlite3.Connection:
        conns.append(sqlite3.connect(":memory:", factory=Conn))
        return conns[-1]

    try:
        yield SimpleNamespace(
            checkout=checkout,
            checkin=C.adapter_checkin if c else fastpath.checkin_py,  # type: ignore[union-attr]
            wait_begins=C.adapter_wait_begins if c else fastpath.wait_begins_py,  # type: ignore[union-attr]
            connect=connect)
    finally:
        for conn in conns:
            protocol.checkin(conn)
            conn.close()
        api.uninstrument()
        GUARD.clear()
        GUARD.observers[:] = observers


def seen(pool: Pool, conn: sqlite3.Connection) -> Any:
    """What the careful path leaves after a first checkout: the pool's stats and the
    connection's server id."""
    st = stats_of(pool, "test")
    protocol._server_id(conn)
    return st


def test_checkout_fills_the_hold_and_checkin_ends_it(fast: SimpleNamespace) -> None:
    pool, conn = Pool(), fast.connect()
    st = seen(pool, conn)
    h = fast.checkout(pool, conn)
    at = line() - 1
    assert isinstance(h, Hold) and h() is conn and h.pool is st
    site = site_of(h.frames)
    assert site is not None and (site.file, site.line) == (__file__, at)
    assert protocol.live_hold(conn) is h and st.holds == {h.id: h}
    assert h.thread is threading.current_thread() and h.pid == GUARD.pid
    assert h.server_id is None and h.reported is False and h.txn_since is None
    assert st.checkouts == 1 and st.peak_checked_out == 1
    assert fast.checkout(pool, conn) is None  # held already: the careful path keeps the hold
    assert fast.checkin(conn) is True
    assert protocol.live_hold(conn) is None and st.holds == {}
    assert st.hold_s_total > 0
    assert fast.checkin(conn) is True  # nothing held: nothing to do


def test_checkout_declines_what_needs_the_careful_path(fast: SimpleNamespace) -> None:
    pool, conn = Pool(), fast.connect()
    assert fast.checkout(pool, conn) is None  # a pool never seen: no stats yet
    assert fast.wait_begins(pool) is None
    st = stats_of(pool, "test")
    assert fast.checkout(pool, conn) is None  # the connection's server id not asked yet
    protocol._server_id(conn)
    assert fast.checkout(pool, conn, None, 1) is None  # not a float: not a wait time
    other = Pool()
    other.__dict__[STATS] = st  # stats copied to another pool: not its own
    assert fast.checkout(other, conn) is None and fast.wait_begins(other) is None
    GUARD.observers.append(object())
    try:
        assert fast.checkout(pool, conn) is None and fast.wait_begins(pool) is None
    finally:
        GUARD.observers.clear()
    GUARD.active = False
    try:
        assert fast.checkout(pool, conn) is None and fast.wait_begins(pool) is None
    finally:
        GUARD.active = True
    assert st.holds == {} and st.checkouts == 0 and protocol.live_hold(conn) is None
    h = fast.checkout(st, conn)  # the stats given for the pool (asyncpg's have no __dict__)
    assert h is not None and h.pool is st
    assert fast.checkin(conn) is True


def test_the_wait_ends_with_the_checkout_or_is_left_to_the_careful_path(
        fast: SimpleNamespace) -> None:
    pool, conn = Pool(), fast.connect()
    st = seen(pool, conn)
    t0 = fast.wait_begins(pool)
    assert isinstance(t0, float) and st.waiting == 1
    assert fast.checkout(pool, conn, None, t0) is not None
    assert st.waiting == 0 and 0 < st.wait_s_total < GUARD.options.wait_threshold
    assert st.waits == 0  # not past the threshold: no PD109
    fast.checkin(conn)
    t0 = fast.wait_begins(pool)
    past = t0 - GUARD.options.wait_threshold - 1  # waited past the threshold: PD109's path
    assert fast.checkout(pool, conn, None, past) is None
    assert st.waiting == 1 and st.holds == {}  # nothing done: the careful path ends the wait
    def wrapper() -> None:  # the careful path is called by an adapter's wrapper
        protocol.careful_checkout(pool, lambda p: st, conn, None, past)

    wrapper()
    assert st.waiting == 0 and st.waits == 1 and protocol.live_hold(conn) is not None


def test_checkin_declines_a_raw_connection_and_a_reported_hold(fast: SimpleNamespace) -> None:
    pool, conn, raw = Pool(), fast.connect(), fast.connect()
    seen(pool, conn)
    def connect() -> Any:  # opened() is called by an adapter's wrapper
        return opened(raw, "sqlite3", server=False)

    assert connect() is not None
    assert fast.checkin(raw) is False  # a raw connection's hold: the careful path ends it
    assert protocol.live_hold(raw) is not None
    h = fast.checkout(pool, conn)
    h.reported = True  # PD101 told: its checkin says "returned after all"
    assert fast.checkin(conn) is False and protocol.live_hold(conn) is h


def test_a_driver_connection_behind_the_object_gives_the_server_id(
        fast: SimpleNamespace) -> None:
    pool, conn = Pool(), fast.connect()
    wrapper = Pool()  # what DBUtils hands out: a wrapper around the driver's connection
    st = stats_of(pool, "test")
    protocol._sids[id(conn)] = (weakref.ref(conn), 77)
    h = fast.checkout(pool, wrapper, conn)
    assert h is not None and h() is wrapper and h.server_id == 77 and h.pool is st
    assert fast.checkin(wrapper) is True
    del protocol._sids[id(conn)]


def test_twins_are_the_ones_in_use() -> None:
    impl: Callable[..., Any] = fastpath.checkout
    assert impl is (C.adapter_checkout if C is not None else fastpath.checkout_py)


class Broken:
    """A counter that fails: the checkout's statistics cannot be counted."""

    def __iter__(self) -> Broken:
        return self

    def __next__(self) -> int:
        raise RuntimeError("counter failure")


def test_a_failure_inside_is_counted_never_raised(fast: SimpleNamespace) -> None:
    pool, conn = Pool(), fast.connect()
    st = seen(pool, conn)
    counter, st.checkout_counter = st.checkout_counter, Broken()  # type: ignore[assignment]
    before = GUARD.internal_errors
    try:
        assert fast.checkout(pool, conn) is None  # declined: the careful path takes over
        assert GUARD.internal_errors == before + 1
        h = protocol.live_hold(conn)  # recorded before the failure: the checkin finds it
        assert h is None or fast.checkin(conn) is True
    finally:
        st.checkout_counter = counter  # the report reads it
    assert protocol.live_hold(conn) is None and st.holds == {}


class SlottedPool:
    """A pool like asyncpg's: no instance ``__dict__``, no weak reference."""

    __slots__ = ("name",)


class Anchor:
    """What names such a pool and lives as long as it does (asyncpg's connection holder)."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool


def test_a_pool_without_dict_is_found_through_its_anchor(fast: SimpleNamespace) -> None:
    pool, conn = SlottedPool(), fast.connect()
    anchor = Anchor(pool)
    st = stats_of(pool, "test", anchor=anchor, via="_pool")
    protocol._server_id(conn)
    assert st.pool() is pool
    t0 = fast.wait_begins(pool)
    assert isinstance(t0, float) and st.waiting == 1
    h = fast.checkout(pool, conn, None, t0)
    assert h is not None and h.pool is st and st.waiting == 0 and st.holds == {h.id: h}
    assert fast.checkin(conn) is True and st.holds == {}
    other = SlottedPool()
    anchor._pool = other  # the anchor no longer names this pool: its entry is not trusted
    assert fast.wait_begins(pool) is None and fast.checkout(pool, conn) is None
    assert fast.wait_begins(other) is None  # nor is it the other pool's (another id)
    anchor._pool = pool
    assert fast.checkout(pool, conn) is not None
    assert fast.checkin(conn) is True
    del anchor  # the anchor gone, the entry goes with it
    assert fast.wait_begins(pool) is None and st.pool() is None


def test_the_running_task_is_named_in_the_hold(fast: SimpleNamespace) -> None:
    import asyncio

    pool, conn = Pool(), fast.connect()
    seen(pool, conn)

    async def in_task() -> Any:
        return fast.checkout(pool, conn)

    async def main() -> Any:
        return await asyncio.create_task(in_task(), name="pd-task-name")

    h = asyncio.run(main())
    assert h is not None and h.task == "pd-task-name"
    assert fast.checkin(conn) is True
    h = fast.checkout(pool, conn)  # no event loop: no task
    assert h is not None and h.task is None
    assert fast.checkin(conn) is True
