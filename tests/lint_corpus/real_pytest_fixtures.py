"""pytest fixtures: code after `yield` runs at teardown even when the test fails."""
import sqlite3

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session


@pytest.fixture
def conn(tmp_path):
    conn = sqlite3.connect(tmp_path / "t.db")
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def engine():
    engine = create_engine("sqlite://")
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine):
    session = Session(engine)
    yield session
    session.rollback()
    session.close()


@pytest.fixture
def pg(request):
    conn = psycopg.connect("dbname=test")
    request.addfinalizer(conn.close)
    return conn


def test_query(conn):
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_leaks():
    conn = sqlite3.connect(":memory:")  # expect: PD201
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_engine(engine):
    with engine.connect() as c:
        assert c.execute(text("SELECT 1")).scalar() == 1
