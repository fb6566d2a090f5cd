"""The runtime guard on real databases: SQLite, PostgreSQL (psycopg 3), MariaDB (PyMySQL)."""

from __future__ import annotations

import gc
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import pooldoctor
from pooldoctor.guard import GUARD


def here() -> int:
    """The caller's line number (use on the line of the call under test)."""
    return sys._getframe(1).f_lineno


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll ``predicate`` until it is truthy or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.01)


def codes() -> list[str]:
    return pooldoctor.report().codes()


def findings(code: str) -> list[pooldoctor.Finding]:
    return [f for f in pooldoctor.report().findings if f.code == code]


QUIET = {"log": False, "exit_check": False}


def test_clean_program_reports_nothing(any_url: str, guard: object) -> None:
    pooldoctor.instrument(leak_threshold=5, transaction_threshold=5, **QUIET)
    engine = sa.create_engine(any_url, pool_size=3, max_overflow=2)
    for _ in range(20):
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        with engine.begin() as conn:
            conn.exec_driver_sql("SELECT 1")
        with Session(engine) as session:
            session.execute(sa.text("SELECT 1"))
            session.commit()
    gc.collect()
    GUARD.tick()
    assert pooldoctor.report().findings == []
    assert pooldoctor.holds() == []
    pool = pooldoctor.report().pools[-1]
    assert pool["checkouts"] == 60
    assert pool["checked_out"] == 0
    engine.dispose()


def test_hold_records_site_thread_pid_and_server_id(any_url: str, guard: object) -> None:
    pooldoctor.instrument(**QUIET)
    engine = sa.create_engine(any_url)
    conn, line = engine.connect(), here()
    try:
        [hold] = pooldoctor.holds()
        assert hold["site"] == {"file": __file__, "line": line,
                                "function": "test_hold_records_site_thread_pid_and_server_id"}
        assert hold["thread"] == threading.current_thread().name
        assert hold["kind"] == "checkout"
        backend = engine.dialect.name
        if backend == "postgresql":
            assert hold["server_id"] == conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        elif backend in ("mysql", "mariadb"):
            assert hold["server_id"] == conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
        else:
            assert "server_id" not in hold
    finally:
        conn.close()
    assert pooldoctor.holds() == []
    engine.dispose()


def test_pd101_held_too_long_then_returned(any_url: str, guard: object) -> None:
    pooldoctor.instrument(leak_threshold=0.1, **QUIET)
    engine = sa.create_engine(any_url)
    conn, line = engine.connect(), here()
    [f] = wait_for(lambda: findings("PD101"))
    assert f.site is not None and (f.site.file, f.site.line) == (__file__, line)
    assert "threshold 0.1 s" in f.message
    assert f.stack[0].line == line
    conn.close()
    [f] = findings("PD101")
    assert f.count == 1, "reported once per hold"
    assert f.details.get("returned_count") == 1, "the return is noted (unleaked)"
    engine.dispose()


def test_pd102_garbage_collected_sync(any_url: str, guard: object) -> None:
    pooldoctor.instrument(**QUIET)
    engine = sa.create_engine(any_url, pool_size=1, max_overflow=0, pool_timeout=2)

    def forget() -> int:
        conn = engine.connect()
        conn.exec_driver_sql("SELECT 1")
        return here() - 2

    line = forget()
    gc.collect()
    GUARD.drain()
    [f] = findings("PD102")
    assert f.site is not None and (f.site.line, f.site.function) == (line, "forget")
    assert pooldoctor.holds() == []
    # the slot came back: the only connection can be checked out again
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    engine.dispose()


def test_pd103_timeout_names_the_holders_and_keeps_the_type(any_url: str, guard: object) -> None:
    pooldoctor.instrument(**QUIET)
    engine = sa.create_engine(any_url, pool_size=2, max_overflow=1, pool_timeout=0.2)
    held = []

    def take() -> None:
        held.append(engine.connect())

    for _ in range(3):
        take()
    line = here() - 4
    with pytest.raises(sa.exc.TimeoutError) as info:
        engine.connect()
    err = info.value
    assert err.code == "3o7r"
    text = str(err)
    assert text.startswith("QueuePool limit of size 2 overflow 1 reached")
    assert "exhausted: size=2 overflow=1 checked_out=3 waiting=0" in text
    assert f"3 x {__file__.split('/')[-1]}" in text or f":{line} in take" in text
    assert f":{line} in take" in text
    [f] = findings("PD103")
    assert f.details["holders"][0]["count"] == 3
    assert f.details["holders"][0]["site"]["line"] == line
    for c in held:
        c.close()
    assert pooldoctor.report().pools[-1]["timeouts"] == 1
    engine.dispose()


def test_pd107_long_transaction_core_and_orm(any_url: str, guard: object) -> None:
    pooldoctor.instrument(transaction_threshold=0.1, leak_threshold=30, **QUIET)
    engine = sa.create_engine(any_url)
    with engine.connect() as conn:
        checkout_line = here() - 1
        conn.exec_driver_sql("SELECT 1")  # no transaction begun explicitly... autobegin:
        wait_for(lambda: findings("PD107"))
        conn.rollback()
        # the first transaction of a checkout is told by the checkout's stack
        [f] = findings("PD107")
        assert f.site is not None and f.site.line == checkout_line
        assert "on the connection checked out at" in f.message
        # the thread holding it, and where it is now (here: waiting in this test)
        assert "its thread is now at" in f.message
        assert [s["function"] for s in f.details["thread_now"]][:2] == [
            "wait_for", "test_pd107_long_transaction_core_and_orm"]
        GUARD.collector.clear()
        conn.exec_driver_sql("SELECT 1")  # a later transaction: its own begin site
        begin_line = here() - 1
        wait_for(lambda: findings("PD107"))
        conn.rollback()
    [f] = findings("PD107")
    assert f.site is not None and f.site.line == begin_line
    assert f"begun at {f.site.short()}" in f.message
    GUARD.collector.clear()
    with Session(engine) as session:
        session.execute(sa.text("SELECT 1")); orm_line = here()  # noqa: E702
        wait_for(lambda: findings("PD107"))
    [f] = findings("PD107")
    assert f.site is not None and f.site.line == orm_line
    engine.dispose()


def test_short_transactions_are_not_reported(any_url: str, guard: object) -> None:
    pooldoctor.instrument(transaction_threshold=0.2, leak_threshold=30, **QUIET)
    engine = sa.create_engine(any_url)
    with engine.connect() as conn:
        for _ in range(5):
            conn.exec_driver_sql("SELECT 1")
            conn.commit()
            time.sleep(0.06)  # the connection stays checked out, each transaction is short
    GUARD.tick()
    assert "PD107" not in codes()
    engine.dispose()


def test_dispose_keeps_the_guard(any_url: str, guard: object) -> None:
    pooldoctor.instrument(**QUIET)
    engine = sa.create_engine(any_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    engine.dispose()
    c1 = engine.connect()
    with pytest.raises(sa.exc.TimeoutError, match="exhausted"):
        engine.connect()
    c1.close()
    assert len(findings("PD103")) == 1
    engine.dispose()


def test_hammer_threads_random_errors_no_false_findings_no_lost_slot(
        any_url: str, guard: object) -> None:
    pooldoctor.instrument(leak_threshold=10, transaction_threshold=10, **QUIET)
    engine = sa.create_engine(any_url, pool_size=4, max_overflow=4, pool_timeout=30)
    rnd = random.Random(7)
    errors = []

    class Boom(Exception):
        pass

    def work(seed: int) -> None:
        r = random.Random(seed)
        for _ in range(25):
            try:
                with engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
                    if r.random() < 0.3:
                        raise Boom()
                    if r.random() < 0.2:
                        conn.commit()
            except Boom:
                pass
            except Exception as e:  # pragma: no cover - surfaced below
                errors.append(e)

    threads = [threading.Thread(target=work, args=(rnd.random(),)) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    gc.collect()
    GUARD.tick()
    assert [f.code for f in pooldoctor.report().findings
            if f.code not in ("PD109",)] == [], "no false findings"
    assert pooldoctor.holds() == []
    pool = engine.pool
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    # every slot is usable: take pool_size + max_overflow connections at once
    conns = [engine.connect() for _ in range(8)]
    for c in conns:
        c.close()
    info = pooldoctor.report().pools[-1]
    assert info["checkouts"] == 32 * 25 + 8
    assert info["checked_out"] == 0
    engine.dispose()
