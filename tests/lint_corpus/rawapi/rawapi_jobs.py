"""The same shapes in one module, with a tuple factory."""

import psycopg2


def get_pair(dsn):
    conn = psycopg2.connect(dsn)
    return conn, conn.cursor()


class Tasks:
    def __init__(self, dsn):
        self.dsn = dsn

    def connect(self):
        self.conn = psycopg2.connect(self.dsn)
        return self.conn

    def disconnect(self):
        self.conn.close()


class Worker:
    """Keeps Tasks.connect()'s connection and never closes it."""

    def __init__(self, dsn):
        self.tasks = Tasks(dsn)
        self.conn = self.tasks.connect()  # expect: PD201

    def run(self, sql):
        with self.conn.cursor() as cur:
            cur.execute(sql)


class Job:
    """Keeps the pair of get_pair() and never closes the connection."""

    def __init__(self, dsn):
        self.conn, self.cur = get_pair(dsn)  # expect: PD201

    def run(self, sql):
        self.cur.execute(sql)


class Batch:
    """The same pair, closed when the batch is used as a context manager."""

    def __init__(self, dsn):
        self.conn, self.cur = get_pair(dsn)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cur.close()
        self.conn.close()


class Poller:
    """Closes through the holder's disconnect()."""

    def __init__(self, dsn):
        self.tasks = Tasks(dsn)
        self.conn = self.tasks.connect()

    def stop(self):
        self.tasks.disconnect()


def one_shot(dsn):
    tasks = Tasks(dsn)
    conn = tasks.connect()  # a local instance owns its connection: its business, not reported
    tasks.disconnect()
    return conn
