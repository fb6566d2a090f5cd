"""Statement tags as the servers see them: raw psycopg, psycopg2, PyMySQL, mysqlclient and
mysql-connector connections the guard holds, parameters and ``%`` through the drivers'
interpolation, executemany, and the off case."""

from __future__ import annotations

from typing import Any

import psycopg
import pymysql
import pytest
import sqlalchemy as sa

import pooldoctor
from pooldoctor import sqlcomment

from .test_server_probe import unique

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

PG_SELF = "SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()"
MY_SELF = "SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()"


def _pg(url: str) -> Any:
    u = sa.make_url(url)
    return psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, dbname=u.database,
                           autocommit=True)


def _my(url: str) -> Any:
    u = sa.make_url(url)
    return pymysql.connect(host=u.host, port=u.port or 3306, user=u.username,
                           password=u.password or "", database=u.database, autocommit=True)


def _site_function(statement: str) -> str:
    return sqlcomment.parse(statement)["pd_site"].rsplit(":", 1)[1]


def test_raw_psycopg_statements_are_tagged(pg_url: str, guard: object) -> None:
    pooldoctor.instrument(tag_sql=True, log=False, exit_check=False)
    conn = _pg(pg_url)
    try:
        seen = conn.execute(PG_SELF).fetchone()[0]
        assert _site_function(seen) == "_pg"  # the line that opened it
        assert sqlcomment.parse(seen)["pd_pool"] == "psycopg"
        # with parameters psycopg interpolates: the comment's % is doubled, the server sees one
        seen = conn.execute(PG_SELF + " AND %s = 1 AND '%%' = '%%'", (1,)).fetchone()[0]
        assert "%%" not in seen.split("/*")[1] and sqlcomment.parse(seen)
        table = unique("pdtag")
        conn.execute(f"CREATE TEMP TABLE {table} (x int)")
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} VALUES (%s)", [(1,), (2,), (3,)])
        assert conn.execute(f"SELECT sum(x) FROM {table}").fetchone()[0] == 6
    finally:
        conn.close()
    pooldoctor.instrument(tag_sql=False, log=False, exit_check=False)
    conn = _pg(pg_url)
    try:
        assert "/*" not in conn.execute(PG_SELF).fetchone()[0]  # off: untouched
    finally:
        conn.close()


def test_raw_pymysql_statements_are_tagged(mysql_url: str, guard: object) -> None:
    pooldoctor.instrument(tag_sql=True, log=False, exit_check=False)
    _mysql_statements_are_tagged(_my(mysql_url), "_my", doubles=True)


def test_sqlalchemy_executemany_and_percent_on_mysql(mysql_url: str, guard: object) -> None:
    engine = sa.create_engine(mysql_url)
    pooldoctor.instrument(engine, tag_sql=True, log=False, exit_check=False)
    table = unique("pdtag")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE TABLE {table} (x int, s varchar(10))")
            conn.execute(sa.text(f"INSERT INTO {table} VALUES (:x, :s)"),
                         [{"x": i, "s": "a%b"} for i in range(5)])
            seen = conn.exec_driver_sql(MY_SELF).scalar_one()
            n = conn.execute(sa.text(f"SELECT COUNT(*) FROM {table} WHERE s LIKE 'a%b'"))
            assert n.scalar_one() == 5
        assert _site_function(seen) == "test_sqlalchemy_executemany_and_percent_on_mysql"
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        engine.dispose()


def test_off_leaves_the_driver_cursors_alone(pg_url: str, guard: object) -> None:
    originals = (psycopg.Cursor.execute, psycopg.Cursor.executemany, pymysql.cursors.Cursor.execute)
    pooldoctor.instrument(tag_sql=False, log=False, exit_check=False)
    assert (psycopg.Cursor.execute, psycopg.Cursor.executemany,
            pymysql.cursors.Cursor.execute) == originals
    pooldoctor.instrument(tag_sql=True, log=False, exit_check=False)
    assert psycopg.Cursor.execute is not originals[0]
    pooldoctor.uninstrument()
    assert (psycopg.Cursor.execute, psycopg.Cursor.executemany,
            pymysql.cursors.Cursor.execute) == originals


def test_off_leaves_mysql_connector_cursors_alone(guard: object) -> None:
    import mysql.connector.cursor as cursors

    original = cursors.MySQLCursor.execute
    pooldoctor.instrument(tag_sql=False, log=False, exit_check=False)
    assert cursors.MySQLCursor.execute is original
    pooldoctor.instrument(tag_sql=True, log=False, exit_check=False)
    assert cursors.MySQLCursor.execute is not original
    pooldoctor.uninstrument()
    assert cursors.MySQLCursor.execute is original


def test_raw_psycopg2_statements_are_tagged(pg_url: str, guard: object) -> None:
    import psycopg2
    import psycopg2.extras

    u = sa.make_url(pg_url)
    pooldoctor.instrument(tag_sql=True, log=False, exit_check=False)
    conn = psycopg2.connect(host=u.host, port=u.port or 5432, user=u.username,
                            dbname=u.database)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(PG_SELF)
            seen = cur.fetchone()[0]
        assert _site_function(seen) == "test_raw_psycopg2_statements_are_tagged"
        assert sqlcomment.parse(seen)["pd_pool"] == "psycopg2"
        # the cursor class asked for is kept (a subclass of it tags)
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(PG_SELF + " AND %s = 1 AND '%%' = '%%'", (1,))
            row = cur.fetchone()
            seen = row["query"]
        assert "%%" not in seen.split("/*")[1] and sqlcomment.parse(seen)
        table = unique("pdtag")
        with conn.cursor() as cur:
            cur.execute(f"CREATE TEMP TABLE {table} (x int)")
            cur.executemany(f"INSERT INTO {table} VALUES (%s)", [(1,), (2,), (3,)])
            cur.execute(f"SELECT sum(x) FROM {table}")
            assert cur.fetchone()[0] == 6
    finally:
        conn.close()
    pooldoctor.instrument(tag_sql=False, log=False, exit_check=False)
    conn = psycopg2.connect(host=u.host, port=u.port or 5432, user=u.username,
                            dbname=u.database)
    try:
        with conn.cursor() as cur:
            cur.execute(PG_SELF)
            assert "/*" not in cur.fetchone()[0]  # off: untouched
            assert type(cur) is psycopg2.extensions.cursor
    finally:
        conn.close()


def _mysql_statements_are_tagged(conn: Any, expect_function: str, doubles: bool) -> None:
    table = unique("pdtag")
    try:
        cur = conn.cursor()
        cur.execute(MY_SELF)
        seen = cur.fetchone()[0]
        assert _site_function(seen) == expect_function
        percent = "'%%' = '%%'" if doubles else "'%' = '%'"
        cur.execute(MY_SELF + f" AND %s = 1 AND {percent}", (1,))
        seen = cur.fetchone()[0]
        assert "%%" not in seen.split("/*")[1] and sqlcomment.parse(seen)
        cur.execute(f"CREATE TABLE {table} (x int)")
        # a multi-row INSERT built by executemany() still works
        cur.executemany(f"INSERT INTO {table} VALUES (%s)", [(1,), (2,), (3,)])
        cur.execute(f"SELECT SUM(x) FROM {table}")
        assert int(cur.fetchone()[0]) == 6
        cur.close()
    finally:
        cur = conn.cursor()
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.close()
        conn.close()


def test_raw_mysqldb_statements_are_tagged(mysql_url: str, guard: object) -> None:
    mysqldb = pytest.importorskip(
        "MySQLdb", reason="mysqlclient is not installed (pip install mysqlclient needs "
        "libmariadb-dev and pkg-config)")
    u = sa.make_url(mysql_url)
    pooldoctor.instrument(tag_sql=True, log=False, exit_check=False)
    conn = mysqldb.connect(host=u.host, port=u.port or 3306, user=u.username,
                           password=u.password or "", database=u.database, autocommit=True)
    _mysql_statements_are_tagged(conn, "test_raw_mysqldb_statements_are_tagged", True)


@pytest.mark.parametrize("use_pure", [True, False])
def test_raw_mysql_connector_statements_are_tagged(mysql_url: str, guard: object,
                                                   use_pure: bool) -> None:
    import mysql.connector

    if not use_pure and not getattr(mysql.connector, "HAVE_CEXT", False):
        pytest.skip("mysql-connector's C extension is not installed")
    u = sa.make_url(mysql_url)
    pooldoctor.instrument(tag_sql=True, log=False, exit_check=False)
    conn = mysql.connector.connect(host=u.host, port=u.port or 3306, user=u.username,
                                   password=u.password or "", database=u.database,
                                   autocommit=True, use_pure=use_pure)
    _mysql_statements_are_tagged(conn, "test_raw_mysql_connector_statements_are_tagged", False)
