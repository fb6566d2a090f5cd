"""Shared fixtures: real servers (PostgreSQL, MariaDB), SQLite files, a clean guard.

A test that needs a server skips with a reason when the server is unreachable, except when
POOLDOCTOR_REQUIRE_SERVERS=1 (CI), where it fails instead.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_URL = os.environ.get("POOLDOCTOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("POOLDOCTOR_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test")
REQUIRE = os.environ.get("POOLDOCTOR_REQUIRE_SERVERS") == "1"

_reachable: dict[str, str | None] = {}


def _probe(url: str) -> str | None:
    """None when the server answers, else the reason."""
    if url in _reachable:
        return _reachable[url]
    import sqlalchemy as sa

    reason = None
    try:
        eng = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with eng.connect() as c:
            c.exec_driver_sql("SELECT 1")
        eng.dispose()
    except Exception as e:  # pragma: no cover - depends on the machine
        reason = f"{url.split('://')[0]} server unreachable: {type(e).__name__}: {e}"[:300]
    _reachable[url] = reason
    return reason


def need_server(url: str) -> str:
    reason = _probe(url)
    if reason is not None:
        if REQUIRE:
            pytest.fail(f"POOLDOCTOR_REQUIRE_SERVERS=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return url


@pytest.fixture
def pg_url() -> str:
    return need_server(PG_URL)


@pytest.fixture
def mysql_url() -> str:
    return need_server(MYSQL_URL)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db.sqlite'}"


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on SQLite, PostgreSQL (psycopg 3) and MariaDB (PyMySQL)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite'}"
    return need_server(PG_URL if request.param == "postgresql" else MYSQL_URL)


@pytest.fixture
def guard() -> Iterator[object]:
    """A fresh, quiet guard for one test; removed afterwards."""
    from pooldoctor import api
    from pooldoctor.guard import GUARD

    yield GUARD
    api.uninstrument()
    GUARD.clear()
    gc.collect()


@pytest.fixture
def python() -> str:
    return sys.executable
