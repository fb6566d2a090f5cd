"""Engines: adopting each new one, and several engines for one URL (PD104)."""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

from ...findings import Finding
from ...guard import GUARD
from ...sites import capture, format_stack, site_of
from ...urls import mask_url
from . import sessions
from .info import LOCK, MODE
from .pools import adopt_pool
from .transactions import _wrap_dialect

ENGINES: dict[str, weakref.WeakSet[Engine]] = {}


def _engine_key(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _on_engine_created(engine: Engine, frames: Any = None) -> None:
    try:
        key = _engine_key(engine)
        adopt_pool(engine.pool, mask_url(engine.url))
        _wrap_dialect(engine.dialect)
        if private_database(engine):
            return  # each engine is its own database: several are not a proliferation
        with LOCK:
            live = ENGINES.setdefault(key, weakref.WeakSet())
            live.add(engine)
            others = list(live)
        if frames is not None and len(others) >= GUARD.options.engine_threshold:
            _check_proliferation(engine, key, others, frames)
    except Exception:
        GUARD.internal_error("engine created")


def private_database(engine: Engine) -> bool:
    """True for an in-memory SQLite database (``sqlite://``, ``:memory:``, ``mode=memory``
    without a shared cache): every engine (every connection, even) has its own."""
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return False
    db = url.database or ""
    if db in ("", ":memory:"):
        return True
    query = {k: str(v) for k, v in url.query.items()}
    memory = query.get("mode") == "memory" or "mode=memory" in db
    shared = query.get("cache") == "shared" or "cache=shared" in db
    return memory and not shared


def held_by(engine: Engine) -> int:
    """Connections an engine's pool holds now, checked out or idle (what it costs)."""
    p = engine.pool
    if isinstance(p, QueuePool):
        return int(p.checkedout() + p.checkedin())
    info = p.__dict__.get("_pooldoctor")
    idle = len(getattr(p, "_all_conns", ()))  # SingletonThreadPool keeps one per thread
    return max(info.checked_out if info else 0, idle)


def _check_proliferation(engine: Engine, key: str, live: list[Engine], frames: Any) -> None:
    """PD104 when the new engine and the others that hold connections reach the threshold.

    Engines that hold nothing cost the server nothing (disposed ones, and the garbage of
    earlier tests or calls, which stays in the registry until a collection) and do not count;
    the new one counts, as it is about to connect. The count in the message is the one that
    was compared with the threshold.
    """
    holding = [(e, held_by(e)) for e in live if e is not engine]
    holding = [(e, n) for e, n in holding if n > 0]
    engines = len(holding) + 1
    threshold = GUARD.options.engine_threshold
    if engines < threshold:
        return
    held = sum(n for _, n in holding)
    site = site_of(frames)
    GUARD.emit(Finding(
        code="PD104",
        message=(f"{engines} engines for {mask_url(key)} in this process, the latest created "
                 f"at {site.short() if site else 'an unknown site'}; the {engines - 1} before "
                 f"it hold {held} connection{'s' if held != 1 else ''} (threshold {threshold})"),
        site=site, stack=format_stack(frames), pids=[GUARD.pid],
        details={"url": mask_url(key), "engines": engines, "connections": held,
                 "threshold": threshold, "engines_holding_nothing": len(live) - engines}))


def _after_engine_init(self: Engine) -> None:
    if GUARD.active and MODE.global_:
        try:
            sessions.install()  # the ORM may have been imported since the guard started
        except Exception:
            GUARD.internal_error("sessions install")
        try:
            frames = capture(1, GUARD.options.stack_depth)
        except Exception:
            frames = None
        _on_engine_created(self, frames)


class _Name:
    """A default value that prints as a name (to write a signature as source)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_CALL_FORMS: dict[Any, str] = {inspect.Parameter.VAR_POSITIONAL: "*{0}",
                               inspect.Parameter.VAR_KEYWORD: "**{0}",
                               inspect.Parameter.KEYWORD_ONLY: "{0}={0}"}


def _same_signature(orig: Callable[..., None], after: Callable[[Any], None]) -> Any:
    """``orig`` then ``after(self)``, as a function with ``orig``'s exact parameters.

    ``create_engine()`` reads ``Engine.__init__``'s parameter names from its code object
    (``util.get_cls_kwargs``) to sort its keyword arguments; a ``*args, **kwargs`` wrapper
    makes it reject ``echo=``, ``execution_options=``... with a TypeError.
    """
    sig = inspect.signature(orig)
    ns: dict[str, Any] = {"_orig": orig, "_after": after}
    params, args = [], []
    for i, p in enumerate(sig.parameters.values()):
        if p.default is not p.empty:
            ns[f"_d{i}"] = p.default
            p = p.replace(default=_Name(f"_d{i}"))
        params.append(p.replace(annotation=p.empty))
        args.append(_CALL_FORMS.get(p.kind, "{0}").format(p.name))
    src = (f"def __init__{sig.replace(parameters=params, return_annotation=sig.empty)}:\n"
           f"    _orig({', '.join(args)})\n"
           f"    _after({args[0]})\n")
    exec(compile(src, "<pooldoctor generated __init__>", "exec"), ns)
    fn = ns["__init__"]
    functools.update_wrapper(fn, orig)
    return fn


