"""Pool adapters on PostgreSQL: psycopg_pool (sync and async), asyncpg (pool and raw),
psycopg2.pool, psycopg's AsyncConnection. A leak at the right line, a clean twin that
reports nothing, exhaustion that names the holders and keeps the library's exception type,
threads and tasks, hooks that fail without breaking a checkout, and ``pooldoctor run``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import psycopg2.pool
import psycopg_pool
import pytest

import pooldoctor
from pooldoctor.guard import GUARD
from pooldoctor.runtime.adapters import protocol

from ..adapter_helpers import (
    adapter_holds,
    findings,
    here,
    pg_args,
    pg_dsn,
    pg_uri,
    wait_finding,
)

FILE = Path(__file__).name


@pytest.fixture
def pg(pg_url: str, guard: Any) -> Iterator[None]:
    GUARD.clear()  # what earlier tests of the session left
    pooldoctor.instrument(leak_threshold=0.2, wait_threshold=0.05, log=False)
    yield


def assert_clean() -> None:
    gc.collect()
    assert adapter_holds() == []
    assert findings() == []
    assert GUARD.check_exit() == []


# --------------------------------------------------------------------------- psycopg_pool


def test_psycopg_pool_leak_in_a_thread_is_sited_and_returned_after_all(pg: None) -> None:
    with psycopg_pool.ConnectionPool(pg_dsn(), min_size=1, max_size=2, open=True) as pool:
        got: list[Any] = []
        lines: list[int] = []

        def work() -> None:
            got.append(pool.getconn()); lines.append(here())  # noqa: E702

        t = threading.Thread(target=work, name="worker-leak")
        t.start()
        t.join()
        # the thread has ended holding it: PD110, without waiting for the leak threshold
        f = wait_finding("PD110", lines[0])
        assert f.site is not None and f.site.file.endswith(FILE)
        assert "worker-leak" in f.message  # the name recorded at checkout
        assert [h["kind"] for h in adapter_holds()] == ["checkout"]
        pool.putconn(got[0])  # given back by another thread after all
        assert adapter_holds() == []
        assert findings("PD101") == []
        [info] = [p for p in pooldoctor.report().pools
                  if p.get("name") == f"psycopg_pool:{pool.name}"]
        assert info["checkouts"] == 1 and info["peak_checked_out"] == 1
        assert info["max_size"] == 2


def test_psycopg_pool_clean_twin_reports_nothing(pg: None) -> None:
    with psycopg_pool.ConnectionPool(pg_dsn(), min_size=2, max_size=2, open=True) as pool:
        pool.wait(timeout=10)

        def work() -> None:
            for _ in range(5):
                with pool.connection() as conn:
                    conn.execute("SELECT 1")
                c = pool.getconn()
                pool.putconn(c)

        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert_clean()  # the pool's own connections are no raw holds either


def test_psycopg_pool_timeout_names_the_holders_and_keeps_its_type(pg: None) -> None:
    with psycopg_pool.ConnectionPool(pg_dsn(), min_size=0, max_size=2, open=True) as pool:
        a = pool.getconn(); line_a = here()  # noqa: E702
        box: list[Any] = []
        t = threading.Thread(target=lambda: box.append(pool.getconn()), name="holder-b")
        line_b = here() - 1
        t.start()
        t.join()
        line_c = here() + 2
        with pytest.raises(psycopg_pool.PoolTimeout) as ei:
            pool.getconn(timeout=0.2)
        text = str(ei.value)
        assert text.startswith("couldn't get a connection after 0.20 sec")
        assert f"{FILE}:{line_a} in " in text and f"{FILE}:{line_b} in " in text
        assert "MainThread" in text and "exhausted: size=2" in text
        f = wait_finding("PD103", line_c)
        assert [g["count"] for g in f.details["holders"]] == [1, 1]
        assert f.details["timeout_s"] == pytest.approx(0.2)
        pool.putconn(a)
        pool.putconn(box[0])
        assert adapter_holds() == []


def test_psycopg_pool_dropped_checkout_is_pd102(pg: None) -> None:
    with psycopg_pool.ConnectionPool(pg_dsn(), min_size=0, max_size=2, open=True) as pool:
        def drop() -> int:
            pool.getconn(); return here()  # noqa: E702

        line = drop()
        gc.collect()
        f = wait_finding("PD102", line)
        assert "psycopg_pool never gets it back" in f.message


@pytest.mark.parametrize("close_returns", [False, True])
def test_psycopg_pool_connection_closed_instead_of_returned(pg: None,
                                                           close_returns: bool) -> None:
    """``conn.close()`` on a lent connection: with ``close_returns=True`` psycopg_pool takes it
    back (nothing to report); without, the pool still counts it out: PD102 says it was closed."""
    with psycopg_pool.ConnectionPool(pg_dsn(), min_size=0, max_size=2, open=True,
                                     close_returns=close_returns) as pool:
        def close_it() -> int:
            conn = pool.getconn(); line = here()  # noqa: E702
            conn.close()
            return line

        line = close_it()
        gc.collect()
        GUARD.drain()
        if close_returns:
            assert findings("PD102") == [] and adapter_holds() == []
            assert pool.get_stats()["pool_size"] >= 1
        else:
            f = wait_finding("PD102", line)
            assert "was closed with close() instead of being returned" in f.message
            assert "psycopg_pool never gets it back" in f.message


async def test_async_psycopg_pool_leak_in_a_task_and_timeout(pg: None) -> None:
    pool = psycopg_pool.AsyncConnectionPool(pg_dsn(), min_size=0, max_size=1, open=False)
    await pool.open()
    try:
        async def leak() -> tuple[Any, int]:
            return await pool.getconn(), here()

        conn, line = await asyncio.create_task(leak(), name="task-leak")
        f = wait_finding("PD101", line)
        assert f.details["task"] == "task-leak"
        with pytest.raises(psycopg_pool.PoolTimeout) as ei:
            await pool.getconn(timeout=0.1)
        assert f"{FILE}:{line} in leak" in str(ei.value) and "task-leak" in str(ei.value)
        await pool.putconn(conn)
        async with pool.connection() as c2:
            await c2.execute("SELECT 1")
        assert adapter_holds() == []
    finally:
        await pool.close()


# --------------------------------------------------------------------------- asyncpg


async def test_asyncpg_pool_leak_timeout_and_clean_twin(pg: None) -> None:
    pool = await asyncpg.create_pool(pg_uri(), min_size=1, max_size=2)
    try:
        async with pool.acquire() as ok:  # the clean twin
            await ok.fetchval("SELECT 1")
        ok2 = await pool.acquire()
        await pool.release(ok2)
        assert adapter_holds() == []

        async def leak() -> tuple[Any, int]:
            return await pool.acquire(), here()

        a, line_a = await asyncio.create_task(leak(), name="task-a")
        b = await pool.acquire(); line_b = here()  # noqa: E702
        f = wait_finding("PD101", line_a)
        assert f.details["task"] == "task-a" and f.details["server_id"] > 0
        with pytest.raises(TimeoutError) as ei:
            await pool.acquire(timeout=0.1)
        text = str(ei.value)
        assert f"{FILE}:{line_a} in leak" in text and f"{FILE}:{line_b} in " in text
        assert "task-a" in text and "max_size=2" in text
        [p103] = findings("PD103")
        assert p103.details["error"] == "TimeoutError"
        await pool.release(a)
        await pool.release(b)
        assert adapter_holds() == []
        assert [h for h in adapter_holds("connection")] == []  # pool's own: no raw holds
    finally:
        await pool.close()


async def test_asyncpg_raw_connection_open_to_close(pg: None) -> None:
    conn = await asyncpg.connect(pg_uri()); line = here()  # noqa: E702
    [h] = adapter_holds("connection")
    assert h["site"]["line"] == line and h["pool"] == "asyncpg" and h["task"]
    assert h["server_id"] == conn.get_server_pid()
    await conn.close()
    c2 = await asyncpg.connect(pg_uri())
    c2.terminate()
    assert_clean()


async def test_asyncpg_raw_connection_closed_by_the_server_ends_the_hold(pg: None) -> None:
    conn = await asyncpg.connect(pg_uri())
    pid = conn.get_server_pid()
    other = await asyncpg.connect(pg_uri())
    await other.fetchval("SELECT pg_terminate_backend($1)", pid)
    await other.close()
    for _ in range(500):  # the watchdog's sweep notices (it polls every 20 ms here)
        if not adapter_holds("connection"):
            break
        await asyncio.sleep(0.01)
    assert adapter_holds("connection") == []


# --------------------------------------------------------------------------- psycopg2.pool


def test_psycopg2_threaded_pool_exhausted_names_holders(pg: None) -> None:
    args = pg_args()
    pool = psycopg2.pool.ThreadedConnectionPool(0, 2, **args)
    try:
        a = pool.getconn(); line_a = here()  # noqa: E702
        box: list[Any] = []
        t = threading.Thread(target=lambda: box.append(pool.getconn()), name="p2-holder")
        line_b = here() - 1
        t.start()
        t.join()
        with pytest.raises(psycopg2.pool.PoolError) as ei:
            pool.getconn()
        text = str(ei.value)
        assert text.startswith("connection pool exhausted")
        assert f"{FILE}:{line_a}" in text and f"{FILE}:{line_b}" in text
        pool.putconn(a)
        pool.putconn(box[0])
        k = pool.getconn(key="k")
        assert pool.getconn(key="k") is k
        assert len(adapter_holds()) == 1  # the same key, the same connection: one hold
        pool.putconn(k, key="k")
        assert adapter_holds() == []
        assert findings("PD103")
    finally:
        pool.closeall()


def test_psycopg2_simple_pool_clean_twin(pg: None) -> None:
    pool = psycopg2.pool.SimpleConnectionPool(1, 2, **pg_args())
    try:
        for _ in range(5):
            c = pool.getconn()
            c.cursor().execute("SELECT 1")
            pool.putconn(c)
        assert_clean()
    finally:
        pool.closeall()


# --------------------------------------------------------------------------- psycopg async


async def test_psycopg_async_connection_open_to_close(pg: None) -> None:
    conn = await psycopg.AsyncConnection.connect(pg_dsn()); line = here()  # noqa: E702
    [h] = adapter_holds("connection")
    assert h["site"]["line"] == line and h["pool"] == "psycopg"
    f = wait_finding("PD101", line)
    assert f.details["task"]
    await conn.close()
    async with await psycopg.AsyncConnection.connect(pg_dsn()) as c2:
        await c2.execute("SELECT 1")
    assert adapter_holds() == []


@pytest.mark.parametrize("ended_by_server", [True, False])
async def test_psycopg_async_collected_after_the_server_ended_it(pg: None,
                                                                 ended_by_server: bool) -> None:
    """Collected before the watchdog's sweep saw it closed: no PD102 (psycopg's own
    ``check_connection`` test does this); one still open when dropped stays a PD102."""
    conn = await psycopg.AsyncConnection.connect(pg_dsn(), autocommit=True); line = here()  # noqa: E702
    if ended_by_server:
        async with await psycopg.AsyncConnection.connect(pg_dsn(), autocommit=True) as other:
            await other.execute("SELECT pg_terminate_backend(%s, 5000)",
                                [conn.info.backend_pid])
        with pytest.raises(psycopg.OperationalError):
            await conn.execute("SELECT 1")
        assert conn.closed
    del conn
    gc.collect()
    if not ended_by_server:
        wait_finding("PD102", line)  # polled: the watchdog's sweep may hold it a moment longer
    GUARD.drain()
    assert adapter_holds() == []
    # (PD101 may come too: the fixture's leak threshold is 0.2 s, a busy machine takes that)
    assert [f.code for f in findings("PD102")] == ([] if ended_by_server else ["PD102"])


# --------------------------------------------------------------------------- DBUtils PersistentDB


@pytest.mark.parametrize("creator", ["psycopg", "psycopg2"])
def test_dbutils_persistent_db_on_postgresql(pg: None, creator: str) -> None:
    """PersistentDB over psycopg and psycopg2: a worker thread that ended while DBUtils keeps
    its connection open is PD110 at its line; the main thread's persistent connection is
    kept, not a leak; the driver connections are DBUtils' own, not raw holds."""
    from dbutils.persistent_db import PersistentDB

    module = psycopg if creator == "psycopg" else sys.modules["psycopg2"]
    db = PersistentDB(module, **pg_args())
    lines: list[int] = []

    def work() -> None:
        c = db.connection(); lines.append(here())  # noqa: E702
        cur = c.cursor()
        cur.execute("SELECT 1")
        cur.close()
        c.commit()

    t = threading.Thread(target=work, name="pg-persistent")
    t.start()
    t.join(10)
    main = db.connection()
    main.cursor().execute("SELECT 1")
    try:
        assert {h["kind"] for h in adapter_holds()} == {"checkout"}  # no raw holds
        GUARD.tick()
        GUARD.tick()
        f = wait_finding("PD110", lines[0])
        assert f.details["thread"] == "pg-persistent" and f.details.get("server_id")
        assert "(DBUtils keeps one per thread)" in f.message
        assert [x.code for x in findings()] == ["PD110"]
        assert GUARD.check_exit() == []
    finally:
        db.thread.connection._close()
    del t
    gc.collect()  # the Thread object goes: DBUtils closes the worker's connection
    assert adapter_holds() == []


# --------------------------------------------------------------------------- faults


def test_failing_hooks_never_break_a_checkout_nor_lose_a_slot(
        pg: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("hook failure")

    before = GUARD.internal_errors
    monkeypatch.setattr(protocol, "capture", boom)
    monkeypatch.setattr(protocol, "holders_summary", boom)
    with psycopg_pool.ConnectionPool(pg_dsn(), min_size=0, max_size=2, open=True) as pool:
        for _ in range(3):  # every slot comes back: three rounds of the whole pool
            conns = [pool.getconn(), pool.getconn()]
            for c in conns:
                pool.putconn(c)
        a, b = pool.getconn(), pool.getconn()
        with pytest.raises(psycopg_pool.PoolTimeout):
            pool.getconn(timeout=0.05)
        pool.putconn(a)
        pool.putconn(b)
        assert pool.get_stats()["pool_available"] == 2
    assert GUARD.internal_errors > before


class _BrokenCounter:
    def __iter__(self) -> _BrokenCounter:
        return self

    def __next__(self) -> int:
        raise RuntimeError("counter failure")


def test_a_failing_fast_path_never_breaks_a_checkout_nor_loses_a_slot(pg: None) -> None:
    """The one-call checkout (C when built) failing inside: counted, the careful path takes
    over (failing too here), the user's getconn/putconn work and every slot comes back."""
    before = GUARD.internal_errors
    with psycopg_pool.ConnectionPool(pg_dsn(), min_size=0, max_size=2, open=True) as pool:
        pool.putconn(pool.getconn())  # the pool's stats and the connection's server id
        st = protocol.stats_for_pool(pool)
        assert st is not None
        counter, st.checkout_counter = st.checkout_counter, _BrokenCounter()
        try:
            for _ in range(3):
                conns = [pool.getconn(), pool.getconn()]
                for c in conns:
                    pool.putconn(c)
            assert pool.get_stats()["pool_available"] == 2
        finally:
            st.checkout_counter = counter  # the report reads it
    assert GUARD.internal_errors > before
    assert adapter_holds() == []
    p2 = psycopg2.pool.ThreadedConnectionPool(0, 1, **pg_args())
    try:
        p2.putconn(p2.getconn())
        st2 = protocol.stats_for_pool(p2)
        assert st2 is not None
        counter, st2.checkout_counter = st2.checkout_counter, _BrokenCounter()
        try:
            for _ in range(3):
                p2.putconn(p2.getconn())  # one slot: a lost one would raise PoolError
        finally:
            st2.checkout_counter = counter
    finally:
        p2.closeall()
    assert adapter_holds() == []


# --------------------------------------------------------------------------- pooldoctor run


def _run(tmp_path: Path, body: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any],
                                                 Path]:
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent(body))
    report = tmp_path / "r.json"
    out = subprocess.run([sys.executable, "-m", "pooldoctor.cli", "run", "-q",
                          "--leak-threshold", "1", "--report", str(report), "--", str(prog)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    assert out.returncode == 0, out.stderr
    return out, json.loads(report.read_text()), prog


def _line(prog: Path, marker: str) -> int:
    return next(n for n, t in enumerate(prog.read_text().splitlines(), 1) if marker in t)


def test_run_psycopg_pool_leak_and_clean_twin(pg_url: str, tmp_path: Path) -> None:
    _, data, prog = _run(tmp_path, f"""
        import threading
        import psycopg_pool
        pool = psycopg_pool.ConnectionPool({pg_dsn()!r}, min_size=1, max_size=2, open=True)
        with pool.connection() as ok:
            ok.execute("SELECT 1")
        leaked = pool.getconn()  # LEAK
        done = threading.Event()
        done.wait(1.5)
        pool.putconn(leaked)
        pool.close()
    """)
    codes = sorted(f["code"] for f in data["findings"])
    assert codes == ["PD101"], data["findings"]
    [f] = data["findings"]
    assert f["site"]["line"] == _line(prog, "# LEAK")
    assert f["details"]["returned_count"] == 1
    [p] = [p for p in data["pools"] if p.get("library") == "psycopg_pool"]
    assert p["checkouts"] == 2


def test_run_asyncpg_leak_at_exit(pg_url: str, tmp_path: Path) -> None:
    _, data, prog = _run(tmp_path, f"""
        import asyncio
        import asyncpg

        async def main():
            pool = await asyncpg.create_pool({pg_uri()!r}, min_size=1, max_size=2)
            async with pool.acquire() as ok:
                await ok.fetchval("SELECT 1")
            global kept
            kept = await asyncpg.connect({pg_uri()!r})  # LEAK

        asyncio.run(main())
    """)
    [f] = data["findings"]
    assert f["code"] == "PD105" and f["site"]["line"] == _line(prog, "# LEAK")
    assert f["details"]["kind"] == "connection" and f["details"]["task"]


async def test_sqlalchemy_async_engines_connections_are_checkouts_not_raw_holds(
        pg: None, pg_url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    for driver in ("asyncpg", "psycopg_async"):
        engine = create_async_engine(pg_url.replace("+psycopg", f"+{driver}"))
        try:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
                assert [h["kind"] for h in adapter_holds()] == ["checkout"]
            assert adapter_holds() == []  # the pool's idle connection is no raw hold
        finally:
            await engine.dispose()


# --------------------------------------------------------------------------- stress


def test_hammer_psycopg_pool_threads_random_errors_no_lost_slot(pg: None) -> None:
    class Boom(Exception):
        pass

    errors: list[BaseException] = []
    with psycopg_pool.ConnectionPool(pg_dsn(), min_size=0, max_size=4, timeout=30,
                                     open=True) as pool:
        def work(seed: int) -> None:
            r = random.Random(seed)
            for _ in range(15):
                try:
                    if r.random() < 0.5:
                        with pool.connection() as conn:
                            conn.execute("SELECT 1")
                            if r.random() < 0.3:
                                raise Boom()
                    else:
                        c = pool.getconn()
                        try:
                            if r.random() < 0.3:
                                raise Boom()
                        finally:
                            pool.putconn(c)
                except Boom:
                    pass
                except Exception as e:  # pragma: no cover - surfaced below
                    errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        gc.collect()
        GUARD.tick()
        assert [f.code for f in findings() if f.code != "PD109"] == []
        assert adapter_holds() == []
        conns = [pool.getconn(timeout=5) for _ in range(4)]  # every slot is usable
        for c in conns:
            pool.putconn(c)
        [info] = [p for p in pooldoctor.report().pools
                  if p.get("name") == f"psycopg_pool:{pool.name}"]
        assert info["checkouts"] == 12 * 15 + 4 and info["checked_out"] == 0


async def test_hammer_asyncpg_tasks_cancelled_no_lost_slot(pg: None) -> None:
    pool = await asyncpg.create_pool(pg_uri(), min_size=0, max_size=3)
    try:
        async def once(r: random.Random) -> None:
            async with pool.acquire(timeout=5) as conn:
                await conn.fetchval("SELECT pg_sleep($1)", r.choice([0.0, 0.01, 0.03]))

        async def worker(seed: int) -> None:
            r = random.Random(seed)
            for _ in range(8):
                try:
                    await asyncio.wait_for(once(r), timeout=r.choice([0.005, 0.02, 2.0]))
                except (asyncio.TimeoutError, asyncpg.PostgresError):
                    pass

        await asyncio.gather(*(worker(i) for i in range(10)))
        gc.collect()
        GUARD.tick()
        assert [f.code for f in findings() if f.code not in ("PD109",)] == []
        assert adapter_holds() == []
        conns = [await pool.acquire(timeout=10) for _ in range(3)]  # no slot lost
        for c in conns:
            await pool.release(c)
        assert adapter_holds() == []
    finally:
        await pool.close()


async def test_failing_hooks_never_break_an_asyncpg_checkout(
        pg: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("hook failure")

    before = GUARD.internal_errors
    for name in ("capture", "holders_summary", "wait_begins"):
        monkeypatch.setattr(protocol, name, boom)
    pool = await asyncpg.create_pool(pg_uri(), min_size=0, max_size=2)
    try:
        for _ in range(3):
            conns = [await pool.acquire(), await pool.acquire()]
            for c in conns:
                await pool.release(c)
        a, b = await pool.acquire(), await pool.acquire()
        with pytest.raises(TimeoutError):
            await pool.acquire(timeout=0.05)
        await pool.release(a)
        await pool.release(b)
        assert pool.get_idle_size() == 2
        raw = await asyncpg.connect(pg_uri())  # raw holds go through the same capture
        await raw.close()
    finally:
        await pool.close()
    assert GUARD.internal_errors > before
    assert adapter_holds() == []
