"""What every driver wrapper shares: holds for raw connections, cursors, pool detection, patches.

A raw connection becomes a hold when it is opened by user code; the hold ends on ``close()``.
Connections that a pool opens for itself (SQLAlchemy's pool, psycopg_pool, psycopg2.pool,
mysql.connector's pool, DBUtils, asyncpg's and aiomysql's pools, aiosqlite's worker thread)
are not raw holds: the stack above the driver's connect shows a frame of that pool, which
:func:`pool_owned` finds in a short walk.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from ...guard import GUARD
from ...ledger import CONNECTION, Hold
from ...sites import capture
from ..server_ids import server_id

# Instance attributes, read with getattr() and set with setattr(), never through the
# connection's __dict__: on CPython 3.11+ touching an object's __dict__ turns its attribute
# storage into a real dict for good, and the interpreter then stops specialising the
# driver's own attribute reads on that connection (about 4% more CPU per psycopg statement).
HOLD = "_pd_hold"  # the connection's live hold
CURSORS = "_pd_cursors"  # weak references to its cursors
POOLED = "_pd_pooled"  # opened by a pool, never a raw hold
_MISSING = object()

_get_ident = threading.get_ident
_POOL_WALK = 24  # frames examined above the driver's connect
_sep = os.sep
# (path fragment, function names or None for any function in that file or folder)
_POOL_FRAMES: tuple[tuple[str, frozenset[str] | None], ...] = (
    (f"{_sep}sqlalchemy{_sep}pool{_sep}", None),
    (f"{_sep}psycopg_pool{_sep}", None),
    (f"{_sep}psycopg2{_sep}pool.py", None),
    (f"{_sep}dbutils{_sep}", None),
    (f"{_sep}aiosqlite{_sep}", None),
    (f"{_sep}asyncpg{_sep}pool.py", None),
    (f"{_sep}aiomysql{_sep}pool.py", None),
    # SQLAlchemy's asyncio pools await the driver's connect from greenlet_spawn (their own
    # frames are in a child greenlet, off the coroutine's chain)
    (f"{_sep}sqlalchemy{_sep}util{_sep}", frozenset({"greenlet_spawn"})),
    (f"{_sep}mysql{_sep}connector{_sep}pooling.py",
     frozenset({"add_connection", "get_connection", "_get_pooled_connection"})),
)
_pool_codes: dict[CodeType, bool] = {}


def _is_pool_code(code: CodeType) -> bool:
    fn = code.co_filename
    for fragment, names in _POOL_FRAMES:
        if fragment in fn and (names is None or code.co_name in names):
            return True
    return False


def pool_owned(skip: int = 1) -> bool:
    """True when a pool's frame is on the stack above the caller (a pool is connecting)."""
    try:
        f: FrameType | None = sys._getframe(skip + 1)
    except ValueError:
        return False
    cache = _pool_codes
    n = 0
    while f is not None and n < _POOL_WALK:
        code = f.f_code
        owned = cache.get(code)
        if owned is None:
            owned = cache[code] = _is_pool_code(code)
        if owned:
            return True
        f = f.f_back
        n += 1
    return False


def open_hold(conn: Any, driver: str, server: bool = True) -> Hold | None:
    """Record ``conn`` (just opened by user code) as a hold; None when not guarded.

    ``server=False`` for embedded databases (no server connection id to look up)."""
    g = GUARD
    try:
        if not g.active:
            return None
        frames = capture(1, g.options.stack_depth)
        if not frames:
            return None  # opened with no user code on the stack: not the user's connection
        h = g.ledger.new(conn, g.on_collected, CONNECTION, driver, frames, g.pid,
                         server_id(conn) if server else None)
        setattr(conn, HOLD, h)  # PD108: ledger.new() already ran the per-site check
        return h
    except Exception:
        g.internal_error(f"{driver} connect")
        return None


def close_hold(conn: Any) -> None:
    """End the hold of ``conn`` if it has one (a close, never raises)."""
    try:
        h: Hold | None = getattr(conn, HOLD, None)
        if h is not None:
            setattr(conn, HOLD, None)
            GUARD.release(h)
    except Exception:
        GUARD.internal_error("dbapi close")


def ending_hold(close: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a connection's close method so that it also ends the connection's hold."""

    def close_(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return close(self, *args, **kwargs)
        finally:
            close_hold(self)

    return close_


# driver label -> the cursor class to use instead of the one asked for (statement tags on a
# driver whose cursor is a C type: runtime/rawtags.py fills it while tagging is on)
CURSOR_CLASSES: dict[str, Callable[[Any], Any]] = {}

MARK_DEFAULTS = {HOLD: None, CURSORS: None}  # class-level: reading a mark a connection
# has not got (a pool's) is then a plain lookup rather than a failed one


def patch_cursors(p: Patcher, cls: type) -> None:
    """Count the cursors of ``cls``'s connections (see :func:`counting_cursors`)."""
    p.wrap(cls, "cursor", counting_cursors(cls.cursor))  # type: ignore[attr-defined]
    for name, value in MARK_DEFAULTS.items():
        p.set(cls, name, value)


def counting_cursors(cursor: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a connection's cursor method so that the hold counts its open cursors."""

    def cursor_(self: Any, *args: Any, **kwargs: Any) -> Any:
        cur = cursor(self, *args, **kwargs)
        h: Hold | None = getattr(self, HOLD, None)
        if h is not None:  # a pool's connection: no hold, no count
            if h.thread_id != _get_ident():
                h.adopt()  # handed to this thread, which uses it: it owns it now (PD110)
            track_cursor(self, cur, h)
        return cur

    return cursor_


def live_hold(conn: Any) -> Hold | None:
    h: Hold | None = getattr(conn, HOLD, None)
    return h if h is not None and not h.ended else None


# --------------------------------------------------------------------------- cursors


def cursor_open(cur: Any) -> bool:
    """Whether a cursor is still open, by each driver's own marker."""
    closed = getattr(cur, "closed", None)  # psycopg, psycopg2
    if isinstance(closed, bool):
        return not closed
    if getattr(cur, "_pd_closed", False):  # sqlite3 (our cursor subclass)
        return False
    conn = getattr(cur, "_connection", _MISSING)  # mysql.connector
    if conn is not _MISSING:
        return conn is not None
    return getattr(cur, "connection", None) is not None  # PyMySQL, MySQLdb, sqlite3


def track_cursor(conn: Any, cur: Any, h: Hold) -> None:
    """Count a new cursor into its connection's hold ``h`` (``open_cursors``); never raises."""
    try:
        refs: list[weakref.ref[Any]] | None = getattr(conn, CURSORS, None)
        if refs is None:
            refs = []
            setattr(conn, CURSORS, refs)
        refs.append(weakref.ref(cur))
        if len(refs) > 8:
            refs[:] = [r for r in refs if (c := r()) is not None and cursor_open(c)]
        h.extra = {"open_cursors": count_open(refs)}
    except Exception:
        GUARD.internal_error("dbapi cursor")


def count_open(refs: list[weakref.ref[Any]]) -> int:
    n = 0
    for r in list(refs):
        c = r()
        if c is not None and cursor_open(c):
            n += 1
    return n


def connection_closed(conn: Any) -> bool:
    """True when the driver says the connection is closed (e.g. the server ended it)."""
    closed = getattr(conn, "closed", None)  # psycopg (bool), psycopg2 (int)
    if isinstance(closed, int) and closed:
        return True
    is_open = getattr(conn, "open", None)  # PyMySQL (property), MySQLdb (int)
    return isinstance(is_open, int) and not is_open


def sweep() -> None:
    """Watchdog tick hook: bring every raw hold's ``open_cursors`` up to date, and end the holds
    of connections the driver reports closed without ``close()`` (the server or the network
    ended them: they no longer hold a server connection)."""
    for h in GUARD.ledger.holds():
        if h.kind != CONNECTION or h.ended:
            continue
        conn = h()
        if conn is None:
            continue
        try:
            if connection_closed(conn):
                close_hold(conn)
                continue
            refs = getattr(conn, CURSORS, None)
            if refs is not None:
                h.extra = {"open_cursors": count_open(refs)}
        except Exception:
            GUARD.internal_error("dbapi sweep")



# --------------------------------------------------------------------------- patches


class Patcher:
    """Set attributes on classes and modules, and put every one back on :meth:`undo`.

    References to replaced functions in other modules' globals are rebound by :func:`rebind`
    over :attr:`rebinds` (one scan of ``sys.modules`` for every driver at once).
    """

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, bool, Any, Any]] = []
        self.rebinds: list[tuple[Any, Any]] = []  # (original, wrapper)

    def set(self, owner: Any, name: str, value: Any) -> None:
        own = vars(owner)
        had = name in own
        self._undo.append((owner, name, had, own.get(name), value))
        setattr(owner, name, value)

    def wrap(self, owner: Any, name: str, wrapper: Any) -> None:
        """Set ``wrapper`` in place of ``owner.name``, naming the original in ``__wrapped__``."""
        original = getattr(owner, name)
        wrapper.__doc__ = getattr(original, "__doc__", None)
        wrapper.__wrapped__ = original
        self.set(owner, name, wrapper)

    def rebind(self, original: Any, wrapper: Any) -> None:
        """Ask for every global naming ``original`` to name ``wrapper`` instead.

        This reaches code that did ``from driver import connect`` before the guard was
        installed; on uninstall the original is put back everywhere, also in modules imported
        while the guard was installed.
        """
        self.rebinds.append((original, wrapper))

    def undo(self) -> None:
        """Undo the attribute patches (the caller rebinds references back first)."""
        for owner, name, had, old, value in reversed(self._undo):
            try:
                if vars(owner).get(name) is not value:
                    continue  # someone else patched it after us: leave theirs
                if had:
                    setattr(owner, name, old)
                else:
                    delattr(owner, name)
            except Exception:
                GUARD.internal_error("dbapi uninstall")
        self._undo.clear()
        self.rebinds.clear()


def rebind(pairs: list[tuple[Any, Any]]) -> None:
    """One scan of the loaded modules' globals: each ``old`` of ``pairs`` becomes its ``new``
    (by identity). pooldoctor's own modules are left alone."""
    if not pairs:
        return
    get = {id(old): new for old, new in pairs}.get
    for mod in list(sys.modules.values()):
        d = getattr(mod, "__dict__", None)
        if type(d) is not dict:
            continue
        name = d.get("__name__")
        if isinstance(name, str) and name.startswith("pooldoctor."):
            continue
        try:
            hits = [(k, new) for k, v in d.items() if (new := get(id(v))) is not None]
        except RuntimeError:  # changed by another thread meanwhile
            hits = [(k, new) for k, v in list(d.items()) if (new := get(id(v))) is not None]
        for k, new in hits:
            d[k] = new


_subclasses: dict[tuple[type, str], type] = {}


def guarded_subclass(base: Any, tag: str, make: Callable[[type], dict[str, Any]]) -> Any:
    """A cached subclass of ``base`` with the namespace ``make(base)``, or ``base`` itself if
    it cannot be subclassed (then the caller does not guard the object)."""
    if not isinstance(base, type):
        return base
    if getattr(base, "_pd_guarded", False):
        return base
    key = (base, tag)
    sub = _subclasses.get(key)
    if sub is None:
        ns = make(base)
        ns.update(_pd_guarded=True, __module__=base.__module__, __qualname__=base.__qualname__)
        try:
            sub = type(base.__name__, (base,), ns)
        except TypeError:
            return base
        _subclasses[key] = sub
    return sub
