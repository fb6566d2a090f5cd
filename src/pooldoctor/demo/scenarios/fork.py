"""A pooled connection created in the parent, used in a child after fork()."""

import os

import sqlalchemy as sa

TITLE = "a pooled connection used across fork()"
EXPECT = ["PD106"]
OPTIONS: dict[str, object] = {}


def worker(engine: sa.Engine) -> None:
    with engine.connect() as conn:  # the parent's connection, shared by two processes
        conn.exec_driver_sql("SELECT 1")


def main(workdir: str) -> None:
    engine = sa.create_engine(f"sqlite:///{workdir}/demo.db")
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")  # leaves a connection resting in the pool
    pid = os.fork()
    if pid == 0:
        worker(engine)
        os._exit(0)  # findings are written as they happen, so they survive os._exit
    os.waitpid(pid, 0)
