"""psycopg 3: ``psycopg.connect`` is a bound ``Connection.connect`` captured at import, so the
class is patched where ``connect`` looks things up at call time.

``_get_connection_params`` (a classmethod) adds ``application_name``; ``__init__`` (called by
``_connect_gen`` once the server answered) opens the hold unless a pool is connecting;
``close`` ends it. ``with conn:`` calls ``close()``. Connections lent by psycopg_pool have
``_pool`` and are never held here. ``__del__`` ends the hold of a connection the server or the
network already closed (``closed`` is true, psycopg itself does not warn): collected that way
it held no server connection, and is no PD102.
"""

from __future__ import annotations

import sys
from typing import Any

from ...guard import GUARD
from ..tags import tag_connect_params
from .core import HOLD, Patcher, close_hold, connection_closed, open_hold, patch_cursors, pool_owned

LABEL = "psycopg"
MODULE = "psycopg"


def patch(p: Patcher) -> None:
    cls = sys.modules["psycopg"].Connection
    params_fn = cls.__dict__["_get_connection_params"].__func__
    init, close, finalize = cls.__init__, cls.close, cls.__del__

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
                if getattr(self, "_pool", None) is not None:
                    _closed_unreturned(self)

    def __del__(self: Any, *args: Any) -> None:
        try:
            if getattr(self, HOLD, None) is not None and connection_closed(self):
                close_hold(self)  # before the weakref's callback reports it collected
        except Exception:
            GUARD.internal_error("psycopg finalizer")
        finalize(self, *args)

    p.set(cls, "_get_connection_params", classmethod(_get_connection_params))
    p.wrap(cls, "__init__", __init__)
    p.wrap(cls, "close", close_)
    p.wrap(cls, "__del__", __del__)
    patch_cursors(p, cls)


def _closed_unreturned(conn: Any) -> None:
    """A connection psycopg_pool lent was closed, not given back (``putconn()`` would have
    ended its checkout first): the pool still counts it out, so PD102 says how it ended."""
    try:
        protocol = sys.modules.get("pooldoctor.runtime.adapters.protocol")
        h = protocol.live_hold(conn) if protocol is not None else None
        if h is not None:
            h.extra = {**(h.extra or {}), "closed_unreturned": True}
    except Exception:
        GUARD.internal_error("psycopg close")
