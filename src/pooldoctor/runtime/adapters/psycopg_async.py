"""psycopg 3's ``AsyncConnection``: open to close is a hold (the sync ``Connection`` is a raw
driver, see ``drivers/psycopg3.py``), sited at the user's ``await AsyncConnection.connect()``,
with the asyncio task's name. ``async with conn:`` closes it. Connections that
``AsyncConnectionPool`` opens for itself are not holds. ``__del__`` ends the hold of a
connection the server or the network already closed (as for the sync connection): collected
that way it held no server connection, and is no PD102.
"""

from __future__ import annotations

import sys
from typing import Any

from ...guard import GUARD
from ...ledger import CONNECTION
from ..drivers.core import Patcher, pool_owned
from .protocol import live_hold
from .raw import closed, closed_check, opened

LABEL = "psycopg_async"
MODULE = "psycopg"
HOLD_LABEL = "psycopg"  # the driver's name in holds, as for the sync connections


def patch(p: Patcher) -> None:
    cls = sys.modules["psycopg"].AsyncConnection
    init, close, finalize = cls.__init__, cls.close, cls.__del__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if GUARD.active and not pool_owned():
            opened(self, HOLD_LABEL)

    async def close_(self: Any) -> None:
        try:
            await close(self)
        finally:
            if getattr(self, "closed", True):
                closed(self)

    def __del__(self: Any, *args: Any) -> None:
        try:
            h = live_hold(self)
            if h is not None and h.kind is CONNECTION and getattr(self, "closed", False):
                closed(self)  # before the weakref's callback reports it collected
        except Exception:
            GUARD.internal_error("psycopg finalizer")
        finalize(self, *args)

    p.wrap(cls, "__init__", __init__)
    p.wrap(cls, "close", close_)
    p.wrap(cls, "__del__", __del__)
    closed_check(HOLD_LABEL, lambda c: bool(getattr(c, "closed", False)))
