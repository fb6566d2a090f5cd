"""PD204: engines created per call or per request, and engines created once."""
import functools
import os

import pandas as pd
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

app = FastAPI()
DB_URL = os.environ["DATABASE_URL"]


# ---------------------------------------------------------------- bad


@app.get("/users")
def list_users():
    engine = create_engine(DB_URL)  # expect: PD204
    with engine.connect() as conn:
        return conn.execute(text("SELECT name FROM users")).all()


def report(query):
    return pd.read_sql(query, sa.create_engine(DB_URL))  # expect: PD204


def migrate_all(urls):
    for url in urls:
        engine = create_engine(url)  # expect: PD204
        with engine.begin() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()


def get_engine():
    return create_engine(DB_URL, pool_size=5)  # expect: PD204


def handler():
    engine = get_engine()
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


# ---------------------------------------------------------------- good

engine = create_engine(DB_URL)
Session = sessionmaker(bind=engine)
_engines = {}


@functools.lru_cache(maxsize=None)
def engine_for(url):
    return create_engine(url)


@functools.cache
def cached_engine():
    engine_ = create_engine(DB_URL)
    return engine_


def engine_per_url(url):
    if url not in _engines:
        _engines[url] = create_engine(url)
    return _engines[url]


_engine = None


def lazy_global():
    global _engine
    if _engine is None:
        _engine = create_engine(DB_URL)
    return _engine


class Database:
    def __init__(self, url):
        self.engine = create_engine(url)
        self.Session = sessionmaker(bind=create_engine(url))


def main():
    engine_ = create_engine(DB_URL)
    with engine_.connect() as conn:
        conn.execute(text("SELECT 1"))


def test_something():
    engine_ = create_engine("sqlite://")
    with engine_.connect() as conn:
        conn.execute(text("SELECT 1"))


def run_migrations_online():
    connectable = create_engine(DB_URL)
    with connectable.connect() as connection:
        connection.execute(text("SELECT 1"))


def create_app():
    app_ = FastAPI()
    app_.state.engine = create_engine(DB_URL)
    return app_


def build_engines(urls):
    engines = {}
    for url in urls:
        engines[url] = create_engine(url)
    return engines


def make_engine(url):
    # a factory only called once, at import time, below
    return create_engine(url)


ENGINE = make_engine(DB_URL)


def probe(url):
    # NullPool: nothing stays behind once disposed
    e = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with e.connect() as c:
            return c.execute(text("SELECT 1")).scalar()
    finally:
        e.dispose()
