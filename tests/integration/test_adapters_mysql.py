"""Pool adapters on MariaDB: aiomysql (pool and raw) and DBUtils PooledDB over PyMySQL."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomysql
import pymysql
import pytest
from dbutils.pooled_db import PooledDB, TooManyConnections, TooManyConnectionsError

import pooldoctor
from pooldoctor.guard import GUARD
from pooldoctor.runtime.adapters import protocol

from ..adapter_helpers import adapter_holds, findings, here, my_args, wait_finding

FILE = Path(__file__).name


@pytest.fixture
def my(mysql_url: str, guard: Any) -> Iterator[None]:
    GUARD.clear()  # what earlier tests of the session left
    pooldoctor.instrument(leak_threshold=0.2, wait_threshold=0.05, log=False)
    yield


def aio_args() -> dict[str, Any]:
    a = my_args()
    return {"host": a["host"], "port": a["port"], "user": a["user"], "password": a["password"],
            "db": a["database"]}


def assert_clean() -> None:
    gc.collect()
    assert adapter_holds() == []
    assert findings() == []
    assert GUARD.check_exit() == []


# --------------------------------------------------------------------------- aiomysql


async def test_aiomysql_pool_leak_wait_and_clean_twin(my: None) -> None:
    pool = await aiomysql.create_pool(minsize=1, maxsize=1, **aio_args())
    try:
        async with pool.acquire() as ok, ok.cursor() as cur:  # the clean twin
            await cur.execute("SELECT 1")
        assert adapter_holds() == [] and findings() == []

        async def leak() -> tuple[Any, int]:
            return await pool.acquire(), here()

        conn, line = await asyncio.create_task(leak(), name="task-holder")
        f = wait_finding("PD101", line)
        assert f.details["task"] == "task-holder" and f.details["server_id"] > 0
        asyncio.get_running_loop().call_later(0.1, pool.release, conn)
        waiter = await pool.acquire(); line_w = here()  # noqa: E702
        w = wait_finding("PD109", line_w)
        assert "aiomysql:" in w.message and "max_size=1" in w.message
        pool.release(waiter)
        assert adapter_holds() == []
        [p101] = findings("PD101")
        assert p101.details.get("returned_count") == 1
    finally:
        pool.close()
        await pool.wait_closed()


async def test_aiomysql_raw_connection_open_to_close(my: None) -> None:
    conn = await aiomysql.connect(**aio_args()); line = here()  # noqa: E702
    [h] = adapter_holds("connection")
    assert h["site"]["line"] == line and h["pool"] == "aiomysql" and h["task"]
    conn.close()
    c2 = await aiomysql.connect(**aio_args())
    await c2.ensure_closed()
    async with aiomysql.connect(**aio_args()) as c3:
        assert not c3.closed
    assert_clean()


# --------------------------------------------------------------------------- DBUtils


def pooled(**kwargs: Any) -> Any:
    a = my_args()
    return PooledDB(pymysql, host=a["host"], port=a["port"], user=a["user"],
                    password=a["password"], database=a["database"], **kwargs)


def test_dbutils_exhausted_names_holders_and_keeps_its_type(my: None) -> None:
    db = pooled(maxconnections=2, blocking=False)
    try:
        a = db.connection(); line_a = here()  # noqa: E702
        box: list[Any] = []
        t = threading.Thread(target=lambda: box.append(db.connection()), name="dbu-holder")
        line_b = here() - 1
        t.start()
        t.join()
        line_c = here() + 2
        with pytest.raises(TooManyConnections) as ei:
            db.connection()
        assert type(ei.value) is TooManyConnectionsError
        text = str(ei.value)
        assert f"{FILE}:{line_a}" in text and f"{FILE}:{line_b}" in text
        assert "MainThread" in text and "max_size=2" in text
        f = wait_finding("PD103", line_c)
        assert [g["count"] for g in f.details["holders"]] == [1, 1]
        a.close()
        box[0].close()
        assert adapter_holds() == []
    finally:
        db.close()


def test_dbutils_leak_returned_after_all_and_dropped_wrapper(my: None) -> None:
    db = pooled(maxconnections=2, maxshared=0)
    try:
        kept = db.connection(); line = here()  # noqa: E702
        f = wait_finding("PD101", line)
        assert f.details["pool"].startswith("dbutils:") and f.details["server_id"] > 0
        kept.close()
        assert findings("PD101")[0].details.get("returned_count") == 1

        def drop() -> int:
            db.connection(); return here()  # noqa: E702

        dropped = drop()
        gc.collect()
        p102 = wait_finding("PD102", dropped)
        assert "DBUtils gave it back" in p102.message
        assert adapter_holds() == []
    finally:
        db.close()


def test_dbutils_blocking_wait_is_pd109(my: None) -> None:
    db = pooled(maxconnections=1, blocking=True)
    try:
        first = db.connection()
        lines: list[int] = []

        def waiter() -> None:
            c = db.connection(); lines.append(here())  # noqa: E702
            c.close()

        t = threading.Thread(target=waiter, name="dbu-waiter")
        t.start()
        [st] = [s for s in protocol.all_stats() if s.pool() is db]
        deadline = time.monotonic() + 5
        while st.waiting < 1 and time.monotonic() < deadline:  # the waiter is blocked
            time.sleep(0.005)
        threading.Timer(0.1, first.close).start()  # and waits at least 100 ms
        t.join(10)
        f = wait_finding("PD109", lines[0])
        assert "dbutils:" in f.message
    finally:
        db.close()


def test_dbutils_clean_twin_in_threads(my: None) -> None:
    db = pooled(maxconnections=3, blocking=True, maxshared=0)
    try:
        def work() -> None:
            for _ in range(5):
                with db.connection() as c:
                    cur = c.cursor()
                    cur.execute("SELECT 1")
                    cur.close()

        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert_clean()  # the pool's own PyMySQL connections are no raw holds either
    finally:
        db.close()


def test_failing_hooks_never_break_dbutils(my: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("hook failure")

    before = GUARD.internal_errors
    for name in ("capture", "holders_summary", "wait_begins"):
        monkeypatch.setattr(protocol, name, boom)
    db = pooled(maxconnections=2, blocking=False, maxshared=0)
    try:
        for _ in range(3):
            conns = [db.connection(), db.connection()]
            for c in conns:
                c.close()
        a, b = db.connection(), db.connection()
        with pytest.raises(TooManyConnections):
            db.connection()
        a.close()
        b.close()
        c = db.connection()  # no slot lost
        c.close()
    finally:
        db.close()
    assert GUARD.internal_errors > before
    assert adapter_holds() == []


def test_dbutils_persistent_db_of_live_threads_is_not_a_leak(my: None) -> None:
    """PersistentDB keeps one connection per thread on purpose (its ``close()`` is ignored):
    held past the leak threshold by a live thread, it is never reported, nor counted as a
    raw hold (the connections are DBUtils' own); it ends when DBUtils closes it."""
    from dbutils.persistent_db import PersistentDB

    db = PersistentDB(pymysql, **my_args())
    ready, done = threading.Event(), threading.Event()

    def work() -> None:
        c = db.connection()
        cur = c.cursor()
        cur.execute("SELECT 1")
        cur.close()
        c.close()  # ignored by design: the thread keeps it
        ready.set()
        done.wait(10)

    t = threading.Thread(target=work)
    t.start()
    try:
        assert ready.wait(10)
        main = db.connection()  # the main thread's own, kept too
        main.cursor().execute("SELECT 1")
        main.close()
        assert db.connection() is main  # the same one: still one hold
        holds = GUARD.ledger.holds()
        assert len(holds) == 2 and {h.keeper for h in holds} == {"DBUtils"}
        assert [h["kind"] for h in adapter_holds()] == ["checkout", "checkout"]
        threading.Event().wait(0.3)  # past the 0.2 s leak threshold
        GUARD.tick()
        GUARD.tick()
        assert findings() == []
        assert GUARD.check_exit() == []
    finally:
        done.set()
        t.join(10)
        db.thread.connection._close()  # the main thread's (PersistentDB has no close())
    del t  # DBUtils' pure-Python local data of the worker goes with its Thread object
    gc.collect()
    assert adapter_holds() == []  # closed by DBUtils: the holds ended
    GUARD.tick()
    assert findings() == []


def test_dbutils_persistent_db_thread_ended_holding_is_pd110(my: None) -> None:
    """A thread that ended while DBUtils still keeps its connection open (its Thread object
    is referenced: DBUtils' own thread-local data lives as long) is PD110, at the worker's
    line, without waiting for the leak threshold; the main thread's is not."""
    from dbutils.persistent_db import PersistentDB

    db = PersistentDB(pymysql, **my_args())
    lines: list[int] = []

    def work() -> None:
        c = db.connection(); lines.append(here())  # noqa: E702
        c.cursor().execute("SELECT 1")

    workers = [threading.Thread(target=work, name=f"persistent-{i}") for i in range(2)]
    for t in workers:
        t.start()
        t.join(10)
    main = db.connection()
    main.cursor().execute("SELECT 1")
    try:
        GUARD.tick()  # the ended threads seen
        GUARD.tick()  # and still ended: PD110
        f = wait_finding("PD110", lines[0])
        assert f.count == 2 and f.site is not None and f.site.file.endswith(FILE)
        assert "DBUtils keeps one per thread" in f.message
        assert "which has ended without returning it" in f.message
        assert f.details["thread"] in ("persistent-0", "persistent-1")
        assert findings("PD101") == [] and findings("PD105") == []
        assert [x.code for x in GUARD.check_exit()] == []  # told already; the main's is kept
        ids = {h.server_id for h in GUARD.ledger.holds()}
        assert len(ids) == 3 and None not in ids
    finally:
        db.thread.connection._close()
    del workers, t
    gc.collect()  # the Thread objects go, DBUtils closes their connections
    assert adapter_holds() == []


def test_dbutils_persistent_db_closed_with_its_thread_or_by_close(my: None) -> None:
    """With ``threadlocal=threading.local`` DBUtils closes a thread's connection when the
    thread ends: nothing to report. ``closeable=True``: ``close()`` ends the hold, the next
    ``connection()`` opens and holds a new one."""
    from dbutils.persistent_db import PersistentDB

    db = PersistentDB(pymysql, threadlocal=threading.local, **my_args())

    def work() -> None:
        db.connection().cursor().execute("SELECT 1")

    t = threading.Thread(target=work)
    t.start()
    t.join(10)
    GUARD.tick()
    GUARD.tick()
    assert adapter_holds() == [] and findings() == []

    closeable = PersistentDB(pymysql, closeable=True, **my_args())
    c = closeable.connection()
    [h] = GUARD.ledger.holds()
    c.close()
    assert adapter_holds() == []
    c2 = closeable.connection(); line = here()  # noqa: E702
    [h2] = GUARD.ledger.holds()
    assert h2 is not h and h2.frames and adapter_holds()[0]["site"]["line"] == line
    c2.close()
    assert adapter_holds() == [] and findings() == []
