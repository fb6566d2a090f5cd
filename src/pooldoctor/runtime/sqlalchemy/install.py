"""Installing and removing the SQLAlchemy wiring: every engine, or one."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from ...urls import mask_url
from .engines import ENGINES, _after_engine_init, _on_engine_created, _same_signature
from .info import ALL_INFOS, LOCK, MODE
from .pools import _on_checkin, _on_checkout, _on_connect, _on_detach, _restore_class, adopt_pool
from .transactions import _on_invalidate, _unwrap_dialects

_engine_listeners: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()
_orig_engine_init: Callable[..., None] | None = None


_EVENTS = tuple[tuple[str, Callable[..., None]], ...]
_POOL_EVENTS: _EVENTS = (("connect", _on_connect), ("detach", _on_detach),
                         ("invalidate", _on_invalidate))
# Checkouts and checkins are seen by the swapped pool class (connect/_return_conn), which
# keeps SQLAlchemy's checkout fast path; the events serve fork_safety='repair' only.
_REPAIR_EVENTS: _EVENTS = (("checkout", _on_checkout), ("checkin", _on_checkin))


def _pool_events() -> _EVENTS:
    return _POOL_EVENTS + _REPAIR_EVENTS if MODE.via_events else _POOL_EVENTS


def set_repair_mode(repair: bool) -> None:
    """Switch checkout tracking between the pool class (default) and the pool events."""
    with LOCK:
        if repair == MODE.via_events:
            return
        targets: list[Any] = list(_engine_listeners.keys())
        if MODE.global_:
            targets.append(Pool)
        for target in targets:
            for name, fn in _REPAIR_EVENTS:
                if repair and not event.contains(target, name, fn):
                    event.listen(target, name, fn)
                elif not repair and event.contains(target, name, fn):
                    event.remove(target, name, fn)
        MODE.via_events = repair


def install_global() -> None:
    """Guard every pool and engine of the process, existing and future."""
    global _orig_engine_init
    with LOCK:
        if MODE.global_:
            return
        for engine in list(_engine_listeners.keys()):
            _remove_engine_listeners(engine)
        for name, fn in _pool_events():
            event.listen(Pool, name, fn)
        if _orig_engine_init is None:
            _orig_engine_init = Engine.__init__
            Engine.__init__ = _same_signature(  # type: ignore[method-assign]
                _orig_engine_init, _after_engine_init)
        MODE.global_ = True
    for obj in gc.get_objects():
        try:
            if isinstance(obj, Engine) and type(obj).__name__ != "OptionEngine":
                _on_engine_created(obj, None)
        except Exception:
            continue


def install_engine(engine: Any, name: str | None = None) -> None:
    """Guard one engine (an ``AsyncEngine`` is guarded through its ``sync_engine``)."""
    engine = getattr(engine, "sync_engine", engine)
    if not isinstance(engine, Engine):
        raise TypeError(f"instrument() takes an Engine or AsyncEngine, not {type(engine).__name__}")
    with LOCK:
        info = adopt_pool(engine.pool, mask_url(engine.url), name)
        if info is not None and name:
            info.name = name
        _on_engine_created(engine, None)
        if MODE.global_ or engine in _engine_listeners:
            return
        for ev, fn in _pool_events():
            event.listen(engine, ev, fn)
        _engine_listeners[engine] = True


def _remove_engine_listeners(engine: Engine) -> None:
    for ev, fn in _POOL_EVENTS + _REPAIR_EVENTS:
        try:
            event.remove(engine, ev, fn)
        except Exception:
            pass
    _engine_listeners.pop(engine, None)


def uninstall() -> None:
    """Remove every listener and patch; pools get their own class back."""
    global _orig_engine_init
    with LOCK:
        MODE.via_events = False
        if MODE.global_:
            for name, fn in _POOL_EVENTS + _REPAIR_EVENTS:
                if event.contains(Pool, name, fn):
                    event.remove(Pool, name, fn)
            MODE.global_ = False
        if _orig_engine_init is not None:
            Engine.__init__ = _orig_engine_init  # type: ignore[method-assign]
            _orig_engine_init = None
        for engine in list(_engine_listeners.keys()):
            _remove_engine_listeners(engine)
        for info in ALL_INFOS:
            pool = info.pool()
            if pool is not None:
                _restore_class(pool)
                pool.__dict__.pop("_pooldoctor", None)
        ENGINES.clear()
        _unwrap_dialects()


def ensure_global_listeners() -> None:
    """Re-add the class-level listeners if someone cleared them (e.g. a test teardown)."""
    if not MODE.global_:
        return
    for name, fn in _pool_events():
        if not event.contains(Pool, name, fn):
            event.listen(Pool, name, fn)

