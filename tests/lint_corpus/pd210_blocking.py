"""PD210: slow or blocking calls while a transaction or connection is open."""
import subprocess
import time

import httpx
import psycopg2
import pymysql
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

engine = create_engine("postgresql+psycopg://app@db/app")


# ---------------------------------------------------------------- bad


def charge(order_id):
    with engine.begin() as conn:
        conn.execute(text("UPDATE orders SET state = 'charging' WHERE id = :id"), {"id": order_id})
        requests.post("https://payments.example/charge", json={"order": order_id})  # expect: PD210


def poll():
    with engine.connect() as conn:
        while True:
            conn.execute(text("SELECT 1"))
            time.sleep(5)  # expect: PD210


def export(session_factory):
    with Session(engine) as session:
        rows = session.execute(text("SELECT * FROM t")).all()
        subprocess.run(["gzip", "dump.sql"], check=True)  # expect: PD210
        return rows


def confirm(host):
    with pymysql.connect(host=host) as conn:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM t")
            if input("commit? ") == "y":  # expect: PD210
                conn.commit()


async def fetch_and_store(session):
    async with session.begin():
        await session.execute(text("SELECT 1"))
        async with httpx.AsyncClient() as client:
            pass
        httpx.get("https://example.com")  # expect: PD210


# ---------------------------------------------------------------- good


def slow_call_first(order_id):
    response = requests.post("https://payments.example/charge", json={"order": order_id})
    with engine.begin() as conn:
        conn.execute(text("UPDATE orders SET state = :s"), {"s": response.status_code})


def session_before_first_query():
    with Session(engine) as session:
        time.sleep(1)  # no connection yet: a Session checks out on first use
        session.execute(text("SELECT 1"))


def session_after_commit():
    with Session(engine) as session:
        session.execute(text("SELECT 1"))
        session.commit()
        requests.get("https://example.com")  # connection returned at commit


def retry_outside():
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                conn.execute(text("SELECT 1"))
            break
        except Exception:
            time.sleep(2 ** attempt)


def nested_function():
    with engine.begin() as conn:
        def later():
            time.sleep(1)
        conn.execute(text("SELECT 1"))
    return later


def charge_dbapi(dsn, order_id):
    conn = psycopg2.connect(dsn)
    try:
        cur = conn.cursor()
        cur.execute("SELECT * FROM orders WHERE id = %s FOR UPDATE", (order_id,))
        requests.post("https://payments.example/charge", json={"order": order_id})  # expect: PD210
        conn.commit()
        requests.get("https://example.com/receipt")  # committed: nothing held
    finally:
        conn.close()


def explicit_transaction():
    conn = engine.connect()
    try:
        trans = conn.begin()
        conn.execute(text("UPDATE t SET x = 1"))
        time.sleep(3)  # expect: PD210
        trans.commit()
    finally:
        conn.close()


def autocommit_connection(dsn):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        conn.cursor().execute("SELECT 1")
        time.sleep(1)  # autocommit: no transaction stays open
    finally:
        conn.close()
