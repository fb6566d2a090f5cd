"""Transactions of guarded engines (PD107), seen through the engine's dialect.

``do_begin``/``do_commit``/``do_rollback`` are replaced on the dialect instance (and
``connect()``, to name new connections for the server). The engine's begin/commit/rollback
events would do, but any engine event sets ``Engine._has_events``, and SQLAlchemy then
dispatches its (empty) execution events at every statement: several microseconds a statement.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from ...guard import GUARD
from ...ledger import Hold
from ...sites import capture
from .. import sqltags
from ..hotpath import TxnHook

_monotonic = time.monotonic
_get_ident = threading.get_ident
_active: dict[int, threading.Thread] = threading._active  # type: ignore[attr-defined]


def _hold_of_fairy(fairy: Any) -> Hold | None:
    """The hold of the connection proxy a dialect method was given (None: not a pool's)."""
    try:
        h: Hold | None = fairy._connection_record.__dict__.get("_pd_hold")
    except AttributeError:  # a raw DB-API connection, or a detached proxy (no record)
        return None
    return h


def _make_begin(orig: Callable[[Any], None]) -> Callable[[Any], None]:
    if TxnHook is not None:
        return TxnHook(orig, True)

    def do_begin(dbapi_connection: Any) -> None:
        """The first transaction of a checkout is told by the checkout's stack (an ORM
        Session checks out where it begins; Core code begins next to where it checked out);
        a later one on the same checkout captures its own. A capture here would cost more
        than the checkout's (it climbs through SQLAlchemy's execution frames)."""
        orig(dbapi_connection)
        try:
            h = _hold_of_fairy(dbapi_connection)
            if h is not None:
                ident = _get_ident()  # the same ident may be a new thread's (reused)
                if h.thread_id != ident or h.thread is not _active.get(ident):
                    h.adopt()  # handed to this thread, which uses it now (no PD110 then)
                h.txn_since = _monotonic()
                h.txn_reported = False
                if h.txn_begun:
                    h.txn_frames = capture(1, GUARD.options.stack_depth)
                else:
                    h.txn_begun = True
        except Exception:
            GUARD.internal_error("transaction begin")

    return do_begin


def _make_end(orig: Callable[[Any], None]) -> Callable[[Any], None]:
    if TxnHook is not None:
        return TxnHook(orig, False)

    def do_end(dbapi_connection: Any) -> None:
        """A commit or rollback (every checkin's reset too): the transaction is over.
        (:func:`_hold_of_fairy` and :func:`_txn_ended` written out: two calls less.)"""
        try:
            orig(dbapi_connection)
        finally:
            try:
                h = dbapi_connection._connection_record.__dict__.get("_pd_hold")
                if h is not None and h.txn_since is not None:
                    h.txn_since = None
                    h.txn_frames = None
            except AttributeError:  # a raw DB-API connection, or a detached proxy (no record)
                pass
            except Exception:
                GUARD.internal_error("transaction end")

    return do_end


def _txn_ended(h: Hold | None) -> None:
    try:
        if h is not None and h.txn_since is not None:
            h.txn_since = None
            h.txn_frames = None
    except Exception:
        GUARD.internal_error("transaction end")


def _on_invalidate(dbapi_connection: Any, record: Any, exception: Any) -> None:
    """An invalidated connection's transaction is gone (no rollback will be seen)."""
    _txn_ended(record.__dict__.get("_pd_hold"))


def _make_dialect_connect(orig: Callable[..., Any]) -> Callable[..., Any]:
    def connect(*cargs: Any, **cparams: Any) -> Any:
        """The dialect opening a connection: name it for the server (application_name...)."""
        if GUARD.active:
            try:
                from ..tags import tag_connect_params

                tag_connect_params(getattr(getattr(orig, "__self__", None), "driver", ""),
                                   cparams)
            except Exception:
                GUARD.internal_error("dialect connect")
        return orig(*cargs, **cparams)

    return connect


# Not the do_connect event: any dialect event sets Dialect._has_events, and SQLAlchemy then
# dispatches the dialect's (empty) execution events at every statement.
_TXN_METHODS = (("do_begin", _make_begin), ("do_commit", _make_end),
                ("do_rollback", _make_end), ("connect", _make_dialect_connect))
_dialects: weakref.WeakSet[Any] = weakref.WeakSet()


def _wrap_dialect(dialect: Any) -> None:
    if sqltags.enabled:  # statement tags (runtime/sqltags.py), only when asked for
        sqltags.wrap_dialect(dialect)
    d = dialect.__dict__
    if "_pd_saved" in d:
        return
    # what the instance had of its own (usually nothing: the methods are the class's)
    d["_pd_saved"] = {name: d[name] for name, _ in _TXN_METHODS if name in d}
    for name, make in _TXN_METHODS:
        d[name] = make(getattr(dialect, name))
    _dialects.add(dialect)


def _unwrap_dialects() -> None:
    for dialect in list(_dialects):
        d = dialect.__dict__
        saved = d.pop("_pd_saved", None)
        if saved is not None:
            for name, _ in _TXN_METHODS:
                d.pop(name, None)
            d.update(saved)
    _dialects.clear()


def guarded_dialects() -> list[Any]:
    """The dialects of the guarded engines (statement tags wrap them when turned on)."""
    return list(_dialects)

