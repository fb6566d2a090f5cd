"""Repository and connection-manager classes as found in many service codebases."""
import atexit
import logging
import threading
import weakref

import mysql.connector
import psycopg2
import psycopg2.pool
import pymysql

log = logging.getLogger(__name__)


class MySQLConnection:
    """A context manager that owns a connection."""

    def __init__(self, **params):
        self.params = params
        self.connection = None

    def __enter__(self):
        self.connection = pymysql.connect(**self.params)
        return self.connection

    def __exit__(self, exc_type, exc, tb):
        if self.connection is not None:
            self.connection.close()


class ThreadLocalConnections(threading.local):
    """Each thread keeps one connection, closed when the object is collected."""

    def __init__(self, dsn):
        super().__init__()
        self.conn = psycopg2.connect(dsn)
        weakref.finalize(self, self.conn.close)


class Singleton:
    _conn = None

    @classmethod
    def get(cls):
        if cls._conn is None:
            cls._conn = mysql.connector.connect(host="db")
            atexit.register(cls._conn.close)
        return cls._conn


class Pooled:
    def __init__(self, dsn):
        self.pool = psycopg2.pool.ThreadedConnectionPool(1, 10, dsn)

    def run(self, sql):
        conn = self.pool.getconn()
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            self.pool.putconn(conn)

    def close(self):
        self.pool.closeall()


class Dao:
    def __init__(self, host):
        self.host = host

    def _connect(self):
        return pymysql.connect(host=self.host)

    def count(self):
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM t")
                return cur.fetchone()[0]
        finally:
            conn.close()

    def leak(self):
        conn = self._connect()  # expect: PD201
        log.info("connected to %s", self.host)
        with conn.cursor() as cur:
            cur.execute("SELECT 1")


class Closer:
    def __init__(self, dsn):
        self.conn = psycopg2.connect(dsn)

    def __del__(self):
        try:
            self.conn.close()
        except Exception:
            pass


def log_then_protect(dsn):
    conn = psycopg2.connect(dsn)
    log.debug("connected")
    try:
        conn.cursor().execute("SELECT 1")
    finally:
        conn.close()


def retry_connect(dsn, attempts=3):
    for attempt in range(attempts):
        try:
            conn = psycopg2.connect(dsn)
        except psycopg2.OperationalError:
            continue
        return conn
    raise RuntimeError("no database")


class CursorProxy:
    """Delegates everything, close() included, to the wrapped cursor (SQLAlchemy's testing proxy)."""

    def __init__(self, conn):
        self.cursor = conn.cursor()

    def __getattr__(self, key):
        return getattr(self.cursor, key)
