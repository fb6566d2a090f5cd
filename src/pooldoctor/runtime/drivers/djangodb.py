"""Django: the connection Django keeps per thread on purpose, and its transactions.

Django opens one connection per thread and database alias, lazily, through its backend's
driver (psycopg, psycopg2, MySQLdb or PyMySQL as MySQLdb, sqlite3), whose wrapper makes it a
raw hold sited at the user's ORM call (Django's frames are library frames, never sites). This
module only marks that hold as kept by Django (``Hold.keeper``): while its thread lives it is
not a leak (no PD101, no PD105); once the thread has ended without ``connection.close()``, it
is PD110. ``atomic()`` and ``set_autocommit(False)`` are the hold's transactions (PD107),
except the class-wide ones Django's ``TestCase`` opens to isolate tests.

Django 5.1's pool (``OPTIONS={"pool": ...}``) lends psycopg_pool connections: those are the pool
adapter's checkouts (no raw hold, so nothing is counted twice), marked kept the same way.
"""

from __future__ import annotations

import os
import sys
import time
from types import FrameType
from typing import Any

from ...guard import GUARD
from ...ledger import CONNECTION, Hold
from ...sites import capture, is_internal_frame, is_library_file, walker
from ..server_ids import server_id
from .core import HOLD, Patcher, live_hold

LABEL = "django"
MODULE = "django.db.backends.base.base"
KEEPER = "django"


def _hold(wrapper: Any) -> Any:
    conn = getattr(wrapper, "connection", None)
    return live_hold(conn) if conn is not None else None


def kept(wrapper: Any) -> None:
    """Mark the hold of ``wrapper``'s new connection as Django's (never raises)."""
    try:
        h = _hold(wrapper)
        if h is None:
            h = _pool_hold(wrapper)
        if h is None:
            h = _library_hold(wrapper)
        if h is not None:
            h.keeper = KEEPER
    except Exception:
        GUARD.internal_error("django connect")


def _pool_hold(wrapper: Any) -> Hold | None:
    """The psycopg_pool adapter's checkout of a connection Django 5.1's pool lent this
    thread (Django keeps it until ``connection.close()``, as it does its own connections)."""
    protocol = sys.modules.get("pooldoctor.runtime.adapters.protocol")
    conn = getattr(wrapper, "connection", None)
    if protocol is None or conn is None:
        return None
    h: Hold | None = protocol.live_hold(conn)
    return h


_DJANGO_DB = (os.path.join(os.sep + "django", "db", ""),
              os.path.join(os.sep + "django", "utils", ""))


def _library_hold(wrapper: Any) -> Hold | None:
    """A hold for a connection Django opened with no user frame on the stack (a generic view,
    the admin: the driver's wrapper declined it), sited at the first library frame outside
    Django's database layer; None for a pool's connection (Django 5.1's pool) or when even
    that frame is missing."""
    conn = getattr(wrapper, "connection", None)
    g = GUARD
    if (conn is None or not g.active or getattr(conn, "_pool", None) is not None
            or (wrapper.settings_dict.get("OPTIONS") or {}).get("pool")):
        return None
    f: FrameType | None = sys._getframe(3)
    while f is not None:
        fn = f.f_code.co_filename
        if not is_internal_frame(f) or (is_library_file(fn) and not any(
                d in fn for d in _DJANGO_DB)):
            break
        f = f.f_back
    if f is None:
        return None
    frames = walker(g.options.stack_depth)(f)
    label = type(conn).__module__.partition(".")[0]
    h = g.ledger.new(conn, g.on_collected, CONNECTION, label, frames, g.pid, server_id(conn))
    try:
        setattr(conn, HOLD, h)  # the driver's close() ends it
    except AttributeError:  # a connection class without a place for the mark: not tracked
        g.ledger.remove(h)
        return None
    return h


_TESTCASES = os.path.join("django", "test", "testcases.py")


def _by_test_framework() -> bool:
    """True when Django's TestCase opened the transaction (its class-wide atomic() that
    isolates tests lasts as long as the test class: not the user's long transaction)."""
    f: FrameType | None = sys._getframe(2)
    for _ in range(12):
        if f is None:
            return False
        if f.f_code.co_filename.endswith(_TESTCASES):
            return True
        f = f.f_back
    return False


def transaction(wrapper: Any, begins: bool) -> None:
    """A transaction begins (autocommit off) or ends on ``wrapper``'s connection."""
    try:
        h = _hold(wrapper)
        if h is None:
            return
        if begins and _by_test_framework():
            return
        if begins:
            h.txn_frames = capture(1, GUARD.options.stack_depth)  # the user's atomic()
            h.txn_reported = False
            h.txn_begun = True
            h.txn_since = time.monotonic()
        elif h.txn_since is not None:
            h.txn_since = h.txn_frames = None
    except Exception:
        GUARD.internal_error("django transaction")


def patch(p: Patcher) -> None:
    cls = sys.modules[MODULE].BaseDatabaseWrapper
    connect, set_autocommit = cls.connect, cls.set_autocommit
    commit, rollback = cls.commit, cls.rollback

    def connect_(self: Any) -> None:
        connect(self)
        kept(self)

    def set_autocommit_(self: Any, autocommit: bool, *args: Any, **kwargs: Any) -> None:
        set_autocommit(self, autocommit, *args, **kwargs)
        transaction(self, begins=not autocommit)

    def commit_(self: Any) -> None:
        try:
            commit(self)
        finally:
            transaction(self, begins=False)

    def rollback_(self: Any) -> None:
        try:
            rollback(self)
        finally:
            transaction(self, begins=False)

    p.wrap(cls, "connect", connect_)
    p.wrap(cls, "set_autocommit", set_autocommit_)
    p.wrap(cls, "commit", commit_)
    p.wrap(cls, "rollback", rollback_)
