"""PD202: cursors left open on a connection that outlives the function."""
import sqlite3

import psycopg2


# ---------------------------------------------------------------- bad


def fetch_names(conn):
    cur = conn.cursor()  # expect: PD202
    cur.execute("SELECT name FROM users")
    return [r[0] for r in cur.fetchall()]


class Store:
    def __init__(self, dsn):
        self.conn = psycopg2.connect(dsn)

    def close(self):
        self.conn.close()

    def stream(self, query):
        # a named (server-side) cursor holds a portal on the server until closed
        cur = self.conn.cursor(name="stream")  # expect: PD202
        cur.execute(query)
        if cur.rowcount == 0:
            return []
        rows = cur.fetchmany(100)
        cur.close()
        return rows

    def run_all(self, queries):
        for query in queries:
            cur = self.conn.cursor()  # expect: PD202
            cur.execute(query)


def replaced(conn):
    cur = conn.cursor()  # expect: PD202
    cur = conn.cursor()
    cur.execute("SELECT 1")
    cur.close()


# ---------------------------------------------------------------- good


def with_cursor(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        return cur.fetchone()


def try_finally(conn):
    cur = conn.cursor()
    try:
        cur.execute("SELECT 1")
        return cur.fetchall()
    finally:
        cur.close()


def happy_path_close_is_accepted_for_cursors(conn):
    # a cursor dropped on an error path is freed with the traceback: not reported
    cur = conn.cursor()
    cur.execute("SELECT 1")
    rows = cur.fetchall()
    cur.close()
    return rows


def cursor_returned(conn):
    cur = conn.cursor()
    cur.execute("SELECT 1")
    return cur


def local_connection_closed(path):
    # closing the connection closes its cursors
    conn = sqlite3.connect(path)
    try:
        cur = conn.cursor()
        cur.execute("SELECT 1")
        return cur.fetchall()
    finally:
        conn.close()


class Cursorful:
    def __init__(self, conn):
        self.cur = conn.cursor()

    def close(self):
        self.cur.close()


def error_path_only(conn, query):
    # dropped only when the raise leaves: freed with the traceback, not reported
    cur = conn.cursor()
    cur.execute(query)
    if cur.fetchone() is None:
        raise LookupError(query)
    cur.close()


async def handed_to_result(conn, query):
    # aiomysql's SAConnection: the result proxy owns the cursor from here on
    cursor = await conn.cursor()
    await cursor.execute(query)
    return await create_result_proxy(conn, cursor)


def execute_returns_the_cursor(conn, query):
    cur = conn.cursor()
    return cur.execute(query)
