"""mysql-connector-python: ``MySQLConnection`` (pure Python) and ``CMySQLConnection`` (C
extension) are patched at class level, so ``mysql.connector.connect`` and direct instantiation
are both seen. ``close`` and its alias ``disconnect`` end the hold; ``with`` calls ``close``.
Connections that ``MySQLConnectionPool`` keeps are not held (``PooledMySQLConnection`` is the
pool's business). A connection made with no connect arguments and connected later is not held.
"""

from __future__ import annotations

import sys
from typing import Any

from ...guard import GUARD
from .core import Patcher, ending_hold, open_hold, patch_cursors, pool_owned

LABEL = "mysql.connector"
MODULE = "mysql.connector"


def _patch_class(p: Patcher, cls: Any) -> None:
    init, close = cls.__init__, cls.close

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if GUARD.active and kwargs and not pool_owned():
            open_hold(self, LABEL)



    p.wrap(cls, "__init__", __init__)
    p.wrap(cls, "close", ending_hold(close))
    p.wrap(cls, "disconnect", ending_hold(close))
    patch_cursors(p, cls)


def patch(p: Patcher) -> None:
    for modname, clsname in (("mysql.connector.connection", "MySQLConnection"),
                             ("mysql.connector.connection_cext", "CMySQLConnection")):
        mod = sys.modules.get(modname)
        cls = getattr(mod, clsname, None) if mod is not None else None
        if isinstance(cls, type):
            _patch_class(p, cls)
