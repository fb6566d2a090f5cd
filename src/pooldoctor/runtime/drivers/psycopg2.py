"""psycopg2: ``connect`` is a module function and the connection is a C type.

The wrapped ``connect`` passes ``connection_factory=`` a cached subclass of the factory the
caller chose (default ``psycopg2.extensions.connection``) whose ``close`` ends the hold, and adds
``application_name``; while statement tags are on, its ``cursor()`` hands out a tagging subclass
of the cursor class (runtime/rawtags.py). ``with conn:`` does not close a psycopg2 connection
(it only ends the transaction). Old references (``from psycopg2 import connect``) are rebound
in loaded modules.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ...guard import GUARD
from ..tags import tag_connect_params
from .core import (
    CURSOR_CLASSES,
    HOLD,
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


def _tagging(cursor: Callable[..., Any]) -> Callable[..., Any]:
    """While statement tags are on, hand out the tagging subclass of the cursor class asked
    for (``cursor(name=None, cursor_factory=None, ...)``; runtime/rawtags.py)."""

    def cursor_(self: Any, *args: Any, **kwargs: Any) -> Any:
        tagging = CURSOR_CLASSES.get(LABEL)
        if tagging is not None and getattr(self, HOLD, None) is not None:
            try:
                if len(args) > 1:
                    factory = tagging(args[1] or self.cursor_factory or _cursor())
                    args = (args[0], factory, *args[2:])
                else:
                    kwargs["cursor_factory"] = tagging(kwargs.get("cursor_factory")
                                                       or self.cursor_factory or _cursor())
            except Exception:
                GUARD.internal_error("psycopg2 cursor")
        return cursor(self, *args, **kwargs)

    return cursor_


def _cursor() -> Any:
    return sys.modules["psycopg2"].extensions.cursor


def _connection_ns(base: type) -> dict[str, Any]:
    return {"close": ending_hold(base.close),  # type: ignore[attr-defined]
            "cursor": counting_cursors(_tagging(base.cursor)),  # type: ignore[attr-defined]
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
