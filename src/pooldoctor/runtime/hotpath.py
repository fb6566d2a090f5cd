"""What every pool checkout and checkin does: capture the stack, create and end the hold.

Two implementations with one behaviour: the C module ``pooldoctor._speedups`` (built at
install when a compiler is there, Python 3.11+) and the functions below, used when it is not
built or ``POOLDOCTOR_NO_SPEEDUPS`` is set. Both decline anything out of the ordinary (a
connection made before the guard or in another process, a file not judged yet, no user frame
on this stack); the caller then takes its careful path.

- ``checkout(info, record_dict, fairy) -> Hold | None``: record a checkout; called by the
  pool's ``connect()``, it captures the stack from that function's caller; None: declined.
- ``checkin(hold) -> bool``: end a checkout's hold; False: declined (PD101 reported for it,
  observers to tell, or the proxy was garbage-collected).
- ``user_stack(frame, depth) -> Frames | None`` (``user_stack_py`` here): the stack from the
  first user frame; the tests compare the two.
- ``TxnHook(orig, begin)``: a dialect's ``do_begin``/``do_commit``/``do_rollback`` that
  records the transaction on the hold (C only; runtime/sqlalchemy/transactions.py has the
  Python twin).
"""

from __future__ import annotations

import asyncio  # imported by SQLAlchemy already
import os
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from ..guard import GUARD
from ..ledger import Hold
from ..sites import Frames, capture, judged_files, walker, walkers

NO_SPEEDUPS_ENV = "POOLDOCTOR_NO_SPEEDUPS"

_getframe = sys._getframe
_get_running_loop = asyncio._get_running_loop


def _task_lookup() -> Any:
    """asyncio's cheapest way to the running task: Python 3.11's table loop -> task (its
    ``current_task()`` is a Python function, a third of an asyncpg checkout's cost when the
    caches are cold), else the C ``current_task`` of 3.12+."""
    table = getattr(asyncio.tasks, "_current_tasks", None)
    if sys.version_info < (3, 12) and type(table) is dict:
        return table
    return asyncio.current_task


CURRENT_TASK = _task_lookup()  # a dict (loop -> task) or current_task(loop)
_monotonic = time.monotonic
_get_ident = threading.get_ident
_active: dict[int, threading.Thread] = threading._active  # type: ignore[attr-defined]
_active_get = _active.get
_next_id = GUARD.ledger.next_id
_on_collected = GUARD.on_collected
_judged = judged_files()
_judged_get = _judged.get
_walks_get = walkers().get  # depth -> the stack walk of that depth (sites.walker)


def user_stack_py(frame: FrameType, depth: int) -> Frames | None:
    """The stack from the first user frame at or above ``frame`` (None: cannot tell here)."""
    f: FrameType | None = frame
    while f is not None:
        internal = _judged.get(f.f_code.co_filename)
        if internal is False:
            return walker(depth)(f)
        if internal is None:
            return None
        f = f.f_back
    return None


def make_hold(obj: Any, pool: Any, frames: Frames, pid: int, server_id: Any) -> Hold:
    """A new hold of ``obj`` (a pool's connection proxy, or an adapter's connection) in
    ``pool``, every field set. The careful paths share it (SQLAlchemy's :func:`new_hold`, the
    adapters' ``protocol.checkout``); the fast paths (:func:`checkout_py`,
    ``adapters/fastpath.py``, their C twins) write the same out inline, a call less."""
    h = Hold(obj, _on_collected)
    h.id = _next_id()
    h.pool = pool  # kind: CHECKOUT, the class default (no per-hold __dict__)
    h.frames = frames
    h.since = _monotonic()
    h.thread_id = ident = _get_ident()
    h.thread = _active_get(ident)  # names and PD110 stay right when the id is reused
    h.pid = pid
    h.server_id = server_id
    h.reported = h.txn_begun = h.txn_reported = False
    h.txn_since = h.txn_frames = None
    loop = _get_running_loop()
    if loop is not None:
        h.task = task_name(loop)
    return h


def task_name(loop: Any) -> str | None:
    """The name of ``loop``'s running task (None: a callback, no task)."""
    c = CURRENT_TASK
    task = c.get(loop) if type(c) is dict else c(loop)
    return None if task is None else task.get_name()


def enter(pool: Any, h: Hold) -> None:
    """Put ``h`` in its pool's table and count the checkout (no lock: a dict store is atomic,
    and so is ``next()`` on the checkout counter)."""
    holds = pool.holds
    holds[h.id] = h
    next(pool.checkout_counter)
    n = len(holds)
    if n > pool.peak_checked_out:
        pool.peak_checked_out = n


def new_hold(g: Any, info: Any, d: dict[str, Any], fairy: Any, frames: Frames) -> Hold:
    """Create the hold of a checkout: on the record, then in the pool's table."""
    h = make_hold(fairy, info, frames, g.pid, d.get("_pd_server_id"))
    d["_pd_hold"] = h
    enter(info, h)
    return h


def checkout_py(info: Any, d: dict[str, Any], fairy: Any) -> Hold | None:
    """:func:`user_stack_py` and :func:`new_hold` written out in one function: no call, no
    object but the hold and its stack (every object a checkout allocates feeds the GC)."""
    g = GUARD
    if info is None or d.get("_pd_pid") != g.pid or "_pd_hold" in d:
        return None
    f: FrameType | None = _getframe(2)  # from the caller of Pool.connect()
    while f is not None:
        internal = _judged_get(f.f_code.co_filename)
        if internal is False:
            break
        if internal is None:
            return None
        f = f.f_back
    else:
        return None
    depth = g.depth
    walk = _walks_get(depth)
    if walk is None:
        walk = walker(depth)
    frames = walk(f)
    h = Hold(fairy, _on_collected)
    h.frames = frames
    h.id = hid = _next_id()
    h.pool = info
    h.since = _monotonic()
    h.thread_id = ident = _get_ident()
    h.thread = _active_get(ident)
    h.pid = g.pid
    h.server_id = d.get("_pd_server_id")
    h.reported = h.txn_begun = h.txn_reported = False
    h.txn_since = h.txn_frames = None
    loop = _get_running_loop()
    if loop is not None:
        h.task = task_name(loop)
    d["_pd_hold"] = h
    holds = info.holds
    holds[hid] = h
    next(info.checkout_counter)
    n = len(holds)
    if n > info.peak_checked_out:
        info.peak_checked_out = n
    return h


def checkin_py(h: Hold) -> bool:
    """The pool-table part of ``Ledger.remove()`` written out (a pool's holds are checkouts)."""
    if h.reported or GUARD.observers or h() is None:
        return False
    info = h.pool
    if info.holds.pop(h.id, None) is not None:
        info.hold_s_total += _monotonic() - h.since  # one load-add-store: no thread switch
    return True


def _load() -> Any:
    """The C module, configured; None when it is not built or not wanted."""
    if os.environ.get(NO_SPEEDUPS_ENV):
        return None
    try:
        from .. import _speedups
    except ImportError:
        return None
    try:
        _speedups.configure(GUARD, Hold, _on_collected, _judged, GUARD.ledger.ids,
                            _get_running_loop, CURRENT_TASK, capture, _active)
    except TypeError:  # Hold or the guard no longer fit what the C code assumes
        GUARD.internal_error("speedups configure")
        return None
    return _speedups


_c = _load()
SPEEDUPS = _c is not None  # the C implementation is in use
checkout: Callable[[Any, dict[str, Any], Any], Hold | None] = (
    _c.checkout if _c else checkout_py)
checkin: Callable[[Hold], bool] = _c.checkin if _c else checkin_py
# TxnHook(orig, begin): a dialect's do_begin (begin=True) / do_commit / do_rollback in C;
# None without the C module (runtime/sqlalchemy/transactions.py then wraps them in Python)
TxnHook: Callable[[Callable[[Any], None], bool], Callable[[Any], None]] | None = (
    _c.TxnHook if _c else None)
