"""aiosqlite: a connection is a hold from ``await aiosqlite.connect(...)`` (or ``async
with``) to ``await conn.close()``, sited at the user's line, with the asyncio task's name.

aiosqlite runs ``sqlite3.connect`` in its own worker thread: the sqlite3 driver's hook sees
aiosqlite's frames above it and does not count that as a second hold (``pool_owned``).
"""

from __future__ import annotations

import sys
from typing import Any

from ...guard import GUARD
from ..drivers.core import Patcher, pool_owned
from .raw import closed, opened

LABEL = "aiosqlite"
MODULE = "aiosqlite"


def patch(p: Patcher) -> None:
    cls = sys.modules["aiosqlite.core"].Connection
    connect, close = cls._connect, cls.close

    async def _connect(self: Any) -> Any:
        result = await connect(self)
        if GUARD.active and not pool_owned():  # SQLAlchemy's aiosqlite pool: a checkout
            opened(self, LABEL, server=False)
        return result

    async def close_(self: Any) -> None:
        try:
            await close(self)
        finally:
            closed(self)

    p.wrap(cls, "_connect", _connect)
    p.wrap(cls, "close", close_)
