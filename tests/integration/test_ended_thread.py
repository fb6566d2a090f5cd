"""PD110 (held by a thread that has ended), what it does not report, and PD101's "the thread
is now at", on real SQLite pools and connections."""

from __future__ import annotations

import queue
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import pooldoctor
from pooldoctor.guard import GUARD
from tests.raw_helpers import codes, wait_for

QUIET = {"log": False, "exit_check": False, "leak_threshold": 30.0}


def passes(n: int = 2) -> None:
    """Two watchdog passes: PD110 waits one pass for a handover."""
    for _ in range(n):
        GUARD.tick()


def run_thread(target: Any, name: str) -> threading.Thread:
    t = threading.Thread(target=target, name=name)
    t.start()
    t.join()
    return t


def test_raw_connection_of_an_ended_thread(tmp_path: Path, guard: object) -> None:
    pooldoctor.instrument(**QUIET)
    kept: list[Any] = []
    line = 0

    def work() -> None:
        nonlocal line
        line = sys._getframe().f_lineno + 1
        conn = sqlite3.connect(tmp_path / "a.db", check_same_thread=False)
        conn.execute("SELECT 1")
        kept.append(conn)  # never closed: its thread ends

    run_thread(work, "loader")
    f = wait_for("PD110")
    assert f.site is not None and f.site.line == line and f.site.file == __file__
    assert "by thread 'loader', which has ended without closing it" in f.message
    assert f.details["thread"] == "loader"
    assert "PD101" not in codes()  # no threshold waited for
    kept[0].close()


def test_pool_checkout_of_an_ended_thread_is_told_before_the_threshold(
        tmp_path: Path, guard: object) -> None:
    pooldoctor.instrument(**QUIET)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'b.db'}")
    kept: list[Any] = []
    line = 0

    def work() -> None:
        nonlocal line
        line = sys._getframe().f_lineno + 1
        conn = engine.connect()
        conn.exec_driver_sql("SELECT 1")
        kept.append(conn)

    run_thread(work, "worker-7")
    # a new thread may get the ended thread's id: the hold still names its own thread
    run_thread(lambda: None, "later")
    f = wait_for("PD110")
    assert f.site is not None and f.site.line == line
    assert "connection checked out at" in f.message and "'worker-7'" in f.message
    assert "without returning it" in f.message
    kept[0].close()
    engine.dispose()


def test_not_reported_live_thread_main_thread_and_closed(tmp_path: Path, guard: object) -> None:
    pooldoctor.instrument(**QUIET)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    main_conn = engine.connect()  # the main thread's: PD105 tells at exit, not PD110
    release = threading.Event()
    holding = threading.Event()

    def holder() -> None:  # alive while the passes run
        with engine.connect() as c:
            c.exec_driver_sql("SELECT 1")
            holding.set()
            release.wait(10)

    def tidy() -> None:  # ends, but gave everything back
        with engine.connect() as c:
            c.exec_driver_sql("SELECT 1")
        sqlite3.connect(tmp_path / "d.db").close()

    t = threading.Thread(target=holder)
    t.start()
    assert holding.wait(10)
    run_thread(tidy, "tidy")
    passes()
    assert "PD110" not in codes()
    release.set()
    t.join()
    main_conn.close()
    engine.dispose()


def test_a_connection_handed_over_and_used_is_not_reported(tmp_path: Path,
                                                            guard: object) -> None:
    """The producer opens connections and ends; each consumer that opens a cursor on one owns
    it from then on (its thread is alive: nothing to report)."""
    pooldoctor.instrument(**QUIET)
    q: queue.Queue[Any] = queue.Queue()
    used = threading.Event()
    stop = threading.Event()

    def producer() -> None:
        q.put(sqlite3.connect(tmp_path / "e.db", check_same_thread=False))

    def consumer() -> None:
        conn = q.get(timeout=10)
        conn.cursor().execute("SELECT 1")
        used.set()
        stop.wait(10)
        conn.close()

    c = threading.Thread(target=consumer, name="consumer")
    c.start()
    run_thread(producer, "producer")
    assert used.wait(10)
    passes()
    assert "PD110" not in codes()
    (h,) = [h for h in GUARD.ledger.holds() if h.kind == "connection"]
    assert h.thread is c and h.thread_name == "consumer"
    stop.set()
    c.join()


@pytest.mark.parametrize("consumer_first", [True, False])
def test_a_pool_checkout_handed_over_and_used_is_not_reported(
        tmp_path: Path, guard: object, consumer_first: bool) -> None:
    """A checkout taken by a thread that ends and used by the next (it begins a transaction on
    it) is the next thread's; started after the first has ended, the next thread often gets
    the same ident (idents are reused): its Thread object tells them apart."""
    pooldoctor.instrument(**QUIET)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'h.db'}", poolclass=sa.pool.QueuePool)
    q: queue.Queue[Any] = queue.Queue()
    used = threading.Event()
    stop = threading.Event()

    def producer() -> None:
        q.put(engine.connect())

    def consumer() -> None:
        conn = q.get(timeout=10)
        conn.exec_driver_sql("SELECT 1")
        used.set()
        stop.wait(10)
        conn.close()

    c = threading.Thread(target=consumer, name="consumer")
    if consumer_first:
        c.start()
    run_thread(producer, "producer")
    if not consumer_first:
        c.start()
    try:
        assert used.wait(10)
        passes()
        assert "PD110" not in codes()
        (h,) = [h for h in GUARD.ledger.holds() if h.kind == "checkout"]
        assert h.thread is c and h.thread_name == "consumer"
    finally:
        stop.set()
        c.join()
        engine.dispose()


def test_pd101_tells_where_the_holding_thread_is_now(tmp_path: Path, guard: object) -> None:
    pooldoctor.instrument(log=False, exit_check=False, leak_threshold=0.2)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'f.db'}")
    release = threading.Event()
    lines: dict[str, int] = {}

    def wait_here() -> None:
        lines["now"] = sys._getframe().f_lineno + 1
        release.wait(10)

    def slow_job() -> None:
        lines["taken"] = sys._getframe().f_lineno + 1
        with engine.connect() as c:
            c.exec_driver_sql("SELECT 1")
            wait_here()

    t = threading.Thread(target=slow_job, name="slow")
    t.start()
    try:
        f = wait_for("PD101")
        assert f.site is not None and f.site.line == lines["taken"]
        now_at = f.message.split("; the thread is now at ")[1]
        assert now_at.endswith(f"{Path(__file__).name}:{lines['now']} in wait_here")
        now = f.details["thread_now"]
        assert now[0]["function"] == "wait_here" and now[1]["function"] == "slow_job"
    finally:
        release.set()
        t.join()
        engine.dispose()
