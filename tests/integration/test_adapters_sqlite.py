"""aiosqlite on SQLite, and the lazy loading of every adapter (in fresh interpreters)."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

import pooldoctor
from pooldoctor.guard import GUARD

from ..adapter_helpers import adapter_holds, findings, here, wait_finding


@pytest.fixture
def quiet(guard: Any) -> Iterator[None]:
    GUARD.clear()  # what earlier tests of the session left
    pooldoctor.instrument(leak_threshold=0.2, log=False)
    yield


async def test_aiosqlite_open_to_close_one_hold_in_a_task(quiet: None, tmp_path: Path) -> None:
    async def leak() -> tuple[Any, int]:
        return await aiosqlite.connect(tmp_path / "a.db"), here()

    conn, line = await asyncio.create_task(leak(), name="sqlite-task")
    [h] = adapter_holds()  # sqlite3.connect in aiosqlite's thread is not a second hold
    assert h["kind"] == "connection" and h["pool"] == "aiosqlite"
    assert h["site"]["line"] == line and h["task"] == "sqlite-task"
    f = wait_finding("PD101", line)
    assert f.details["task"] == "sqlite-task"
    await conn.close()
    assert adapter_holds() == []
    assert findings("PD101")[0].details.get("returned_count") == 1


async def test_aiosqlite_clean_twin(quiet: None, tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "b.db") as db:
        await db.execute("CREATE TABLE t (x)")
        await db.commit()
    db2 = await aiosqlite.connect(tmp_path / "b.db")
    await db2.close()
    gc.collect()
    assert adapter_holds() == [] and findings() == [] and GUARD.check_exit() == []


LIBRARIES = ("sqlalchemy", "psycopg", "psycopg2", "psycopg_pool", "asyncpg", "aiomysql",
             "aiosqlite", "dbutils", "pymysql", "MySQLdb", "mysql", "django", "sqlite3")


def _fresh(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_instrument_imports_no_library_the_program_has_not() -> None:
    urls_pulls_sa = _fresh("import sys, pooldoctor.urls; print('sqlalchemy' in sys.modules)")
    printed = _fresh(f"""
        import sys
        import pooldoctor
        pooldoctor.instrument(log=False)
        print(",".join(m for m in {LIBRARIES!r} if m in sys.modules))
    """)
    loaded = set(filter(None, printed.split(",")))
    if urls_pulls_sa == "True":  # pooldoctor.urls imports SQLAlchemy on its own for now
        loaded.discard("sqlalchemy")
    assert loaded == set()


def test_adapters_load_when_their_library_is_imported_and_uninstrument_undoes_them() -> None:
    printed = _fresh("""
        import sys
        import pooldoctor
        from pooldoctor.runtime import registry
        pooldoctor.instrument(log=False)
        before = registry.adapters_installed()
        import psycopg_pool, asyncpg, aiosqlite
        from dbutils.pooled_db import PooledDB
        after = registry.adapters_installed()
        pooldoctor.uninstrument()
        undone = (registry.adapters_installed() == []
                  and not hasattr(PooledDB.connection, "__wrapped__")
                  and not hasattr(asyncpg.pool.Pool._acquire, "__wrapped__"))
        print(before, after, undone)
    """)
    assert printed == ("[] ['aiosqlite', 'asyncpg', 'dbutils.pooled_db', 'psycopg_async', "
                       "'psycopg_pool'] True")


async def test_drivers_false_leaves_raw_async_connections_alone(guard: Any,
                                                                tmp_path: Path) -> None:
    GUARD.clear()
    pooldoctor.instrument(drivers=False, log=False)
    db = await aiosqlite.connect(tmp_path / "c.db")
    try:
        assert adapter_holds() == []
    finally:
        await db.close()
    pooldoctor.instrument(log=False)
    db = await aiosqlite.connect(tmp_path / "c.db")
    assert [h["pool"] for h in adapter_holds()] == ["aiosqlite"]
    await db.close()
