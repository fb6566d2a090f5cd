"""A thread pool larger than the connection pool: checkouts wait, then time out."""

import time
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

TITLE = "a connection pool smaller than the thread pool"
EXPECT = ["PD103", "PD109"]
OPTIONS = {"wait_threshold": 0.05, "leak_threshold": 30}


def report_job(engine: sa.Engine, n: int) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
        time.sleep(0.4)  # slow work while holding the connection


def main(workdir: str) -> None:
    engine = sa.create_engine(f"sqlite:///{workdir}/demo.db", pool_size=2, max_overflow=0,
                              pool_timeout=0.6)
    with ThreadPoolExecutor(max_workers=8) as ex:
        futures = [ex.submit(report_job, engine, n) for n in range(8)]
        for f in futures:
            try:
                f.result()
            except sa.exc.TimeoutError as e:
                print("the program saw:", str(e).splitlines()[0])
