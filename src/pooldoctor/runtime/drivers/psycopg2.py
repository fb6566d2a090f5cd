"""psycopg2: ``connect`` is a module function and the connection is a C type.

The wrapped ``connect`` passes ``connection_factory=`` a cached subclass of the factory the
caller chose (default ``psycopg2.extensions.connection``) whose ``close`` ends the hold, and adds
``application_name``. ``with conn:`` does not close a psycopg2 connection (it only ends the
transaction). Old references (``from psycopg2 import connect``) are rebound in loaded modules.
"""

from __future__ import annotations

import sys
from typing import Any

from ...guard import GUARD
from ..tags import tag_connect_params
from .core import (
    MARK_DEFAULTS,
    Patcher,
    counting_cursors,
    ending_hold,
    guarded_subclass,
    open_hold,
    pool_owned,
)

LABEL = "psycopg2"
MODULE = "psycopg2"


def _connection_ns(base: type) -> dict[str, Any]:
    return {"close": ending_hold(base.close),  # type: ignore[attr-defined]
            "cursor": counting_cursors(base.cursor),  # type: ignore[attr-defined]
            **MARK_DEFAULTS}


def patch(p: Patcher) -> None:
    mod = sys.modules["psycopg2"]
    original = mod.connect
    default_factory = mod.extensions.connection

    def connect(dsn: Any = None, connection_factory: Any = None, cursor_factory: Any = None,
                **kwargs: Any) -> Any:
        if not GUARD.active or pool_owned():
            return original(dsn, connection_factory, cursor_factory, **kwargs)
        factory = connection_factory
        try:
            params = dict(kwargs, dsn=dsn)
            tag_connect_params("psycopg2", params)
            if "application_name" in params:
                kwargs["application_name"] = params["application_name"]
            factory = guarded_subclass(connection_factory or default_factory, "connection",
                                       _connection_ns)
        except Exception:
            GUARD.internal_error("psycopg2 connect")
        conn = original(dsn, factory, cursor_factory, **kwargs)
        if getattr(type(conn), "_pd_guarded", False):
            open_hold(conn, LABEL)
        return conn

    connect.__doc__ = original.__doc__
    connect.__wrapped__ = original  # type: ignore[attr-defined]
    p.set(mod, "connect", connect)
    p.rebind(original, connect)
