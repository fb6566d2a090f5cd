"""A transaction held open while waiting on something slow."""

import time

import sqlalchemy as sa

TITLE = "a transaction held open during a slow call"
EXPECT = ["PD107"]
OPTIONS = {"transaction_threshold": 0.2, "leak_threshold": 30}


def call_payment_service() -> None:
    time.sleep(0.5)  # stands for an HTTP call


def pay(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO payments (amount) VALUES (10)")
        call_payment_service()  # the transaction (and its locks) stay open meanwhile


def main(workdir: str) -> None:
    engine = sa.create_engine(f"sqlite:///{workdir}/demo.db")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS payments (amount INTEGER)")
    pay(engine)
