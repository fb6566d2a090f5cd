"""Fast compatibility checks: what SQLAlchemy's own test suite caught with the guard on.

``scripts/sqla_compat.py`` runs SQLAlchemy's pool, engine and ORM transaction tests bare and
guarded (minutes; see docs/reliability.md). Each difference it found is pinned down here.
"""

from __future__ import annotations

import gc
import inspect
import logging
from unittest import mock

import pytest
import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

import pooldoctor
from pooldoctor.guard import GUARD
from pooldoctor.runtime import sqlalchemy as pdsa
from pooldoctor.runtime.server_ids import server_id
from pooldoctor.runtime.tags import tag_connect_params

QUIET = {"log": False, "exit_check": False}


def test_create_engine_keeps_every_engine_keyword(sqlite_url: str, guard: object) -> None:
    """create_engine() sorts its keywords by Engine.__init__'s parameter names: the guard's
    wrapper must keep them, or echo=, execution_options=... raise TypeError."""
    original = inspect.signature(Engine.__init__)
    pooldoctor.instrument(**QUIET)
    assert inspect.signature(Engine.__init__) == original
    engine = sa.create_engine(sqlite_url, echo=False, logging_name="pd",
                              execution_options={"isolation_level": "SERIALIZABLE"},
                              hide_parameters=True, query_cache_size=10)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    assert pdsa.stats_for(engine) is not None  # and the engine is guarded
    engine.dispose()
    pooldoctor.uninstrument()
    assert inspect.signature(Engine.__init__) == original


def test_server_id_calls_nothing_on_unknown_connections() -> None:
    """A wrapper or a test double is not a driver: nothing is called on it."""
    fake = mock.Mock()
    assert server_id(fake) is None
    assert fake.mock_calls == []
    assert server_id(object()) is None
    assert server_id(None) is None


def test_server_id_of_real_drivers(pg_url: str, mysql_url: str) -> None:
    import psycopg
    import pymysql

    pg = psycopg.connect("host=127.0.0.1 user=postgres dbname=test")
    my = pymysql.connect(host="127.0.0.1", user="root", database="test")
    try:
        assert server_id(pg) == pg.info.backend_pid
        assert server_id(my) == my.thread_id()
    finally:
        pg.close()
        my.close()


def test_pgappname_is_the_users_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POOLDOCTOR_NO_TAG", raising=False)
    monkeypatch.setenv("PGAPPNAME", "billing")
    params: dict[str, object] = {}
    tag_connect_params("psycopg", params)
    assert params == {}  # libpq will use PGAPPNAME
    monkeypatch.delenv("PGAPPNAME")
    tag_connect_params("psycopg", params)
    assert str(params["application_name"]).startswith("pooldoctor:")


def test_detach_ends_the_hold(pg_url: str, guard: object) -> None:
    """A detached connection is no longer the pool's: no hold, no PD102 when it is dropped."""
    pooldoctor.instrument(**QUIET)
    engine = sa.create_engine(pg_url, pool_size=1, max_overflow=0)
    conn = engine.connect()
    conn.connection.detach()
    info = pdsa.stats_for(engine)
    assert info is not None
    assert [h for h in GUARD.ledger.holds() if h.pool is info] == []
    assert engine.pool.checkedout() == 0 == info.checked_out  # type: ignore[attr-defined]
    conn.close()
    del conn
    gc.collect()
    GUARD.drain()
    assert pooldoctor.report().codes() == []
    engine.dispose()


def test_checkout_retried_after_disconnection_error(pg_url: str, guard: object) -> None:
    """A checkout listener raising DisconnectionError makes SQLAlchemy retry on the same
    record: one hold, not two (the stale one was reported as PD102)."""
    pooldoctor.instrument(**QUIET)
    engine = sa.create_engine(pg_url, pool_size=1, max_overflow=0)
    calls = []

    @event.listens_for(engine, "checkout")
    def once(dbapi_connection: object, record: object, proxy: object) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise exc.DisconnectionError("stale, retry")

    conn = engine.connect()
    info = pdsa.stats_for(engine)
    assert info is not None
    assert len([h for h in GUARD.ledger.holds() if h.pool is info]) == 1
    assert info.checked_out == 1 == engine.pool.checkedout()  # type: ignore[attr-defined]
    conn.close()
    del conn
    gc.collect()
    GUARD.drain()
    assert len(calls) == 2
    assert [h for h in GUARD.ledger.holds() if h.pool is info] == []
    assert pooldoctor.report().codes() == []
    engine.dispose()


def test_asyncio_gc_collected_connection_counts_once(pg_url: str, guard: object) -> None:
    """SQLAlchemy detaches a garbage-collected asyncio connection: one PD102, counters even."""
    import asyncio
    import warnings

    from sqlalchemy.ext.asyncio import create_async_engine

    async def main() -> None:
        pooldoctor.instrument(**QUIET)
        engine = create_async_engine(pg_url.replace("+psycopg", "+asyncpg"), pool_size=1,
                                     max_overflow=0)

        async def leak() -> None:
            conn = await engine.connect()
            await conn.exec_driver_sql("SELECT 1")

        await leak()
        log = logging.getLogger("sqlalchemy.pool")
        level = log.level
        log.setLevel(logging.CRITICAL + 1)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", exc.SAWarning)
                gc.collect()
        finally:
            log.setLevel(level)
        GUARD.drain()
        info = pdsa.stats_for(engine)
        assert info is not None
        assert [f.code for f in pooldoctor.report().findings] == ["PD102"]
        assert info.checked_out == 0 == engine.sync_engine.pool.checkedout()  # type: ignore
        async with engine.connect() as conn:  # the slot is usable
            await conn.exec_driver_sql("SELECT 1")
        await engine.dispose()

    asyncio.run(main())
