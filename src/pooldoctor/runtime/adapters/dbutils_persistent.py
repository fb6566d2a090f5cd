"""DBUtils ``PersistentDB``: the connection it keeps per thread on purpose.

``connection()`` hands each thread its own steady connection and keeps it (the wrapper's
``close()`` is ignored unless ``closeable=True``). The first ``connection()`` of a thread (or
the first after the connection was really closed) is a checkout kept by DBUtils
(``Hold.keeper``), sited at the user's call: while its thread lives it is no leak (no PD101,
no PD105); once the thread has ended with the connection still open, it is PD110. The hold
ends when the steady connection is closed (``_close()``: ``close()`` with ``closeable=True``,
or DBUtils' own ``__del__`` once the thread's local data goes). The driver connections it
opens are DBUtils' own, never raw holds.
"""

from __future__ import annotations

import sys
import threading
import weakref
from typing import Any

from ...guard import GUARD
from ..drivers.core import Patcher
from .dbutils_pooled import address
from .fastpath import checkin
from .protocol import checkin as careful_checkin
from .protocol import checkout, live_hold
from .stats import PoolStats, stats_of

LABEL = "dbutils.persistent_db"
MODULE = "dbutils.persistent_db"
KEEPER = "DBUtils"  # Hold.keeper: "DBUtils keeps one per thread"


def _stats(db: Any) -> PoolStats:
    return stats_of(db, "dbutils", address=lambda p: address(p._creator, p._kwargs))


class ThreadRef:
    """The owner of a hold, as a ``Thread`` is to the guard (``name``, ``ident``,
    ``is_alive()``), by a weak reference: DBUtils' default thread-local data lives as long as
    the thread's ``Thread`` object, and so does the connection in it; a hold keeping that
    object would keep the connection open. Collected, the thread has ended."""

    __slots__ = ("_ref", "ident", "name")

    def __init__(self, t: threading.Thread) -> None:
        self._ref = weakref.ref(t)
        self.name = t.name
        self.ident = t.ident

    def is_alive(self) -> bool:
        t = self._ref()
        return t is not None and t.is_alive()


def _kept(db: Any, con: Any) -> None:
    """``con`` is the calling thread's new persistent connection: a hold kept by DBUtils,
    sited at the caller of ``connection()``."""
    try:
        h = checkout(_stats(db), con, getattr(con, "_con", None), skip=2)
        if h is not None:
            h.keeper = KEEPER
            t = h.thread
            if t is not None and t is not threading.main_thread():
                h.thread = ThreadRef(t)  # type: ignore[assignment]
    except Exception:
        GUARD.internal_error("dbutils persistent checkout")


def patch(p: Patcher) -> None:
    db_cls = sys.modules["dbutils.persistent_db"].PersistentDB
    steady = sys.modules["dbutils.steady_db"].SteadyDBConnection
    connection, close = db_cls.connection, steady._close

    def connection_(self: Any, shareable: bool = False) -> Any:
        con = connection(self, shareable)
        if GUARD.active and live_hold(con) is None:
            _kept(self, con)
        return con

    def _close(self: Any) -> None:
        """Every real close of a steady connection (``__del__`` included) ends its hold."""
        if not checkin(self):
            careful_checkin(self)
        close(self)

    p.wrap(db_cls, "connection", connection_)
    p.wrap(steady, "_close", _close)
