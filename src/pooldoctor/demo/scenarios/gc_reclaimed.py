"""A connection dropped without close(): the garbage collector returns it, silently."""

import gc

import sqlalchemy as sa

TITLE = "a connection reclaimed by the garbage collector"
EXPECT = ["PD102"]
OPTIONS: dict[str, object] = {}


def count_users(engine: sa.Engine) -> int:
    conn = engine.connect()  # never closed: SQLAlchemy says nothing when it is collected
    return int(conn.exec_driver_sql("SELECT 1").scalar_one())


def main(workdir: str) -> None:
    engine = sa.create_engine(f"sqlite:///{workdir}/demo.db")
    count_users(engine)
    gc.collect()
