"""An engine (and its pool) created on every call instead of once per process."""

import sqlalchemy as sa

TITLE = "an engine created per call"
EXPECT = ["PD104"]
OPTIONS = {"engine_threshold": 3}

_keep: list[sa.Engine] = []


def get_orders(workdir: str) -> int:
    engine = sa.create_engine(f"sqlite:///{workdir}/demo.db")  # the mistake: once per call
    _keep.append(engine)  # e.g. captured by a closure or a request-scoped object
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT 1").scalar_one())


def main(workdir: str) -> None:
    for _ in range(5):
        get_orders(workdir)
