"""The plugin's server count (``--pooldoctor-server``) against the real servers: which server
connections are this process's, and which of them no hold or pool explains."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from pooldoctor.pytest_plugin.server import ServerCounter
from pooldoctor.runtime.tags import process_tag

CHILD = """
import sys
import sqlalchemy as sa
e = sa.create_engine(sys.argv[1], connect_args={kw})
c = e.connect()
print(c.connection.driver_connection.{ident}, flush=True)
sys.stdin.read()
c.close()
"""


@pytest.fixture
def pg_counter(pg_url: str) -> Iterator[ServerCounter]:
    counter = ServerCounter.open(pg_url)
    yield counter
    counter.close()


@pytest.fixture
def my_counter(mysql_url: str) -> Iterator[ServerCounter]:
    counter = ServerCounter.open(mysql_url)
    yield counter
    counter.close()


def _child(url: str, kw: str, ident: str) -> tuple[subprocess.Popen[str], int]:
    p = subprocess.Popen([sys.executable, "-c", CHILD.format(kw=kw, ident=ident), url],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    line = p.stdout.readline().strip()
    assert line.isdigit(), f"child said {line!r}"
    return p, int(line)


def _stop(p: subprocess.Popen[str]) -> None:
    assert p.stdin is not None
    p.stdin.close()
    p.wait(timeout=30)


def test_postgresql_ours_by_socket_and_by_tag(pg_url: str, pg_counter: ServerCounter) -> None:
    import psycopg

    raw = psycopg.pq.PGconn.connect(b"host=127.0.0.1 port=5432 user=postgres dbname=test")
    engine = sa.create_engine(pg_url, connect_args={"application_name": process_tag()})
    conn = engine.connect()
    try:
        ours = pg_counter.ours()
        assert ours.get(raw.backend_pid) == "socket"
        assert ours.get(conn.connection.driver_connection.info.backend_pid) == "tag"
    finally:
        conn.close()
        engine.dispose()
        raw.finish()


def test_postgresql_other_process_is_not_ours(pg_url: str, pg_counter: ServerCounter) -> None:
    p, pid = _child(pg_url, "{'application_name': 'someone-else'}", "info.backend_pid")
    try:
        assert pid not in pg_counter.ours()
    finally:
        _stop(p)


def test_postgresql_unexplained_ignores_holds_and_idle_pool(
        pg_url: str, pg_counter: ServerCounter, guard: object) -> None:
    import psycopg

    import pooldoctor
    from pooldoctor.guard import GUARD

    pooldoctor.instrument(log=False, exit_check=False, drivers=False)
    engine = sa.create_engine(pg_url, pool_size=3)
    try:
        def known() -> set[int]:
            return {h.server_id for h in GUARD.ledger.holds() if h.server_id is not None}

        before = pg_counter.unexplained(known())
        with engine.connect() as a, engine.connect() as b:
            a.exec_driver_sql("select 1")
            b.exec_driver_sql("select 1")
            assert pg_counter.unexplained(known()) == before  # held: the ledger explains them
        assert pg_counter.unexplained(known()) == before  # idle in the pool: not leaks
        raw = psycopg.pq.PGconn.connect(b"host=127.0.0.1 port=5432 user=postgres dbname=test")
        try:
            growth = pg_counter.growth(before, known)
            assert growth is not None and growth.after == before + 1
            assert growth.matched_by == {str(raw.backend_pid): "socket"}
        finally:
            raw.finish()
        assert pg_counter.growth(before, known) is None
    finally:
        engine.dispose()


def test_mariadb_ours_by_socket(mysql_url: str, my_counter: ServerCounter) -> None:
    import pymysql

    raw = pymysql.connect(host="127.0.0.1", port=3306, user="root", database="test")
    try:
        assert my_counter.ours().get(raw.thread_id()) == "socket"
    finally:
        raw.close()
    p, tid = _child(mysql_url, "{}", "thread_id()")
    try:
        assert tid not in my_counter.ours()
    finally:
        _stop(p)
