"""mysqlclient (MySQLdb): ``MySQLdb.connect`` builds ``MySQLdb.connections.Connection``, a Python
subclass of the C ``_mysql.connection``; the Python class is patched (every old reference
reaches it). ``close`` is inherited from C: the patch adds one to the Python class and removes it
on uninstall. mysqlclient >= 2.0 closes on ``with`` exit.
"""

from __future__ import annotations

import sys
from typing import Any

from ...guard import GUARD
from .core import Patcher, close_hold, open_hold, pool_owned, track_cursor

LABEL = "MySQLdb"
MODULE = "MySQLdb.connections"


def patch(p: Patcher) -> None:
    cls = sys.modules["MySQLdb.connections"].Connection
    init, close, cursor = cls.__init__, cls.close, cls.cursor

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if GUARD.active and not pool_owned():
            open_hold(self, LABEL)

    def close_(self: Any) -> None:
        try:
            close(self)
        finally:
            close_hold(self)

    def cursor_(self: Any, *args: Any, **kwargs: Any) -> Any:
        cur = cursor(self, *args, **kwargs)
        track_cursor(self, cur)
        return cur

    p.wrap(cls, "__init__", __init__)
    p.wrap(cls, "close", close_)
    p.wrap(cls, "cursor", cursor_)
