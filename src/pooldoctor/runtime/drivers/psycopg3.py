"""psycopg 3: ``psycopg.connect`` is a bound ``Connection.connect`` captured at import, so the
class is patched where ``connect`` looks things up at call time.

``_get_connection_params`` (a classmethod) adds ``application_name``; ``__init__`` (called by
``_connect_gen`` once the server answered) opens the hold unless a pool is connecting;
``close`` ends it. ``with conn:`` calls ``close()``. Connections lent by psycopg_pool have
``_pool`` and are never held here.
"""

from __future__ import annotations

import sys
from typing import Any

from ...guard import GUARD
from ..tags import tag_connect_params
from .core import Patcher, close_hold, open_hold, patch_cursors, pool_owned

LABEL = "psycopg"
MODULE = "psycopg"


def patch(p: Patcher) -> None:
    cls = sys.modules["psycopg"].Connection
    params_fn = cls.__dict__["_get_connection_params"].__func__
    init, close = cls.__init__, cls.close

    def _get_connection_params(klass: Any, /, conninfo: str = "", **kwargs: Any) -> Any:
        if GUARD.active and "application_name" not in kwargs:
            try:
                params: dict[str, Any] = {"conninfo": conninfo, **kwargs}
                tag_connect_params("psycopg", params)
                if "application_name" in params:
                    kwargs["application_name"] = params["application_name"]
            except Exception:
                GUARD.internal_error("psycopg params")
        return params_fn(klass, conninfo, **kwargs)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if GUARD.active and not pool_owned():
            open_hold(self, LABEL)

    def close_(self: Any) -> None:
        try:
            close(self)
        finally:
            if getattr(self, "closed", True):
                close_hold(self)


    p.set(cls, "_get_connection_params", classmethod(_get_connection_params))
    p.wrap(cls, "__init__", __init__)
    p.wrap(cls, "close", close_)
    patch_cursors(p, cls)
