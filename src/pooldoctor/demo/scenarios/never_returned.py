"""A connection checked out by a request handler and kept in a cache, never returned."""

import time

import sqlalchemy as sa

TITLE = "a connection that is never returned to the pool"
EXPECT = ["PD101", "PD105"]
OPTIONS = {"leak_threshold": 0.2}

_cache: dict[str, sa.Connection] = {}


def load_cases(engine: sa.Engine) -> int:
    conn = engine.connect()  # the leak: kept in a cache, never closed
    _cache["conn"] = conn
    return int(conn.exec_driver_sql("SELECT count(*) FROM cases").scalar_one())


def main(workdir: str) -> None:
    engine = sa.create_engine(f"sqlite:///{workdir}/demo.db")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS cases (id INTEGER PRIMARY KEY)")
    load_cases(engine)
    time.sleep(0.5)  # longer than the leak threshold
