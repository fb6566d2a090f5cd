"""PD205: a Session or Connection cached with lru_cache / cache."""
import sqlite3
from functools import cache, lru_cache

from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

engine = create_engine("sqlite:///app.db")
SessionLocal = sessionmaker(bind=engine)


# ---------------------------------------------------------------- bad


@lru_cache  # expect: PD205
def get_session():
    return SessionLocal()


@cache  # expect: PD205
def get_connection():
    return engine.connect()


@lru_cache(maxsize=1)  # expect: PD205
def sqlite_db(path):
    conn = sqlite3.connect(path, check_same_thread=False)
    return conn


# ---------------------------------------------------------------- good


@lru_cache
def get_engine():
    return create_engine("sqlite:///app.db")


@cache
def get_sessionmaker():
    return sessionmaker(bind=get_engine())


@lru_cache
def settings():
    return {"url": "sqlite:///app.db"}


def uncached_session():
    with Session(engine) as session:
        return session.execute("SELECT 1")
