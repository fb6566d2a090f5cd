"""PD207: max_overflow=-1."""
from sqlalchemy import create_engine
from sqlalchemy.pool import QueuePool

engine = create_engine("postgresql+psycopg://app@db/app", max_overflow=-1)  # expect: PD207
pool = QueuePool(lambda: None, pool_size=5, max_overflow=-1)  # expect: PD207
SETTINGS = {
    "sqlalchemy.url": "postgresql+psycopg://app@db/app",
    "sqlalchemy.max_overflow": -1,  # expect: PD207
}

ok = create_engine("postgresql+psycopg://app@db/app", pool_size=5, max_overflow=10)
ok_zero = create_engine("postgresql+psycopg://app@db/app", max_overflow=0)
