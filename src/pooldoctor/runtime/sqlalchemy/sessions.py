"""ORM sessions: where a Session was made, recorded with the connection it checks out.

A Session checks out a connection at its first query, far from the line that made it (and
should close it). While the guard is global and the program uses ``sqlalchemy.orm``,
``Session.__init__`` records the stack that made the session, and an ``after_begin``
listener copies its site onto the hold of the connection the session begins with
(``details.session_created``); the text report shows both. Nothing is imported: the ORM is
wired only when the program has imported it (checked at install and at each new engine).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from ...guard import GUARD
from ...ledger import Hold
from ...sites import capture, site_of

MADE = "_pd_made_at"  # on the Session: the frames that made it

_orig_init: Callable[..., None] | None = None
_session_cls: Any = None


def install() -> None:
    """Wire the ORM if the program has imported it (idempotent; never imports it)."""
    global _orig_init, _session_cls
    if _orig_init is not None:
        return
    mod = sys.modules.get("sqlalchemy.orm.session")
    if mod is None:
        return
    from sqlalchemy import event

    cls = mod.Session
    orig = cls.__init__

    @functools.wraps(orig)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        orig(self, *args, **kwargs)
        if GUARD.active:
            try:
                self.__dict__[MADE] = capture(1, GUARD.depth)
            except Exception:
                GUARD.internal_error("session created")

    cls.__init__ = __init__
    _orig_init, _session_cls = orig, cls
    if not event.contains(cls, "after_begin", _after_begin):
        event.listen(cls, "after_begin", _after_begin)


def uninstall() -> None:
    global _orig_init, _session_cls
    if _orig_init is None:
        return
    from sqlalchemy import event

    _session_cls.__init__ = _orig_init
    if event.contains(_session_cls, "after_begin", _after_begin):
        event.remove(_session_cls, "after_begin", _after_begin)
    _orig_init = _session_cls = None


def _after_begin(session: Any, transaction: Any, connection: Any) -> None:
    """The session begins on ``connection``: note where the session was made on its hold."""
    try:
        frames = session.__dict__.get(MADE)
        if not frames:
            return
        fairy = getattr(connection, "_dbapi_connection", None)
        record = getattr(fairy, "_connection_record", None)
        h: Hold | None = record.__dict__.get("_pd_hold") if record is not None else None
        if h is None or h.ended:
            return
        site = site_of(frames)
        if site is None:
            return
        extra = dict(h.extra or {})
        extra["session_created"] = site.to_dict()
        h.extra = extra
    except Exception:
        GUARD.internal_error("session begin")
