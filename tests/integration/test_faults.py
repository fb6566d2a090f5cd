"""Faults: a server restarted mid-run, connections killed by the server, checkouts while the
server is down, and the guard's own hooks failing.

In every case the program must see exactly the exceptions it sees without the guard (each
scenario runs bare, then guarded, and the outcomes are compared), no pool slot may be lost,
the guard's ledger and counters must match the pool, and nothing may be reported falsely.

The restart and down-server tests use a PostgreSQL cluster of their own (``initdb`` and
``pg_ctl`` in a temporary folder, on a free port); the shared server on 5432 is untouched.
Server-side kills on the shared servers only ever target this test's own connections.
"""

from __future__ import annotations

import contextlib
import gc
import glob
import logging
import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import exc

import pooldoctor
from pooldoctor.guard import GUARD
from pooldoctor.runtime import sqlalchemy as pdsa
from pooldoctor.runtime.sqlalchemy import pools as pdsa_pools
from pooldoctor.runtime.sqlalchemy import waits as pdsa_waits

REQUIRE = os.environ.get("POOLDOCTOR_REQUIRE_SERVERS") == "1"
QUIET = {"log": False, "exit_check": False}

# --------------------------------------------------------------------------- helpers


def outcome(fn: Callable[[], Any]) -> str:
    """``"ok"`` or the exception's class name (what the program sees)."""
    try:
        fn()
    except Exception as e:
        invalidated = getattr(e, "connection_invalidated", None)
        return f"{type(e).__module__}.{type(e).__qualname__}" + (
            " (invalidated)" if invalidated else "")
    return "ok"


def settle() -> None:
    gc.collect()
    GUARD.drain()


def assert_guard_agrees(engine: sa.Engine, errors_before: int, *,
                        allowed: tuple[str, ...] = ()) -> None:
    """Ledger empty, counters equal to the pool's, no finding outside ``allowed``."""
    settle()
    info = pdsa.stats_for(engine)
    assert info is not None
    assert [h.describe()["site"] for h in GUARD.ledger.holds() if h.pool is info] == []
    assert engine.pool.checkedout() == 0 == info.checked_out  # type: ignore[attr-defined]
    assert info.waiting == 0
    found = [(f.code, f.message) for f in pooldoctor.report().findings
             if f.code not in allowed]
    assert found == []
    assert GUARD.internal_errors == errors_before


def assert_all_slots_free(engine: sa.Engine) -> None:
    """Check out pool_size + max_overflow connections at once: no slot is lost."""
    pool = engine.pool
    n = pool.size() + pool._max_overflow  # type: ignore[attr-defined]
    with contextlib.ExitStack() as stack:
        for _ in range(n):
            stack.enter_context(engine.connect()).exec_driver_sql("SELECT 1")


def bare_and_guarded(scenario: Callable[[], tuple[list[str], sa.Engine]]
                     ) -> tuple[list[str], list[str], sa.Engine]:
    """Run ``scenario`` without, then with the guard: both outcomes, the guarded engine.

    The bare run's engine is disposed and dropped first, so that the guarded run does not
    see two engines for one URL.
    """
    bare, engine = scenario()
    engine.dispose()
    del engine
    gc.collect()
    pooldoctor.instrument(leak_threshold=30, **QUIET)
    guarded, engine = scenario()
    return bare, guarded, engine


# --------------------------------------------------------------------------- own cluster


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Cluster:
    """A throw-away PostgreSQL cluster: initdb in a temp folder, its own port, trust auth."""

    def __init__(self, bindir: str, root: Path) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = [*self.as_postgres, os.path.join(self.bindir, args[0]), *args[1:]]
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "--no-instructions")

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c max_connections=40")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l",
                  str(self.root / "log"), "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found or (os.geteuid() == 0 and shutil.which("runuser") is None):
        reason = "no initdb (or no runuser to run it as postgres)"
        if REQUIRE:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="pd-faults-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    c = Cluster(os.path.dirname(found[-1]), root)
    try:
        c.init()
        c.start()
        yield c
    finally:
        with contextlib.suppress(Exception):
            c.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- restart


def _restart_scenario(cluster: Cluster, pre_ping: bool) -> tuple[list[str], sa.Engine]:
    """Use the pool, restart the server with one connection held and two idle, go on."""
    engine = sa.create_engine(cluster.url, pool_size=3, max_overflow=0, pool_timeout=5,
                              pool_pre_ping=pre_ping)
    seen: list[str] = []

    def select(conn: sa.Connection) -> None:
        conn.exec_driver_sql("SELECT 1")

    def use() -> None:
        with engine.connect() as conn:
            select(conn)

    # three connections in the pool, one of them held across the restart
    idle = [engine.connect() for _ in range(3)]
    for c in idle:
        select(c)
    held = idle.pop()
    for c in idle:
        c.close()
    cluster.restart()
    seen.append(outcome(lambda: select(held)))  # the held one is dead
    seen.append(outcome(held.close))
    for _ in range(4):  # idle ones are dead too; the pool recovers
        seen.append(outcome(use))
    return seen, engine


@pytest.mark.parametrize("pre_ping", [False, True], ids=["plain", "pre_ping"])
def test_server_restart_mid_run(cluster: Cluster, guard: object, pre_ping: bool) -> None:
    errors0 = GUARD.internal_errors
    bare, guarded, e2 = bare_and_guarded(lambda: _restart_scenario(cluster, pre_ping))
    try:
        assert guarded == bare
        assert bare[0] != "ok"  # the restart really broke the held connection
        assert bare[-1] == "ok"  # and the pool recovered
        assert_guard_agrees(e2, errors0)
        assert_all_slots_free(e2)
        info = pdsa.stats_for(e2)
        assert info is not None and info.checkouts >= 3 + bare.count("ok")
    finally:
        e2.dispose()


def _down_scenario(cluster: Cluster) -> tuple[list[str], sa.Engine]:
    """Checkouts while the server is stopped fail; after it is back, every slot works."""
    engine = sa.create_engine(cluster.url, pool_size=2, max_overflow=1, pool_timeout=5)
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    seen: list[str] = []
    cluster.stop()
    try:
        for _ in range(5):
            seen.append(outcome(lambda: _select(engine)))
        seen.append(outcome(lambda: engine.raw_connection().close()))
    finally:
        cluster.start()
    for _ in range(2):
        seen.append(outcome(lambda: engine.connect().close()))
    return seen, engine


def test_checkouts_while_the_server_is_down(cluster: Cluster, guard: object) -> None:
    errors0 = GUARD.internal_errors
    bare, guarded, e2 = bare_and_guarded(lambda: _down_scenario(cluster))
    try:
        assert guarded == bare
        assert all("OperationalError" in o for o in bare[:6]), bare
        assert bare[6:] == ["ok", "ok"]
        assert_guard_agrees(e2, errors0)
        assert_all_slots_free(e2)
    finally:
        e2.dispose()


def test_restart_under_threads(cluster: Cluster, guard: object) -> None:
    """16 threads keep working while the server restarts: only errors they would see bare."""
    pooldoctor.instrument(leak_threshold=30, **QUIET)
    errors0 = GUARD.internal_errors
    engine = sa.create_engine(cluster.url, pool_size=4, max_overflow=2, pool_timeout=10)
    stop = threading.Event()
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def work() -> None:
        while not stop.is_set():
            o = outcome(lambda: _select(engine))
            with lock:
                seen[o] = seen.get(o, 0) + 1

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    try:
        cluster.restart()
        # keep going until the threads have succeeded again after the restart
        ok_before = seen.get("ok", 0)
        deadline = time.monotonic() + 20
        while seen.get("ok", 0) < ok_before + 50 and time.monotonic() < deadline:
            stop.wait(0.02)
    finally:
        stop.set()
        for t in threads:
            t.join()
    try:
        assert seen.get("ok", 0) > 0
        bad = {k: v for k, v in seen.items()
               if k != "ok" and not k.startswith(("sqlalchemy.exc.OperationalError",
                                                  "sqlalchemy.exc.InterfaceError"))}
        assert bad == {}, seen
        assert_guard_agrees(engine, errors0, allowed=("PD109",))
        assert_all_slots_free(engine)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- server kills


def _kill_scenario(url: str, kill_sql: str, ident: Callable[[Any], int],
                   admin_url: str) -> tuple[list[str], sa.Engine]:
    """Our own connection killed by the server while checked out, and while idle in the pool."""
    engine = sa.create_engine(url, pool_size=2, max_overflow=0, pool_timeout=5)
    admin = sa.create_engine(admin_url, poolclass=sa.pool.NullPool,
                             isolation_level="AUTOCOMMIT")
    seen: list[str] = []

    def kill(sid: int) -> None:
        with admin.connect() as a:
            a.exec_driver_sql(kill_sql % sid)

    def select(conn: sa.Connection) -> Callable[[], Any]:
        return lambda: conn.exec_driver_sql("SELECT 1")

    # killed while checked out, in a transaction
    conn = engine.connect()
    seen.append(outcome(select(conn)))
    kill(ident(conn.connection.driver_connection))
    seen.append(outcome(select(conn)))
    seen.append(outcome(conn.close))
    # killed while checked out, outside a transaction
    conn = engine.connect()
    seen.append(outcome(select(conn)))
    seen.append(outcome(conn.commit))
    kill(ident(conn.connection.driver_connection))
    seen.append(outcome(conn.close))
    # killed while idle in the pool
    conn = engine.connect()
    sid = ident(conn.connection.driver_connection)
    seen.append(outcome(select(conn)))
    seen.append(outcome(conn.close))
    kill(sid)
    for _ in range(4):  # dead connections come out of the pool until SQLAlchemy notices
        seen.append(outcome(lambda: _select(engine)))
    admin.dispose()
    return seen, engine


def _select(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")


def _pg_backend(driver_conn: Any) -> int:
    pid: int = driver_conn.info.backend_pid
    return pid


def _mysql_thread(driver_conn: Any) -> int:
    tid: int = driver_conn.thread_id()
    return tid


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_connection_killed_by_the_server(backend: str, request: pytest.FixtureRequest,
                                         guard: object) -> None:
    if backend == "postgresql":
        url = request.getfixturevalue("pg_url")
        kill_sql, ident = "SELECT pg_terminate_backend(%d)", _pg_backend
        admin_url = url + "?application_name=pooldoctor-faults-admin"
    else:
        url = request.getfixturevalue("mysql_url")
        kill_sql, ident = "KILL %d", _mysql_thread
        admin_url = url + "?charset=utf8mb4"  # another URL: not one more engine for ``url``
    errors0 = GUARD.internal_errors
    bare, guarded, e2 = bare_and_guarded(
        lambda: _kill_scenario(url, kill_sql, ident, admin_url))
    try:
        assert guarded == bare
        assert bare[1] != "ok" and bare[-1] == "ok", bare
        assert_guard_agrees(e2, errors0)
        assert_all_slots_free(e2)
    finally:
        e2.dispose()


def test_server_id_names_the_backend_to_kill(pg_url: str, guard: object) -> None:
    """The hold's server id is the real backend pid: killing it kills this very connection."""
    pooldoctor.instrument(**QUIET)
    engine = sa.create_engine(pg_url, pool_size=1, max_overflow=0)
    admin = sa.create_engine(pg_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        conn = engine.connect()
        (hold,) = [h for h in pooldoctor.holds() if h["pool"] == pdsa.stats_for(engine).label]
        with admin.connect() as a:
            killed = a.exec_driver_sql(
                f"SELECT pg_terminate_backend({int(hold['server_id'])})").scalar()
        assert killed is True
        with pytest.raises(exc.OperationalError):
            conn.exec_driver_sql("SELECT 1")
        conn.close()
        assert pooldoctor.holds() == []
    finally:
        engine.dispose()
        admin.dispose()


# --------------------------------------------------------------------------- hooks failing


class Broken:
    """An observer whose every method raises."""

    calls = 0

    def _fail(self, *args: Any) -> None:
        Broken.calls += 1
        raise RuntimeError("observer broken on purpose")

    on_checkout = on_checkin = on_wait = on_timeout = on_connect = on_finding = _fail


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("pooldoctor internal broken on purpose")


@pytest.fixture
def quiet_internal_log() -> Iterator[None]:
    log = logging.getLogger("pooldoctor")
    was = log.disabled
    log.disabled = True
    yield
    log.disabled = was


def _everyday(engine: sa.Engine) -> list[str]:
    """Checkouts, transactions, errors, an invalidation, a timeout: what the program sees."""
    seen: list[str] = []

    def plain() -> None:
        with engine.connect() as c:
            c.exec_driver_sql("SELECT 1")

    def txn() -> None:
        with engine.begin() as c:
            c.exec_driver_sql("SELECT 1")

    def bad_sql() -> None:
        with engine.connect() as c:
            c.exec_driver_sql("SELECT * FROM pd_faults_no_such_table")

    def boom_inside() -> None:
        with engine.connect():
            raise KeyError("program error")

    def invalidate() -> None:
        with engine.connect() as c:
            c.invalidate()

    def raw() -> None:
        r = engine.raw_connection()
        try:
            cur = r.cursor()
            cur.execute("SELECT 1")
            cur.close()
        finally:
            r.close()

    def timeout() -> None:
        held = [engine.connect() for _ in range(3)]
        try:
            engine.connect()
        finally:
            for h in held:
                h.close()

    for fn in (plain, txn, bad_sql, boom_inside, invalidate, raw, timeout, plain):
        seen.append(outcome(fn))
    return seen


class _FailingCount:
    """A pool's checkout counter that fails after the hold is made (inside the C code,
    when it is built)."""

    def __iter__(self) -> _FailingCount:
        return self

    def __next__(self) -> int:
        raise RuntimeError("injected failure")

    def __repr__(self) -> str:
        return "count(1)"


class _PopFails(dict):  # type: ignore[type-arg]
    """A pool's table of holds that fails when a checkin takes a hold out."""

    def pop(self, *args: Any) -> Any:
        raise RuntimeError("injected failure")


BREAKS: dict[str, Callable[[pytest.MonkeyPatch, sa.Engine], object]] = {
    "observer": lambda mp, e: GUARD.observers.append(Broken()),
    "capture": lambda mp, e: mp.setattr(GUARD, "depth", "eight"),
    "hold": lambda mp, e: mp.setattr(pdsa_pools, "_fast_checkout", _boom),
    "counter": lambda mp, e: mp.setattr(pdsa.stats_for(e), "checkout_counter", _FailingCount()),
    "checkin": lambda mp, e: mp.setattr(pdsa.stats_for(e), "holds", _PopFails()),
    "emit": lambda mp, e: mp.setattr(GUARD.collector, "add", _boom),
    "server_id": lambda mp, e: mp.setattr(pdsa_pools, "server_id", _boom),
    "holders": lambda mp, e: mp.setattr(pdsa_waits, "holders_summary", _boom),
}


@pytest.mark.parametrize("where", sorted(BREAKS))
def test_a_failing_hook_never_breaks_the_program(
        where: str, pg_url: str, guard: object, monkeypatch: pytest.MonkeyPatch,
        quiet_internal_log: None) -> None:
    def make() -> sa.Engine:
        return sa.create_engine(pg_url, pool_size=2, max_overflow=1, pool_timeout=0.2)

    e1 = make()
    bare = _everyday(e1)
    e1.dispose()
    del e1
    gc.collect()
    pooldoctor.instrument(wait_threshold=0.05, **QUIET)
    try:
        errors0 = GUARD.internal_errors
        e2 = make()
        BREAKS[where](monkeypatch, e2)
        guarded = _everyday(e2)
        assert_all_slots_free(e2)
        monkeypatch.undo()
        GUARD.observers[:] = [o for o in GUARD.observers if not isinstance(o, Broken)]
        assert guarded == bare
        assert bare[6].startswith("sqlalchemy.exc.TimeoutError"), bare
        assert GUARD.internal_errors > errors0, "the failure was not even reached"
        assert e2.pool.checkedout() == 0  # type: ignore[attr-defined]
        settle()
        info = pdsa.stats_for(e2)
        # nothing half-recorded is left behind to be reported later
        assert [h.describe()["site"] for h in GUARD.ledger.holds() if h.pool is info] == []
        assert [f.code for f in pooldoctor.report().findings
                if f.code not in ("PD103", "PD109")] == []
        # and the guard works again once the fault is gone
        c = e2.connect()
        assert [h for h in GUARD.ledger.holds() if h() is c.connection] != []
        c.close()
        assert [h for h in GUARD.ledger.holds() if h.pool is info] == []
        e2.dispose()
    finally:
        GUARD.observers[:] = [o for o in GUARD.observers if not isinstance(o, Broken)]


def test_hammer_with_a_flaky_observer(any_url: str, guard: object,
                                      quiet_internal_log: None) -> None:
    """32 threads, random program errors and an observer failing at random: no false finding,
    no lost slot, ledger and counters exact."""

    class Flaky:
        def __init__(self) -> None:
            self.r = random.Random(3)

        def on_checkout(self, info: Any, hold: Any) -> None:
            if self.r.random() < 0.3:
                raise RuntimeError("flaky")


        def on_checkin(self, info: Any, hold: Any, held_s: float) -> None:
            if self.r.random() < 0.3:
                raise RuntimeError("flaky")

    pooldoctor.instrument(leak_threshold=20, transaction_threshold=20, **QUIET)
    GUARD.observers.append(Flaky())
    engine = sa.create_engine(any_url, pool_size=4, max_overflow=4, pool_timeout=30)
    made = [0] * 32

    def work(i: int) -> None:
        r = random.Random(i)
        for _ in range(40):
            try:
                with engine.connect() as conn:
                    made[i] += 1
                    conn.exec_driver_sql("SELECT 1")
                    if r.random() < 0.3:
                        raise ValueError("program error")
                    if r.random() < 0.05:
                        conn.invalidate()
            except ValueError:
                pass

    try:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        GUARD.observers[:] = [o for o in GUARD.observers if not isinstance(o, Flaky)]
        settle()
        info = pdsa.stats_for(engine)
        assert info is not None
        assert info.checkouts == sum(made) == 32 * 40
        assert engine.pool.checkedout() == 0 == info.checked_out  # type: ignore[attr-defined]
        assert pooldoctor.holds() == []
        assert [f.code for f in pooldoctor.report().findings if f.code != "PD109"] == []
        assert_all_slots_free(engine)
    finally:
        GUARD.observers[:] = [o for o in GUARD.observers if not isinstance(o, Flaky)]
        engine.dispose()


# --------------------------------------------------------------------------- cancellation


async def _cancel_scenario(url: str) -> tuple[set[str], Any]:
    """16 tasks whose checkouts and queries are cancelled at random by asyncio.wait_for."""
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, pool_size=4, max_overflow=2, pool_timeout=5)
    sleep = "SELECT pg_sleep(%s)" if url.startswith("postgresql") else "SELECT SLEEP(%s)"
    seen: set[str] = set()

    async def once(r: random.Random) -> None:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(sleep % r.choice(["0", "0.01", "0.05"]))

    async def worker(i: int) -> None:
        r = random.Random(i)
        for _ in range(12):
            try:
                await asyncio.wait_for(once(r), timeout=r.choice([0.005, 0.02, 1.0]))
                seen.add("ok")
            except Exception as e:
                seen.add(type(e).__name__)

    await asyncio.gather(*(worker(i) for i in range(16)))
    return seen, engine


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_asyncio_cancellation(backend: str, request: pytest.FixtureRequest, guard: object,
                              caplog: pytest.LogCaptureFixture) -> None:
    """Cancelled checkouts and queries: same error types, no hold or slot left behind."""
    import asyncio

    url = request.getfixturevalue("pg_url" if backend == "postgresql" else "mysql_url")
    aurl = url.replace("+psycopg", "+asyncpg").replace("+pymysql", "+aiomysql")
    caplog.set_level(logging.CRITICAL)  # asyncpg logs the connections it loses on cancel

    async def run(guarded: bool) -> set[str]:
        if guarded:
            pooldoctor.instrument(**QUIET)
        errors0 = GUARD.internal_errors
        seen, engine = await _cancel_scenario(aurl)
        try:
            if guarded:
                settle()
                info = pdsa.stats_for(engine)
                assert info is not None
                assert [h for h in GUARD.ledger.holds() if h.pool is info] == []
                pool = engine.sync_engine.pool
                assert pool.checkedout() == 0 == info.checked_out
                assert [f.code for f in pooldoctor.report().findings if f.code != "PD109"] == []
                assert GUARD.internal_errors == errors0
                async with contextlib.AsyncExitStack() as stack:  # every slot is usable
                    for _ in range(6):
                        c = await stack.enter_async_context(engine.connect())
                        await c.exec_driver_sql("SELECT 1")
        finally:
            await engine.dispose()
        return seen

    bare = asyncio.run(run(False))
    guarded = asyncio.run(run(True))
    assert guarded == bare == {"ok", "TimeoutError"}
