"""The guard across processes and entry points: run, exit, fork, plugin, asyncio, failures."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

import pooldoctor
from pooldoctor.findings import Finding
from pooldoctor.guard import GUARD
from pooldoctor.runtime import sqlalchemy as guard_sa
from pooldoctor.runtime.sqlalchemy import pools as guard_pools

from .test_runtime_guard import QUIET, findings, here, wait_for


def pooldoctor_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pooldoctor.cli", *args], capture_output=True,
                          text=True, cwd=cwd, check=False, timeout=120)


def script(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "prog.py"
    p.write_text(textwrap.dedent(body))
    return p


def line_of(path: Path, marker: str) -> int:
    for n, text in enumerate(path.read_text().splitlines(), 1):
        if marker in text:
            return n
    raise AssertionError(marker)


def test_run_reports_exit_leak_and_passes_exit_code(tmp_path: Path, any_url: str) -> None:
    prog = script(tmp_path, f"""
        import sqlalchemy as sa, sys
        engine = sa.create_engine({any_url!r})
        kept = engine.connect()  # LEAK
        with engine.connect() as ok:
            ok.exec_driver_sql("SELECT 1")
        sys.exit(3)
    """)
    report = tmp_path / "r.json"
    out = pooldoctor_cli("run", "-q", "--report", str(report), "--", str(prog), cwd=tmp_path)
    assert out.returncode == 3, out.stderr
    data = json.loads(report.read_text())
    assert data["schema"] == "pooldoctor.report/1"
    [f] = data["findings"]
    assert f["code"] == "PD105"
    assert f["site"]["file"] == str(prog) and f["site"]["line"] == line_of(prog, "# LEAK")
    assert data["pools"][0]["checkouts"] == 2
    assert "PD105 error" in out.stderr and "prog.py:" in out.stderr
    assert "hint:" in out.stderr


def test_run_clean_program_and_fail_on_findings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    clean = script(tmp_path, f"""
        import sqlalchemy as sa
        engine = sa.create_engine({url!r})
        with engine.connect() as c:
            c.exec_driver_sql("SELECT 1")
    """)
    out = pooldoctor_cli("run", "--fail-on-findings", "--", str(clean))
    assert out.returncode == 0, out.stderr
    assert "pooldoctor: no findings" in out.stderr
    leaky = tmp_path / "leaky.py"
    leaky.write_text(clean.read_text() + "kept = engine.connect()\n")
    out = pooldoctor_cli("run", "-q", "--fail-on-findings", "--format", "json", "--",
                         str(leaky))
    assert out.returncode == 99
    assert json.loads(out.stderr)["findings"][0]["code"] == "PD105"


def test_run_collects_findings_from_forked_children_that_os_exit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    prog = script(tmp_path, f"""
        import os, time, sqlalchemy as sa
        engine = sa.create_engine({url!r})
        with engine.connect() as c:
            c.exec_driver_sql("SELECT 1")
        pids = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                conn = engine.connect()  # CHILD
                time.sleep(0.3)
                os._exit(0)
            pids.append(pid)
        for pid in pids:
            os.waitpid(pid, 0)
    """)
    report = tmp_path / "r.json"
    out = pooldoctor_cli("run", "-q", "--leak-threshold", "0.1", "--report", str(report), "--",
                         str(prog))
    assert out.returncode == 0, out.stderr
    data = json.loads(report.read_text())
    by_code = {f["code"]: f for f in data["findings"]}
    line = line_of(prog, "# CHILD")
    assert by_code["PD106"]["site"]["line"] == line
    assert by_code["PD101"]["site"]["line"] == line
    assert len(by_code["PD101"]["pids"]) == 2
    assert "PD105" not in by_code  # children ended with os._exit: no exit check there


def test_fork_safety_repair_gives_the_child_its_own_connection(tmp_path: Path, pg_url: str) -> None:
    prog = script(tmp_path, f"""
        import os, sqlalchemy as sa
        engine = sa.create_engine({pg_url!r})
        with engine.connect() as c:
            parent = c.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            with engine.connect() as c:
                child = c.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            os.write(w, str(child).encode())
            os._exit(0)
        os.waitpid(pid, 0)
        child = int(os.read(r, 64))
        with engine.connect() as c:
            again = c.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        print(parent, child, again)
    """)
    out = subprocess.run([sys.executable, "-m", "pooldoctor.cli", "run", "-q",
                          "--fork-safety", "repair", "--format", "json", "--", str(prog)],
                         capture_output=True, text=True, check=False, timeout=60)
    assert out.returncode == 0, out.stderr
    parent, child, again = map(int, out.stdout.split())
    assert child != parent, "the child got a connection of its own"
    assert again == parent, "the parent's connection was not closed by the child"
    report = json.loads(out.stderr)
    assert [f["code"] for f in report["findings"]] == ["PD106"]
    assert report["findings"][0]["details"]["repaired"] is True


def test_instrument_one_engine_leaves_others_alone(tmp_path: Path, guard: object) -> None:
    a = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    b = sa.create_engine(f"sqlite:///{tmp_path / 'b.db'}")
    pooldoctor.instrument(a, **QUIET)
    ca, cb = a.connect(), b.connect()
    [hold] = pooldoctor.holds()
    assert hold["pool"].endswith("a.db")
    ca.close()
    cb.close()
    # engines created later are not guarded either
    c = sa.create_engine(f"sqlite:///{tmp_path / 'c.db'}").connect()
    assert pooldoctor.holds() == []
    c.close()


def test_global_instrument_reaches_existing_and_future_engines(tmp_path: Path,
                                                               guard: object) -> None:
    before = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    pooldoctor.instrument(**QUIET)
    after = sa.create_engine(f"sqlite:///{tmp_path / 'b.db'}")
    c1, c2 = before.connect(), after.connect()
    assert len(pooldoctor.holds()) == 2
    c1.close()
    c2.close()


def test_uninstrument_restores_everything(tmp_path: Path, guard: object) -> None:
    init = Engine.__init__
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    pool_class = type(engine.pool)
    pooldoctor.instrument(**QUIET)
    with engine.connect():
        pass
    assert type(engine.pool) is not pool_class
    assert type(engine.pool._pool.not_empty) is not threading.Condition  # type: ignore[attr-defined]
    assert "do_begin" in vars(engine.dialect)
    pooldoctor.uninstrument()
    assert Engine.__init__ is init
    assert type(engine.pool) is pool_class
    assert type(engine.pool._pool.not_empty) is threading.Condition  # type: ignore[attr-defined]
    assert not {"do_begin", "do_commit", "do_rollback", "connect"} & set(vars(engine.dialect))
    assert not sa.event.contains(Pool, "checkout", guard_pools._on_checkout)
    with engine.connect():
        assert pooldoctor.holds() == []
    assert not GUARD.active


def test_the_guard_sets_no_engine_event_flag(tmp_path: Path) -> None:
    """With an engine event registered, SQLAlchemy dispatches its execution events at every
    statement: the guard registers none (a fresh process: other tests register some)."""
    code = textwrap.dedent(f"""
        import sqlalchemy as sa, pooldoctor
        from sqlalchemy.engine import Engine
        pooldoctor.instrument(log=False, exit_check=False)
        e = sa.create_engine("sqlite:///{tmp_path / 'a.db'}")
        with e.connect() as c:
            c.exec_driver_sql("SELECT 1")
        print(e._has_events, Engine._has_events, e.dialect._has_events, len(pooldoctor.holds()))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False", "False", "0"]


def test_plugin_from_url_and_from_plugins_argument(tmp_path: Path, guard: object) -> None:
    e1 = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}?plugin=pooldoctor"
                          "&pooldoctor_name=orders&pooldoctor_leak_threshold=0.05")
    assert "pooldoctor" not in str(e1.url)
    c = e1.connect()
    [hold] = pooldoctor.holds()
    assert hold["pool"] == "orders"
    [f] = wait_for(lambda: findings("PD101"))
    assert "threshold 0.05 s" in f.message
    c.close()
    e2 = sa.create_engine(f"sqlite:///{tmp_path / 'b.db'}", plugins=["pooldoctor"])
    with e2.connect():
        assert len(pooldoctor.holds()) == 1


def test_pd104_engine_per_call(tmp_path: Path, guard: object) -> None:
    pooldoctor.instrument(engine_threshold=3, **QUIET)
    url = f"sqlite:///{tmp_path / 'a.db'}"
    kept = []

    def get_engine() -> Engine:
        return sa.create_engine(url)

    line = here() - 2
    for _ in range(4):
        e = get_engine()
        with e.connect():  # an idle connection stays in its pool: PD104 counts what is held
            pass
        kept.append(e)
    [f] = findings("PD104")
    assert f.site is not None and (f.site.line, f.site.function) == (line, "get_engine")
    assert f.count == 2  # reported at the 3rd and the 4th engine
    assert f.details["engines"] == 4


def test_pd104_not_reported_for_one_engine_per_url(tmp_path: Path, guard: object) -> None:
    pooldoctor.instrument(engine_threshold=2, **QUIET)
    engines = [sa.create_engine(f"sqlite:///{tmp_path / f'{n}.db'}") for n in range(5)]
    assert findings("PD104") == []
    assert len(engines) == 5


def test_pd109_wait_and_no_wait(tmp_path: Path, guard: object) -> None:
    import threading

    pooldoctor.instrument(wait_threshold=0.05, **QUIET)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}", pool_size=1, max_overflow=0,
                              pool_timeout=5)
    with engine.connect():
        pass
    assert findings("PD109") == []  # a free connection: no wait
    first = engine.connect()
    release = threading.Timer(0.2, first.close)
    release.start()
    with engine.connect():  # waits ~0.2 s for the first to come back
        pass
    release.join()
    [f] = findings("PD109")
    assert f.details["waited_ms"] >= 50
    assert f.site is not None and f.site.function == "test_pd109_wait_and_no_wait"
    assert pooldoctor.report().pools[-1]["waits"] == 1


def test_a_wait_outside_a_checkout_is_no_checkouts_wait(tmp_path: Path, guard: object) -> None:
    """Waits are timed in the pool queue; one that was not a checkout's (the queue used
    directly) is not reported at this thread's next checkout."""
    import queue

    from sqlalchemy.util import queue as sa_queue

    pooldoctor.instrument(wait_threshold=0.05, **QUIET)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}", pool_size=1, max_overflow=0)
    held = engine.connect()
    with pytest.raises((sa_queue.Empty, queue.Empty)):
        engine.pool._pool.get(True, 0.1)  # type: ignore[attr-defined]
    held.close()
    with engine.connect():
        pass
    assert findings("PD109") == []
    assert pooldoctor.report().pools[-1]["waits"] == 0


def test_pd108_one_site_holds_many_checkouts(tmp_path: Path, guard: object) -> None:
    pooldoctor.instrument(many_threshold=5, **QUIET)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}", pool_size=10)
    held = []

    def open_case() -> None:
        held.append(engine.connect())

    line = here() - 2
    for _ in range(4):
        open_case()
    other = engine.connect()  # another site does not count
    GUARD.tick()  # checkouts are counted at the watchdog's pass
    assert findings("PD108") == []
    open_case()
    GUARD.tick()
    [f] = findings("PD108")
    assert f.site is not None and (f.site.line, f.site.function) == (line, "open_case")
    assert f.details["held"] == 5
    assert "holds 5 connections checked out at once" in f.message
    for c in [*held, other]:
        c.close()
    GUARD.tick()  # the pile-up drained: the next one is reported again
    held.clear()
    for _ in range(5):
        open_case()
    GUARD.tick()
    assert findings("PD108")[0].count == 2
    for c in held:
        c.close()


def test_pd108_not_for_workers_each_holding_one(tmp_path: Path, guard: object) -> None:
    """Threads each holding one checkout from the same line are concurrency, bounded by their
    number; the same line holding several per thread is a pile-up."""
    import sqlite3

    pooldoctor.instrument(many_threshold=5, **QUIET)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}", pool_size=20)

    def hold(per_thread: int, n_threads: int) -> list[Finding]:
        ready = threading.Barrier(n_threads + 1)
        done = threading.Event()

        def worker() -> None:
            held = []
            for _ in range(per_thread):
                held.append(engine.connect())
            ready.wait(10)
            done.wait(10)
            for c in held:
                c.close()

        ts = [threading.Thread(target=worker) for _ in range(n_threads)]
        for t in ts:
            t.start()
        ready.wait(10)
        GUARD.tick()  # checkouts are counted at the watchdog's pass
        out = findings("PD108")
        done.set()
        for t in ts:
            t.join(10)
        GUARD.tick()  # drained: the site is re-armed
        return out

    assert hold(1, 8) == []  # eight workers, one each
    [f] = hold(2, 3)  # three threads piling up two each: six at once
    assert f.details["held"] == 6 and f.site is not None and f.site.function == "worker"

    async def main(per_task: int, n_tasks: int) -> None:
        import asyncio

        ev = asyncio.Event()

        async def task() -> None:
            conns = []
            for _ in range(per_task):
                conns.append(sqlite3.connect(":memory:"))  # raw: reported as they open
            await ev.wait()
            for c in conns:
                c.close()

        ts = [asyncio.create_task(task()) for _ in range(n_tasks)]
        await asyncio.sleep(0)
        ev.set()
        await asyncio.gather(*ts)

    import asyncio

    GUARD.clear()
    asyncio.run(main(1, 8))  # eight tasks, one raw connection each
    assert findings("PD108") == []
    GUARD.tick()  # all closed: the site is re-armed
    asyncio.run(main(6, 1))  # one task opening six
    [f] = findings("PD108")
    assert f.details["held"] >= 5 and f.site is not None and f.site.function == "task"


def test_failing_hook_never_breaks_checkout_or_checkin(tmp_path: Path, guard: object,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pooldoctor.instrument(**QUIET)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}", pool_size=1, max_overflow=0,
                              pool_timeout=0.5)
    errors_before = GUARD.internal_errors

    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("internal failure")

    class PopFails(dict):  # type: ignore[type-arg]
        pop = boom

    monkeypatch.setattr(guard_pools, "_fast_checkout", boom)  # checkout: the hold cannot be made
    with engine.connect() as c:
        assert c.exec_driver_sql("SELECT 1").scalar() == 1
    monkeypatch.undo()
    monkeypatch.setattr(guard_sa.stats_for(engine), "holds", PopFails())  # checkin fails
    for _ in range(3):  # with one slot, a lost slot would time out here
        with engine.connect() as c:
            c.exec_driver_sql("SELECT 1")
    monkeypatch.undo()
    assert GUARD.internal_errors >= errors_before + 4
    with engine.connect() as c:
        assert c.exec_driver_sql("SELECT 1").scalar() == 1


def test_static_pool_is_not_tracked(guard: object) -> None:
    pooldoctor.instrument(**QUIET)
    engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
    a, b = engine.connect(), engine.connect()
    assert pooldoctor.holds() == []
    a.close()
    b.close()
    gc.collect()
    GUARD.tick()
    assert pooldoctor.report().findings == []


@pytest.mark.filterwarnings("ignore:The garbage collector is trying to clean up")
def test_asyncio_gc_site_is_the_users_coroutine(pg_url: str, guard: object) -> None:
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    pooldoctor.instrument(**QUIET)

    async def leak(engine: object) -> int:
        conn = await engine.connect()  # type: ignore[attr-defined]
        await conn.exec_driver_sql("SELECT 1")
        return here() - 2

    async def main() -> int:
        engine = create_async_engine(pg_url.replace("+psycopg", "+asyncpg"))
        line = await leak(engine)
        [hold] = pooldoctor.holds()
        assert hold["site"]["line"] == line and hold["site"]["function"] == "leak"
        assert hold.get("task")
        gc.collect()  # SQLAlchemy warns too, without saying where (filtered above)
        await engine.dispose()
        return line

    line = asyncio.run(main())
    GUARD.drain()
    [f] = findings("PD102")
    assert f.site is not None and f.site.line == line


def test_watchdog_path_needs_no_lock_a_fork_could_leave_held(tmp_path: Path) -> None:
    """A fork while the parent's watchdog held tempfile's one-time lock (resolving the
    directory for published holds) left the child's watchdog blocked forever: PD101 went
    missing in forked workers. instrument() now resolves it in the caller's thread."""
    prog = script(tmp_path, """
        import tempfile, pooldoctor
        tempfile.tempdir = None
        pooldoctor.instrument(log=False, exit_check=False)
        print(tempfile.tempdir is not None)
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("POOLDOCTOR_RUNTIME_DIR",
                                                             "XDG_RUNTIME_DIR")}
    out = subprocess.run([sys.executable, str(prog)], capture_output=True, text=True,
                         timeout=60, check=False, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_uninstrument_while_a_checkout_waits(tmp_path: Path, guard: object) -> None:
    """A checkout blocked in the pool queue when the guard is removed completes normally."""
    pooldoctor.instrument(wait_threshold=0.01, **QUIET)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}", pool_size=1, max_overflow=0,
                              pool_timeout=5)
    held = engine.connect()
    info = guard_sa.stats_for(engine)
    assert info is not None
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(engine.connect()))
    waiter.start()
    wait_for(lambda: info.waiting == 1)
    pooldoctor.uninstrument()
    held.close()
    waiter.join(5)
    assert len(got) == 1 and not waiter.is_alive()
    got[0].close()  # type: ignore[attr-defined]
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    # a thread waited on the timed condition when the guard went: it stays, inert
    cond = engine.pool._pool.not_empty  # type: ignore[attr-defined]
    assert type(cond) is threading.Condition or cond.pd_info is None
    engine.dispose()


_DICT_CHECK = """
import gc, json, sys
import psycopg, sqlalchemy as sa, pooldoctor
from pooldoctor.runtime import sqlalchemy as guard_sa

def dict_made(obj, attr):  # CPython 3.11+: a dict appears among the referents once anything
    return any(type(r) is dict and attr in r for r in gc.get_referents(obj))  # touched __dict__

pg_url, mysql_url = sys.argv[1:3]
pooldoctor.instrument(log=False, exit_check=False)
out = {}
for name, url in (("pg", pg_url), ("mysql", mysql_url)):
    engine = sa.create_engine(url)
    for _ in range(3):
        with engine.connect() as c:
            c.exec_driver_sql("SELECT 1")
            dbapi = c.connection.dbapi_connection
            with dbapi.cursor() as cur:  # the guard's cursor() wrapper
                cur.execute("SELECT 1")
    q = engine.pool._pool
    out[name] = {"conn": dict_made(dbapi, "pgconn") if name == "pg" else None,
                 "queue": dict_made(q, "not_empty"), "cond": dict_made(q.not_empty, "_lock"),
                 "timed": q.not_empty.pd_info is guard_sa.stats_for(engine)}
    engine.dispose()
raw = psycopg.connect(pg_url.replace("+psycopg", ""))  # a raw hold, its cursors counted
with raw.cursor() as cur:
    cur.execute("SELECT 1")
out["raw"] = {"held": pooldoctor.holds()[-1]["kind"], "conn": dict_made(raw, "pgconn")}
raw.close()
print(json.dumps(out))
"""


@pytest.mark.skipif(sys.version_info < (3, 11) or sys.implementation.name != "cpython",
                    reason="inline attribute storage is a CPython 3.11+ optimisation")
def test_the_guard_leaves_the_drivers_and_the_queues_attribute_storage_alone(
        pg_url: str, mysql_url: str) -> None:
    """Touching __dict__ of a psycopg connection or of SQLAlchemy's pool queue turns their
    attribute storage into a dict for good, and the interpreter stops specialising their
    own code's attribute reads: about 4% more CPU per PostgreSQL statement (measured with
    callgrind). The guard must read and write its marks without that. A fresh process: how
    a class's instances store attributes also depends on what other tests did to others.
    (PyMySQL's connections make their own dict, with or without the guard.)"""
    run = subprocess.run([sys.executable, "-c", _DICT_CHECK, pg_url, mysql_url],
                         capture_output=True, text=True, check=True)
    out = json.loads(run.stdout)
    timed_and_compact = {"queue": False, "cond": False, "timed": True}
    assert out["pg"] == {"conn": False, **timed_and_compact}
    assert out["mysql"] == {"conn": None, **timed_and_compact}
    assert out["raw"] == {"held": "connection", "conn": False}
