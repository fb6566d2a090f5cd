"""mysqlclient (MySQLdb): ``MySQLdb.connect`` builds ``MySQLdb.connections.Connection``, a Python
subclass of the C ``_mysql.connection``; the Python class is patched (every old reference
reaches it). ``close`` is inherited from C: the patch adds one to the Python class and removes it
on uninstall. mysqlclient >= 2.0 closes on ``with`` exit.
"""

from __future__ import annotations

import sys
from typing import Any

from ...guard import GUARD
from .core import Patcher, ending_hold, open_hold, patch_cursors, pool_owned

LABEL = "MySQLdb"
MODULE = "MySQLdb.connections"


def patch(p: Patcher) -> None:
    cls = sys.modules["MySQLdb.connections"].Connection
    init, close = cls.__init__, cls.close

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if GUARD.active and not pool_owned():
            open_hold(self, LABEL)



    p.wrap(cls, "__init__", __init__)
    p.wrap(cls, "close", ending_hold(close))
    patch_cursors(p, cls)
