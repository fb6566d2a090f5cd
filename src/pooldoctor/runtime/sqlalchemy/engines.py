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
        with LOCK:
            live = ENGINES.setdefault(key, weakref.WeakSet())
            live.add(engine)
            n = len(live)
        if frames is not None and n >= GUARD.options.engine_threshold:
            _report_proliferation(engine, key, list(live), frames)
    except Exception:
        GUARD.internal_error("engine created")


def _report_proliferation(engine: Engine, key: str, live: list[Engine], frames: Any) -> None:
    held = 0
    for e in live:
        p = e.pool
        if isinstance(p, QueuePool):
            held += p.checkedout() + p.checkedin()
        else:
            info = p.__dict__.get("_pooldoctor")
            held += info.checked_out if info else 0
    site = site_of(frames)
    GUARD.emit(Finding(
        code="PD104",
        message=(f"{len(live)} engines for {mask_url(key)} in this process, the latest created "
                 f"at {site.short() if site else 'an unknown site'}; together they hold {held} "
                 f"connections (threshold {GUARD.options.engine_threshold})"),
        site=site, stack=format_stack(frames), pids=[GUARD.pid],
        details={"url": mask_url(key), "engines": len(live), "connections": held,
                 "threshold": GUARD.options.engine_threshold}))


def _after_engine_init(self: Engine) -> None:
    if GUARD.active and MODE.global_:
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


