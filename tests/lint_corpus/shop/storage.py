"""A class that opens connections for its callers, and helpers that take a factory as argument:
the shapes of a project's own `Database` wrapper."""
import psycopg2


class Database:
    def __init__(self, dsn):
        self.dsn = dsn
        self._conn = None

    def connect(self):
        """A new DB-API connection: the caller closes it."""
        return psycopg2.connect(self.dsn)

    @classmethod
    def open(cls, dsn):
        return psycopg2.connect(dsn)

    def cached(self):
        """One connection kept on the instance: close() closes it, callers do not."""
        if self._conn is None:
            self._conn = psycopg2.connect(self.dsn)
        return self._conn

    def close(self):
        if self._conn is not None:
            self._conn.close()


def with_connection(factory, sql):
    """Runs `sql` on a connection from `factory()` and closes it."""
    conn = factory()
    try:
        return conn.cursor().execute(sql)
    finally:
        conn.close()


def run_query(factory, sql):
    conn = factory()  # expect: PD201
    cur = conn.cursor()
    cur.execute(sql)
    return cur.fetchall()


def apply(fn, value):
    """Takes a function that is not a factory (abs, str.upper): nothing to close."""
    result = fn(value)
    return result


def ping(dsn):
    db = Database(dsn)
    conn = db.connect()  # expect: PD201
    conn.cursor().execute("SELECT 1")
    return True
