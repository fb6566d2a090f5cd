"""PD201: DB-API connections that are not closed on every path, and ones that are."""
import contextlib
import sqlite3
import sqlite3 as lite
from contextlib import closing, ExitStack

import MySQLdb
import mysql.connector
import psycopg
import psycopg2
import pymysql
import pymysql as pm
from psycopg2 import connect as pg_connect
from pymysql import connect


# ---------------------------------------------------------------- bad


def count_users(path):
    conn = sqlite3.connect(path)  # expect: PD201
    rows = conn.execute("SELECT count(*) FROM users").fetchone()
    return rows[0]


def happy_path_only(dsn):
    conn = psycopg2.connect(dsn)  # expect: PD201
    cur = conn.cursor()
    cur.execute("UPDATE t SET x = 1")
    conn.commit()
    conn.close()


def early_return(host, user_id):
    conn = pymysql.connect(host=host)  # expect: PD201
    with conn.cursor() as cur:
        cur.execute("SELECT name FROM users WHERE id = %s", (user_id,))
        row = cur.fetchone()
    if row is None:
        return None
    conn.close()
    return row[0]


def raise_skips_close(host):
    conn = pm.connect(host=host)  # expect: PD201
    if not conn.open:
        raise RuntimeError("not connected")
    conn.close()


def closed_on_one_branch(dsn, verbose):
    conn = pg_connect(dsn)  # expect: PD201
    conn.cursor().execute("SELECT 1")
    if verbose:
        print("done")
        conn.close()


def overwritten(host):
    conn = connect(host=host)  # expect: PD201
    conn = connect(host=host + "-replica")
    try:
        conn.ping()
    finally:
        conn.close()


def per_item(items):
    for item in items:
        conn = MySQLdb.connect(host=item)  # expect: PD201
        if not item:
            continue
        conn.close()


def through_alias(path):
    db = lite.connect(path)  # expect: PD201
    db.execute("VACUUM")


def mysql_connector(cfg):
    cnx = mysql.connector.connect(**cfg)  # expect: PD201
    cursor = cnx.cursor()
    cursor.execute("SELECT 1")
    return cursor.fetchall()


def with_does_not_close_sqlite(path):
    with sqlite3.connect(path) as conn:  # expect: PD201
        conn.execute("INSERT INTO log VALUES (1)")


def with_does_not_close_psycopg2(dsn):
    with psycopg2.connect(dsn) as conn:  # expect: PD201
        with conn.cursor() as cur:
            cur.execute("SELECT 1")


def chained(path):
    return sqlite3.connect(path).execute("SELECT 1").fetchall()  # expect: PD201


def typed_handler_only(path):
    conn = sqlite3.connect(path)  # expect: PD201
    try:
        conn.execute("SELECT 1")
    except sqlite3.Error:
        conn.close()
        return False
    conn.close()
    return True


def returns_cursor_only(path):
    conn = sqlite3.connect(path)  # expect: PD201
    return conn.cursor()


async def async_driver(dsn):
    conn = await psycopg.AsyncConnection.connect(dsn)  # expect: PD201
    await conn.execute("SELECT 1")


class Repository:
    def __init__(self, dsn):
        self.conn = psycopg2.connect(dsn)  # expect: PD201

    def names(self):
        with self.conn.cursor() as cur:
            cur.execute("SELECT name FROM t")
            return cur.fetchall()


def get_connection():
    """Returns a new connection: the caller is responsible (followed in this module)."""
    return pymysql.connect(host="db")


def uses_factory():
    conn = get_connection()  # expect: PD201
    conn.ping()


# ---------------------------------------------------------------- good


def with_closing(path):
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT 1").fetchone()


def with_closing_imported(path):
    with closing(lite.connect(path)) as conn:
        conn.execute("SELECT 1")


def with_closes_pymysql(host):
    with pymysql.connect(host=host) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")


def with_closes_psycopg3(dsn):
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT 1")


def try_finally(dsn):
    conn = psycopg2.connect(dsn)
    try:
        cur = conn.cursor()
        cur.execute("SELECT 1")
        return cur.fetchone()
    finally:
        conn.close()


def none_guard(host):
    conn = None
    try:
        conn = pymysql.connect(host=host)
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
    except pymysql.Error as e:
        print(e)
    finally:
        if conn is not None:
            conn.close()


def truthiness_guard(host):
    conn = None
    try:
        conn = MySQLdb.connect(host=host)
        conn.query("SELECT 1")
    finally:
        if conn:
            conn.close()


def broad_handler_then_close(path):
    conn = sqlite3.connect(path)
    try:
        conn.execute("SELECT 1")
    except Exception:
        conn.close()
        raise
    conn.close()


def exit_stack(paths):
    with ExitStack() as stack:
        conns = [stack.enter_context(closing(sqlite3.connect(p))) for p in paths]
        for c in conns:
            c.execute("SELECT 1")


def exit_stack_callback(path):
    with ExitStack() as stack:
        conn = sqlite3.connect(path)
        stack.callback(conn.close)
        conn.execute("SELECT 1")


def returned_to_caller(dsn):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    return conn


def returned_with_setup(host):
    conn = pymysql.connect(host=host)
    conn.select_db("app")
    return conn


def caller_closes():
    conn = get_connection()
    try:
        conn.ping()
    finally:
        conn.close()


def close_then_reopen(path):
    conn = sqlite3.connect(path)
    conn.close()
    conn = sqlite3.connect(path)
    with closing(conn):
        conn.execute("SELECT 1")


def loop_with_finally(paths):
    for p in paths:
        conn = sqlite3.connect(p)
        try:
            conn.execute("SELECT 1")
        finally:
            conn.close()


def closed_with_cursor_in_loop(path):
    conn = sqlite3.connect(path)
    cur = conn.cursor()
    try:
        cur.execute("SELECT 1")
    finally:
        for c in (cur, conn):
            c.close()


def closing_helper(conn):
    conn.close()


def closes_through_helper(path):
    conn = sqlite3.connect(path)
    try:
        conn.execute("SELECT 1")
    finally:
        closing_helper(conn)


def handed_to_owner(dsn, pool):
    conn = psycopg2.connect(dsn)
    pool.append(conn)


def suppressing_close(path):
    conn = sqlite3.connect(path)
    try:
        conn.execute("SELECT 1")
    finally:
        with contextlib.suppress(Exception):
            conn.close()


class Database:
    """Owns its connection and closes it in close() and __exit__()."""

    def __init__(self, dsn):
        self.conn = psycopg2.connect(dsn)

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LazyDatabase:
    def __init__(self, host):
        self.host = host
        self._conn = None

    def connect(self):
        if self._conn is None:
            self._conn = pymysql.connect(host=self.host)
        return self._conn

    def disconnect(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def test_bad_path_fails(self):
    import pytest
    with pytest.raises(sqlite3.OperationalError):
        sqlite3.connect("/nonexistent/dir/x.db")


# module-level connections live as long as the program
CONN = sqlite3.connect(":memory:")


def cleanup_work_before_close_in_finally(host, name):
    conn = pymysql.connect(host=host)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE t (id INT)")
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS t")
        conn.close()


def opened_and_closed_under_the_same_condition(path, use_db):
    conn = None
    if use_db:
        conn = sqlite3.connect(path)
    try:
        if use_db:
            conn.execute("SELECT 1")
    finally:
        if use_db:
            conn.close()


def close_both(cur, conn):
    cur.close()
    conn.close()


def close_cursor_only(cur, conn):
    cur.close()


def closes_both_through_helper(dsn):
    conn = psycopg2.connect(dsn)
    cur = conn.cursor()
    try:
        cur.execute("SELECT 1")
    finally:
        close_both(cur, conn)


def helper_closes_only_the_cursor(dsn):
    conn = psycopg2.connect(dsn)  # expect: PD201
    cur = conn.cursor()
    try:
        cur.execute("SELECT 1")
    finally:
        close_cursor_only(cur, conn)


def each_database(paths):
    # an iterator of connections: the consumer owns each one
    for p in paths:
        conn = sqlite3.connect(p)
        conn.row_factory = sqlite3.Row
        yield conn
