"""PD104 counts what costs connections (issue 19, item 3): in-memory SQLite engines are
separate databases, engines holding nothing do not count, and the count in the message is the
one that met the threshold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

import pooldoctor

from .test_runtime_guard import QUIET, findings, here

# the pool SQLAlchemy picks for a `mode=memory` URL, named (its picking it is deprecated)
MEMORY_POOL: dict[str, Any] = {"poolclass": sa.pool.SingletonThreadPool}


def test_in_memory_sqlite_engines_are_separate_databases(guard: object) -> None:
    pooldoctor.instrument(engine_threshold=2, **QUIET)
    kept: list[Any] = []
    for url in ["sqlite://", "sqlite:///:memory:"] * 3 + [
            "sqlite:///file:mem1?mode=memory&uri=true"] * 2:
        e = sa.create_engine(url, **MEMORY_POOL if "mode=memory" in url else {})
        kept.append((e, e.connect()))
    assert findings("PD104") == []
    for e, c in kept:
        c.close()
        e.dispose()


def test_shared_cache_memory_database_is_one_database(guard: object) -> None:
    pooldoctor.instrument(engine_threshold=2, **QUIET)
    url = "sqlite:///file:shared1?mode=memory&cache=shared&uri=true"
    kept = []
    for _ in range(2):
        e = sa.create_engine(url, **MEMORY_POOL)
        kept.append((e, e.connect()))
    assert len(findings("PD104")) == 1
    for e, c in kept:
        c.close()
        e.dispose()


def test_engines_holding_nothing_do_not_count(tmp_path: Path, guard: object) -> None:
    """Disposed engines left as garbage by earlier calls (not collected yet) cost nothing."""
    pooldoctor.instrument(engine_threshold=3, **QUIET)
    url = f"sqlite:///{tmp_path / 'a.db'}"
    for _ in range(6):
        e = sa.create_engine(url)
        with e.connect() as c:
            c.exec_driver_sql("select 1")
        e.dispose()
        box: dict[str, Any] = {"engine": e}
        box["self"] = box  # garbage, but only a collection frees it
        del e, box
    assert findings("PD104") == []


def test_engines_holding_connections_count_and_the_message_says_so(
        tmp_path: Path, guard: object) -> None:
    pooldoctor.instrument(engine_threshold=3, **QUIET)
    url = f"sqlite:///{tmp_path / 'b.db'}"
    kept = []
    sa.create_engine(url).dispose()  # holds nothing: not counted
    for _ in range(3):
        e = sa.create_engine(url)
        line = here() - 1
        with e.connect() as c:  # leaves an idle connection in the engine's pool
            c.exec_driver_sql("select 1")
        kept.append(e)
    [f] = findings("PD104")
    assert f.site is not None and f.site.line == line
    assert f.details["engines"] == 3 and f.details["connections"] == 2
    assert f.message.startswith("3 engines for ") and "(threshold 3)" in f.message
    assert "the 2 before it hold 2 connections" in f.message
    for e in kept:
        e.dispose()


def test_pd104_on_postgresql(pg_url: str, guard: object) -> None:
    pooldoctor.instrument(engine_threshold=2, **QUIET)
    engines = [sa.create_engine(pg_url, pool_size=1)]
    try:
        with engines[0].connect() as c:
            c.exec_driver_sql("select 1")
        engines.append(sa.create_engine(pg_url, pool_size=1))
        [f] = findings("PD104")
        assert f.details["engines"] == 2 and f.details["connections"] == 1
    finally:
        for e in engines:
            e.dispose()
