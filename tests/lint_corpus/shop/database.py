"""Connection helpers of the shop, the shapes real projects use."""
import functools
import sqlite3

import psycopg2
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

DSN = "dbname=shop"
MASKED = "postgresql://shop:***@db/shop"  # a masked URL in a log message: not a secret
UNKNOWN = "postgresql://shop:???@db/shop"
engine = create_engine("postgresql+psycopg2://shop@db/shop")
make_session = sessionmaker(bind=engine)


def get_dbconn(path=None):
    """Opens a connection; the caller closes it (its return sits inside try)."""
    try:
        if path:
            return sqlite3.connect(path)
        return psycopg2.connect(DSN)
    except psycopg2.OperationalError:
        raise


def get_conn_and_cursor():
    conn = psycopg2.connect(DSN)
    return conn, conn.cursor()


def get_cursor():
    conn = psycopg2.connect(DSN)  # expect: PD201
    return conn.cursor()


def close_quietly(cur, conn):
    try:
        cur.close()
    finally:
        conn.close()


def get_db():
    db = make_session()
    try:
        yield db
    finally:
        db.close()


def get_order_records(cur):
    return cur.fetchall()


def new_engine(url):
    return create_engine(url)


@functools.lru_cache(maxsize=None)
def shared_engine(url):
    return create_engine(url)
