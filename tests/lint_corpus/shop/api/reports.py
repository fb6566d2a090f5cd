"""Star import, a re-export through the package, generators and engine factories."""
from shop.database import *  # noqa: F403
from shop import connect_default
from shop.database import get_db, get_order_records, new_engine, shared_engine


def report():
    conn = get_dbconn()  # expect: PD201
    return conn.execute("SELECT 1").fetchall()


def report_default():
    conn = connect_default()  # expect: PD201
    return conn.execute("SELECT 1").fetchall()


def nightly_job():
    db = next(get_db())  # expect: PD211
    return db.execute("SELECT 1")


def first_rows(cur):
    return next(iter(get_order_records(cur)))  # a plain function: not PD211


def export(url):
    engine = new_engine(url)  # expect: PD204
    with engine.connect() as conn:
        return conn.execute("SELECT 1").all()


def export_shared(url):
    engine = shared_engine(url)  # cached per URL: not engine-per-call
    with engine.connect() as conn:
        return conn.execute("SELECT 1").all()
