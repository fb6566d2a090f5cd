"""PD103 for an AsyncEngine names the waiting task's own line, also when the checkout runs in
a task of its own (asyncio.gather / wait_for), not the line that started the event loop.

Known limit (CPython): a bare ``await engine.connect()`` drives SQLAlchemy's coroutine through
``__await__``'s wrapper, whose frame chain skips the awaiting function: the site is then its
caller's await (still the waiting task's own code)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import pooldoctor

pytest.importorskip("aiosqlite")
from sqlalchemy.ext.asyncio import create_async_engine


@pytest.mark.parametrize("how", ["async_with", "gather", "wait_for"])
def test_pd103_site_is_the_waiting_tasks_line(tmp_path: Path, guard: object, how: str) -> None:
    pooldoctor.instrument(log=False, exit_check=False)
    lines: dict[str, int] = {}

    async def waiter(engine: Any) -> None:
        lines["wait"] = sys._getframe().f_lineno + 2
        if how == "async_with":
            async with engine.connect():
                pass
        elif how == "gather":
            await asyncio.gather(engine.connect())
        else:
            await asyncio.wait_for(engine.connect(), 5)

    async def main() -> None:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", pool_size=1,
                                     max_overflow=0, pool_timeout=0.2)
        held = await engine.connect()
        try:
            with pytest.raises(sa.exc.TimeoutError, match="held by"):
                await waiter(engine)
        finally:
            await held.close()
            await engine.dispose()

    asyncio.run(main())
    (f,) = [f for f in pooldoctor.report().findings if f.code == "PD103"]
    expected = lines["wait"] + {"async_with": 0, "gather": 3, "wait_for": 5}[how]
    assert f.site is not None and f.site.file == __file__
    assert (f.site.function, f.site.line) == ("waiter", expected)
