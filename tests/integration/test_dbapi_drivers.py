"""The raw-driver guard on real servers: PyMySQL, mysqlclient and mysql-connector on MariaDB,
psycopg 3 and psycopg2 on PostgreSQL.

Other engineers use the same servers at the same time: every comparison with the server is
restricted to the connections this test opened (by server id), never global counts.
"""

from __future__ import annotations

import gc
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import pooldoctor
from pooldoctor.guard import GUARD
from pooldoctor.runtime.drivers import core
from pooldoctor.runtime.tags import process_tag

from ..raw_helpers import codes, raw_holds, wait_for

PG = sa.engine.make_url(
    os.environ.get("POOLDOCTOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
MY = sa.engine.make_url(
    os.environ.get("POOLDOCTOR_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test"))
PG_ARGS = {"host": PG.host or "127.0.0.1", "port": PG.port or 5432, "user": PG.username,
           "dbname": PG.database}
MY_ARGS = {"host": MY.host or "127.0.0.1", "port": MY.port or 3306, "user": MY.username,
           "password": MY.password or "", "database": MY.database}


def connect_pymysql() -> Any:
    import pymysql

    return pymysql.connect(**MY_ARGS)


def connect_mysqldb() -> Any:
    import MySQLdb

    return MySQLdb.connect(host=MY_ARGS["host"], port=MY_ARGS["port"], user=MY_ARGS["user"],
                           password=MY_ARGS["password"], database=MY_ARGS["database"])


def connect_mysqlconnector() -> Any:
    import mysql.connector

    return mysql.connector.connect(**MY_ARGS)


def connect_psycopg() -> Any:
    import psycopg

    return psycopg.connect(**PG_ARGS)


def connect_psycopg2() -> Any:
    import psycopg2

    return psycopg2.connect(**PG_ARGS)


@dataclass(frozen=True)
class Driver:
    module: str
    label: str
    backend: str  # "mysql" | "postgresql"
    open: Callable[[], Any]
    closes_on_with: bool
    sa_scheme: str

    @property
    def id_query(self) -> str:
        return "SELECT CONNECTION_ID()" if self.backend == "mysql" else "SELECT pg_backend_pid()"

    def sa_url(self) -> sa.URL:
        return (MY if self.backend == "mysql" else PG).set(drivername=self.sa_scheme)


DRIVERS = [
    Driver("pymysql", "pymysql", "mysql", connect_pymysql, True, "mysql+pymysql"),
    Driver("MySQLdb", "MySQLdb", "mysql", connect_mysqldb, True, "mysql+mysqldb"),
    Driver("mysql.connector", "mysql.connector", "mysql", connect_mysqlconnector, True,
           "mysql+mysqlconnector"),
    Driver("psycopg", "psycopg", "postgresql", connect_psycopg, True, "postgresql+psycopg"),
    Driver("psycopg2", "psycopg2", "postgresql", connect_psycopg2, False, "postgresql+psycopg2"),
]


def _line_of(fn: Callable[[], Any]) -> int:
    import inspect

    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, text in enumerate(lines)
                        if "connect(" in text and "def " not in text)


@pytest.fixture(params=DRIVERS, ids=[d.label for d in DRIVERS])
def driver(request: pytest.FixtureRequest) -> Driver:
    d: Driver = request.param
    pytest.importorskip(d.module, reason=f"{d.module} is not installed")
    request.getfixturevalue("mysql_url" if d.backend == "mysql" else "pg_url")
    return d


@pytest.fixture
def quiet_guard(guard: object) -> Iterator[object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # psycopg 3 on unclosed connections
        yield guard


def query_one(conn: Any, sql: str) -> Any:
    cur = conn.cursor()
    try:
        cur.execute(sql)
        return cur.fetchone()[0]
    finally:
        cur.close()


# --------------------------------------------------------------------------- one connection


def test_hold_has_site_server_id_and_ends_on_close(quiet_guard: object, driver: Driver) -> None:
    pooldoctor.instrument(log=False)
    conn = driver.open()
    try:
        (h,) = raw_holds()
        assert h["pool"] == driver.label
        assert h["site"]["file"] == __file__
        assert h["site"]["function"] == driver.open.__name__
        assert h["site"]["line"] == _line_of(driver.open)
        assert h["server_id"] == query_one(conn, driver.id_query)
    finally:
        conn.close()
    assert raw_holds() == []
    assert codes() == []


def test_with_block(quiet_guard: object, driver: Driver) -> None:
    pooldoctor.instrument(log=False)
    conn = driver.open()
    with conn:
        query_one(conn, "SELECT 1")
    if driver.closes_on_with:
        assert raw_holds() == []
    else:  # psycopg2's `with` ends the transaction, not the connection
        assert len(raw_holds()) == 1
        conn.close()
        assert raw_holds() == []
    assert codes() == []


def test_garbage_collected_gives_pd102(quiet_guard: object, driver: Driver) -> None:
    pooldoctor.instrument(log=False)
    conn = driver.open()
    query_one(conn, "SELECT 1")
    del conn
    gc.collect()
    # polled: the watchdog's sweep may hold the connection a moment longer, and the
    # collection then happens in its thread
    f = wait_for("PD102")
    assert len(pooldoctor.report().findings) == 1
    assert f.site is not None
    assert (f.site.file, f.site.line) == (__file__, _line_of(driver.open))
    assert "garbage-collected without close()" in f.message
    assert raw_holds() == []


def test_pd101_names_the_connection_and_its_cursors(quiet_guard: object, driver: Driver) -> None:
    pooldoctor.instrument(log=False, leak_threshold=0.05)
    conn = driver.open()
    try:
        sid = query_one(conn, driver.id_query)
        cur = conn.cursor()  # counted now; query_one's cursor is already closed
        f = wait_for("PD101")
        assert f.message.startswith("connection open for ")
        assert f.details["pool"] == driver.label
        assert f.details["server_id"] == sid
        assert f.details["open_cursors"] == 1
        cur.close()
    finally:
        conn.close()
    # the held-too-long connection came back: noted on the finding
    (f,) = [x for x in pooldoctor.report().findings if x.code == "PD101"]
    assert f.details.get("returned_count") == 1


def test_open_cursors_counted(quiet_guard: object, driver: Driver) -> None:
    pooldoctor.instrument(log=False)
    conn = driver.open()
    try:
        c1, c2 = conn.cursor(), conn.cursor()
        assert raw_holds()[0]["open_cursors"] == 2
        c1.close()
        core.sweep()
        assert raw_holds()[0]["open_cursors"] == 1
        c2.close()
        core.sweep()
        assert raw_holds()[0]["open_cursors"] == 0
    finally:
        conn.close()
    assert codes() == []


def test_sqlalchemy_pool_connections_are_not_raw_holds(quiet_guard: object,
                                                       driver: Driver) -> None:
    pooldoctor.instrument(log=False)
    engine = sa.create_engine(driver.sa_url(), pool_size=3)
    custom = sa.create_engine(f"{driver.sa_scheme}://", creator=driver.open)
    try:
        with engine.connect() as a, engine.connect() as b, custom.connect() as c:
            for x in (a, b, c):
                x.exec_driver_sql("SELECT 1")
            kinds = sorted(h["kind"] for h in pooldoctor.holds())
            assert kinds == ["checkout"] * 3
    finally:
        engine.dispose()
        custom.dispose()
    assert raw_holds() == []
    assert codes() == []


def test_connection_ended_by_the_server_ends_the_hold(quiet_guard: object,
                                                      driver: Driver) -> None:
    if driver.label not in ("pymysql", "psycopg", "psycopg2"):
        pytest.skip(f"{driver.label} has no closed flag readable without a round trip")
    observer_engine = sa.create_engine(driver.sa_url(), poolclass=sa.pool.NullPool,
                                       isolation_level="AUTOCOMMIT")
    pooldoctor.instrument(log=False)
    conn = driver.open()
    try:
        sid = int(query_one(conn, driver.id_query))
        with observer_engine.connect() as observer:
            observer.exec_driver_sql(f"KILL CONNECTION {sid}" if driver.backend == "mysql"
                                     else f"SELECT pg_terminate_backend({sid}, 5000)")
        end = time.monotonic() + 5
        while True:  # the next use finds the connection gone
            try:
                query_one(conn, "SELECT 1")
            except Exception:
                break
            assert time.monotonic() < end, "the server did not end the connection"
            time.sleep(0.02)
        core.sweep()
        assert raw_holds() == []
    finally:
        try:
            conn.close()
        except Exception:
            pass
        observer_engine.dispose()
    assert pooldoctor.report(include_held=True).findings == []


@pytest.mark.parametrize("ended_by_server", [True, False])
def test_psycopg_collected_after_the_server_ended_it(quiet_guard: object,
                                                     ended_by_server: bool) -> None:
    """Collected before the watchdog's sweep saw it closed: no PD102 (psycopg's own test of
    ``check_connection`` does this); a connection still open when dropped stays a PD102."""
    import psycopg

    pooldoctor.instrument(log=False)
    conn = psycopg.connect(**PG_ARGS, autocommit=True)
    if ended_by_server:
        with psycopg.connect(**PG_ARGS, autocommit=True) as observer:
            observer.execute("SELECT pg_terminate_backend(%s, 5000)", [conn.info.backend_pid])
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        assert conn.closed
    del conn
    gc.collect()
    if not ended_by_server:
        wait_for("PD102")  # polled: the watchdog's sweep may hold it a moment longer
    GUARD.drain()
    assert raw_holds() == []
    assert codes() == ([] if ended_by_server else ["PD102"])


# --------------------------------------------------------------------------- tags


def test_postgres_connections_are_tagged_unless_named(quiet_guard: object) -> None:
    pytest.importorskip("psycopg2")
    import psycopg
    import psycopg2

    pooldoctor.instrument(log=False)
    for mod in (psycopg, psycopg2):
        conn = mod.connect(**PG_ARGS)
        named = mod.connect(**PG_ARGS, application_name="mine")
        try:
            assert query_one(conn, "SHOW application_name") == process_tag()
            assert query_one(named, "SHOW application_name") == "mine"
        finally:
            conn.close()
            named.close()


def test_pymysql_gets_a_program_name(quiet_guard: object, mysql_url: str) -> None:
    import pymysql

    pooldoctor.instrument(log=False)
    conn = pymysql.connect(**MY_ARGS)
    mine = pymysql.connect(**MY_ARGS, program_name="mine")
    try:
        assert conn._connect_attrs["program_name"] == process_tag()
        assert mine._connect_attrs["program_name"] == "mine"
        assert conn._connect_attrs["pd_host"] == socket.gethostname()
        assert conn._connect_attrs["pd_pid"] == str(os.getpid())
    finally:
        conn.close()
        mine.close()


# --------------------------------------------------------------------------- pile-up (PD108)


def _server_ids(observer: sa.Connection, backend: str, ids: list[int]) -> set[int]:
    """The ids among ``ids`` that the server lists as connected right now."""
    if backend == "mysql":
        rows = observer.exec_driver_sql(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN ("
            + ",".join(str(int(i)) for i in ids) + ")")
    else:
        rows = observer.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE pid IN ("
            + ",".join(str(int(i)) for i in ids) + ")")
    return {int(r[0]) for r in rows}


class CaseHelper:
    """The classic: a helper object per test case, each with its own connection."""

    def __init__(self, driver: Driver) -> None:
        self.conn = driver.open()


def test_pd108_pile_up_matches_the_server(quiet_guard: object, driver: Driver) -> None:
    # autocommit: PostgreSQL keeps one pg_stat_activity snapshot per transaction
    observer_engine = sa.create_engine(driver.sa_url(), poolclass=sa.pool.NullPool,
                                       isolation_level="AUTOCOMMIT")
    pooldoctor.instrument(log=False, many_threshold=5)
    helpers: list[CaseHelper] = []
    try:
        with observer_engine.connect() as observer:
            for _ in range(4):
                helpers.append(CaseHelper(driver))
            assert "PD108" not in codes()
            for _ in range(4):
                helpers.append(CaseHelper(driver))
            f = wait_for("PD108", 1.0)
            assert f.site is not None and f.site.function == driver.open.__name__
            assert f.stack[1].function == "__init__"  # the helper's constructor
            assert "holds 5 connections open at once" in f.message
            assert f.details["held"] == 5 and f.details["per_second"] > 0

            held = [h for h in raw_holds() if h["pool"] == driver.label]
            ids = [h["server_id"] for h in held]
            assert len(held) == len(helpers) == 8
            assert len(set(ids)) == 8
            # the server's own view of *our* connections agrees with pooldoctor's
            assert _server_ids(observer, driver.backend, ids) == set(ids)
            # no double counting: the observer's pooled connection is not a raw hold
            assert [h["kind"] for h in pooldoctor.holds()].count("checkout") == 1

            for h in helpers:
                h.conn.close()
            assert raw_holds() == []
            end = time.monotonic() + 10
            while _server_ids(observer, driver.backend, ids) and time.monotonic() < end:
                time.sleep(0.05)
            assert _server_ids(observer, driver.backend, ids) == set()
    finally:
        for h in helpers:
            try:
                h.conn.close()
            except Exception:
                pass
        observer_engine.dispose()


# --------------------------------------------------------------------------- processes


def _run(tmp_path: Path, body: str) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    events = tmp_path / "events.jsonl"
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent(body))
    env = dict(os.environ, POOLDOCTOR_EVENTS=str(events), PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, str(prog)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    found = []
    if events.exists():
        found = [e["finding"] for e in map(json.loads, events.read_text().splitlines())
                 if e["event"] == "finding"]
    return proc, found


def _connect_expr(driver: Driver) -> str:
    if driver.backend == "mysql":
        args = dict(MY_ARGS)
        if driver.module == "MySQLdb":
            return f"MySQLdb.connect(**{args!r})"
        return f"{driver.module}.connect(**{args!r})"
    return f"{driver.module}.connect(**{PG_ARGS!r})"


def test_pd105_at_exit(tmp_path: Path, driver: Driver) -> None:
    proc, found = _run(tmp_path, f"""
        import pooldoctor
        pooldoctor.instrument()
        import {driver.module}
        kept = {_connect_expr(driver)}
        closed = {_connect_expr(driver)}
        closed.close()
    """)
    assert proc.returncode == 0, proc.stderr
    assert [f["code"] for f in found] == ["PD105"], proc.stderr
    assert found[0]["site"]["line"] == 5
    assert found[0]["details"]["pool"] == driver.label
    assert isinstance(found[0]["details"]["server_id"], int)
    assert "PD105" in proc.stderr and "prog.py:5" in proc.stderr


def test_driver_imported_after_install(tmp_path: Path, driver: Driver) -> None:
    top = driver.module.split(".")[0]
    proc, found = _run(tmp_path, f"""
        import sys
        import pooldoctor
        pooldoctor.instrument()
        assert not [m for m in sys.modules if m.split(".")[0] == {top!r}]
        import {driver.module}
        for m in [m for m in sys.modules if m.split(".")[0] == {top!r}]:
            assert "Patching" not in type(sys.modules[m].__spec__.loader).__name__, m
        conn = {_connect_expr(driver)}
        print(sorted(h["pool"] for h in pooldoctor.holds()))
        conn.close()
        print(len(pooldoctor.holds()))
        pooldoctor.uninstrument()
        assert not [f for f in sys.meta_path if "pooldoctor" in type(f).__module__]
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [f"['{driver.label}']", "0"]
    assert found == []


def test_old_references_taken_before_install(tmp_path: Path, driver: Driver) -> None:
    expr = _connect_expr(driver).replace(f"{driver.module}.connect", "early_connect")
    proc, found = _run(tmp_path, f"""
        import {driver.module}
        from {driver.module} import connect as early_connect
        import pooldoctor
        pooldoctor.instrument()
        conn = {expr}
        print(sorted(h["pool"] for h in pooldoctor.holds()))
        conn.close()
        print(len(pooldoctor.holds()))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [f"['{driver.label}']", "0"]
    assert found == []


def test_pooldoctor_run_reports_a_raw_leak(tmp_path: Path, mysql_url: str) -> None:
    report = tmp_path / "report.json"
    prog = tmp_path / "leaky.py"
    prog.write_text(textwrap.dedent(f"""
        import pymysql
        def load_cases():
            conn = pymysql.connect(**{MY_ARGS!r})
            return conn
        kept = load_cases()
    """))
    proc = subprocess.run([sys.executable, "-m", "pooldoctor.cli", "run", "-q", "--report",
                           str(report), "--", sys.executable, str(prog)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(report.read_text())
    (f,) = [x for x in data["findings"] if x["code"] == "PD105"]
    assert f["site"]["line"] == 4 and f["site"]["function"] == "load_cases"
    assert f["details"]["pool"] == "pymysql"


# --------------------------------------------------------------------------- uninstall


def test_uninstall_restores_every_driver(guard: object, pg_url: str, mysql_url: str) -> None:
    import psycopg
    import psycopg2
    import pymysql

    watched: list[tuple[Any, list[str]]] = [
        (pymysql.connections.Connection,
         ["__init__", "connect", "close", "_force_close", "cursor"]),
        (psycopg.Connection, ["__init__", "close", "cursor", "_get_connection_params"]),
        (psycopg2, ["connect"]),
    ]
    try:
        import MySQLdb.connections

        watched.append((MySQLdb.connections.Connection, ["__init__", "close", "cursor"]))
    except ImportError:
        pass
    try:
        import mysql.connector.connection

        watched.append((mysql.connector.connection.MySQLConnection,
                        ["__init__", "close", "disconnect", "cursor"]))
    except ImportError:
        pass
    before = [{n: vars(owner).get(n) for n in names} for owner, names in watched]
    pooldoctor.instrument(log=False)
    during = [{n: vars(owner).get(n) for n in names} for owner, names in watched]
    for b, d in zip(before, during):
        assert all(b[n] is not d[n] for n in b), (b, d)
    pooldoctor.uninstrument()
    after = [{n: vars(owner).get(n) for n in names} for owner, names in watched]
    for b, a in zip(before, after):
        assert all(b[n] is a[n] for n in b), (b, a)
    conn = connect_pymysql()
    conn.close()
    assert raw_holds() == []
