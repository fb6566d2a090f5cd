"""PyMySQL: ``pymysql.connect`` *is* the ``Connection`` class, so the class is patched.

Patching ``Connection`` reaches every old reference (``from pymysql import connect``) and
user subclasses. ``__init__`` tags the connection (``program_name``) and notes whether a pool is
opening it; the ``connect`` method opens the hold (also for ``defer_connect=True`` and
``ping(reconnect=True)`` after a close); ``close`` ends it, and so does ``_force_close`` when the
socket died (the server already dropped that connection). ``__del__`` is PyMySQL's own silent
close: a connection collected without ``close()`` is reported as PD102.
"""

from __future__ import annotations

import sys
from typing import Any

from ...guard import GUARD
from ..tags import tag_connect_params, tag_mysql_attrs
from .core import (
    POOLED,
    Patcher,
    ending_hold,
    live_hold,
    open_hold,
    patch_cursors,
    pool_owned,
)

LABEL = "pymysql"
MODULE = "pymysql"


def patch(p: Patcher) -> None:
    cls = sys.modules["pymysql.connections"].Connection
    init, connect, close = cls.__init__, cls.connect, cls.close
    force_close = cls._force_close

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if GUARD.active:
            try:
                if pool_owned():
                    setattr(self, POOLED, True)
                else:
                    tag_connect_params("pymysql", kwargs)
            except Exception:
                GUARD.internal_error("pymysql init")
        init(self, *args, **kwargs)

    def connect_(self: Any, *args: Any, **kwargs: Any) -> Any:
        if GUARD.active:
            try:
                tag_mysql_attrs(self)  # host and pid as connection attributes
            except Exception:
                GUARD.internal_error("pymysql attributes")
        result = connect(self, *args, **kwargs)
        if GUARD.active and not getattr(self, POOLED, False) and live_hold(self) is None:
            open_hold(self, LABEL)
        return result




    p.wrap(cls, "__init__", __init__)
    p.wrap(cls, "connect", connect_)
    p.wrap(cls, "close", ending_hold(close))
    p.wrap(cls, "_force_close", ending_hold(force_close))
    patch_cursors(p, cls)
