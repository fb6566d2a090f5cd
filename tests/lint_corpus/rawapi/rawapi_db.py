"""The Database class: connect() opens, keeps and returns the connection; close_conn() closes."""

import logging

from psycopg2 import OperationalError, connect
from psycopg2.extras import DictCursor


class Database:
    def __init__(self, db_params):
        self.db_params = db_params
        self.conn = None
        self.cur = None

    def connect(self):
        try:
            self.conn = connect(**self.db_params)
            self.cur = self.conn.cursor(cursor_factory=DictCursor)
            return self.conn, self.cur
        except OperationalError as err:
            logging.error("database %s unreachable: %s", self.db_params.get("host"), err)
            self.conn = None

    def executequery(self, query):
        self.cur.execute(query)
        return self.cur.fetchall()

    def close_conn(self):
        if self.conn is not None:
            if self.cur is not None:
                self.cur.close()
            self.conn.close()


class Store:
    """open() returns a fresh connection every call: the caller owns it."""

    def __init__(self, dsn):
        self.dsn = dsn

    def open(self):
        return connect(self.dsn)
