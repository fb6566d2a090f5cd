"""Fixtures and tests of the shop (pytest shapes; named so that pytest never collects it)."""
import sqlite3

import pytest

from shop.database import engine


@pytest.fixture
def conn():
    yield engine.connect()  # expect: PD203


@pytest.fixture
def named_conn():
    c = engine.connect()  # expect: PD203
    yield c


@pytest.fixture
def closed_conn():
    c = engine.connect()
    yield c
    c.close()


def test_orders_table(tmp_path):
    db = sqlite3.connect(tmp_path / "shop.db")  # closed unless an assert fails: silent
    db.execute("CREATE TABLE orders (id INTEGER)")
    assert db.execute("SELECT count(*) FROM orders").fetchone() == (0,)
    db.close()
