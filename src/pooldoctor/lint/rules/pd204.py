"""PD204: an engine created per call (inside a function that runs per call or request, or a loop).

An engine owns a pool; creating one per call opens new connections every time and leaves the old
pools to the garbage collector. Silent when the engine is kept: returned (a factory), stored on
``self``/a global/a dict cache, cached with ``lru_cache``, or created in a function that runs
once (``main``, app factories, test fixtures, ``__init__``).
"""

from __future__ import annotations

import ast

from ..context import CallSite, FuncNode, ModuleContext, last_name, walk_shallow
from ..flowstate import escapes_in
from ..resources import is_engine_factory
from ._resources import parent_of
from ._util import is_cached, is_entry_point

CODE = "PD204"


# A Session never disposes the engine it is given: `Session(engine)` is no owner of it.
_NOT_OWNERS = frozenset({"Session", "AsyncSession"})
# a session factory bound to it keeps it as long as the factory lives (returned, stored)
_FACTORY_OWNERS = frozenset({"sessionmaker", "async_sessionmaker", "scoped_session"})


def _owned_in(node: ast.expr, name: str) -> bool:
    """``escapes_in`` without the sessions, which use the engine but never dispose it."""
    if isinstance(node, ast.Await):
        node = node.value
    if isinstance(node, ast.Call) and last_name(node) in _NOT_OWNERS:
        return False
    if isinstance(node, ast.Call) and last_name(node) in _FACTORY_OWNERS:
        return any(escapes_in(a, name) for a in node.args) or any(
            escapes_in(k.value, name) for k in node.keywords)
    return escapes_in(node, name)


def _kept(func: FuncNode, name: str) -> bool:
    """Is the local ``name`` kept beyond the call (returned, stored, global)?"""
    for node in walk_shallow(func.body):
        if isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names:
            return True
        if isinstance(node, (ast.Return, ast.Yield)) and node.value is not None \
                and _owned_in(node.value, name):
            return True
        if isinstance(node, ast.Assign) and _owned_in(node.value, name) and any(
                not isinstance(t, ast.Name) for t in node.targets):
            return True
        if isinstance(node, ast.Call) and _owned_in(node, name):
            return True  # handed to a constructor or a container
    return False


def _no_pool(ctx: ModuleContext, call: ast.Call) -> bool:
    """``poolclass=NullPool``: no pool is left behind (one-off probes, serverless handlers)."""
    for k in call.keywords:
        if k.arg == "poolclass":
            return (ctx.dotted(k.value) or "").endswith("NullPool")
    return False


def _factory_calls(ctx: ModuleContext) -> dict[str, list[CallSite]]:
    """Calls of module functions by name, to follow engine factories to their callers."""
    by_name: dict[str, list[CallSite]] = {}
    for cs in ctx.calls:
        f = cs.node.func
        if isinstance(f, ast.Name):
            by_name.setdefault(f.id, []).append(cs)
    return by_name


def check(ctx: ModuleContext) -> None:
    callers: dict[str, list[CallSite]] | None = None
    engines = ctx.external.engines if ctx.external else ()
    for cs in ctx.calls:
        call = cs.node
        if not is_engine_factory(ctx, call.func):
            if engines:
                _check_external(ctx, cs, engines)
            continue
        func = cs.func
        parent = parent_of(cs.stmt, call)
        stmt = cs.stmt
        if func is None:
            if cs.in_loop and isinstance(parent, ast.Assign) and all(
                    isinstance(t, ast.Name) for t in parent.targets):
                ctx.report(CODE, call, "engine created in a loop: each iteration builds a new "
                           "pool; create it once before the loop and share it")
            continue
        if is_cached(func) or _no_pool(ctx, call):
            continue
        if cs.in_loop and isinstance(parent, ast.Assign) and all(
                isinstance(t, ast.Name) for t in parent.targets) and not any(
                _kept(func, t.id) for t in parent.targets if isinstance(t, ast.Name)):
            ctx.report(CODE, call, "engine created in a loop: each iteration builds a new pool; "
                       "create it once before the loop and share it", func.name)
            continue
        if is_entry_point(func):
            continue
        local: str | None = None
        if isinstance(parent, ast.Assign) and parent is stmt:
            target = parent.targets[0]
            if len(parent.targets) != 1 or not isinstance(target, ast.Name):
                continue  # stored on an attribute, in a dict: kept
            local = target.id
            if _kept(func, local):
                if any(isinstance(n, ast.Return) and isinstance(n.value, ast.Name)
                       and n.value.id == local for n in walk_shallow(func.body)):
                    callers = callers if callers is not None else _factory_calls(ctx)
                    _check_factory(ctx, call, func, callers)
                continue
        elif isinstance(parent, ast.Return):
            callers = callers if callers is not None else _factory_calls(ctx)
            _check_factory(ctx, call, func, callers)
            continue
        elif isinstance(parent, (ast.Yield, ast.Await)) or not isinstance(
                parent, (ast.Attribute, ast.Call, ast.keyword, ast.withitem)):
            continue
        elif isinstance(parent, (ast.Call, ast.keyword)) and isinstance(stmt, ast.Assign) \
                and not all(isinstance(t, ast.Name) for t in stmt.targets):
            continue  # sessionmaker(bind=create_engine(url)) stored on self: kept
        where = f"{func.name}()"
        ctx.report(CODE, call, f"engine created inside {where}: every call builds a new pool and "
                   "new connections; create it once at module level (or cache it per URL) and "
                   "share it", func.name)


def _check_factory(ctx: ModuleContext, call: ast.Call, func: FuncNode,
                   callers: dict[str, list[CallSite]]) -> None:
    """A module function that returns a new engine, called per call by another function."""
    for cs in callers.get(func.name, ()):
        if cs.func is None or cs.func is func or is_entry_point(cs.func) or is_cached(cs.func):
            continue
        parent = parent_of(cs.stmt, cs.node)
        if isinstance(parent, ast.Return):
            continue  # a factory of factories
        if isinstance(parent, ast.Assign) and any(
                isinstance(t, ast.Name) and _kept(cs.func, t.id) for t in parent.targets):
            continue
        if isinstance(parent, ast.Assign) and not all(isinstance(t, ast.Name)
                                                      for t in parent.targets):
            continue
        ctx.report(CODE, call, f"{func.name}() builds a new engine on every call and "
                   f"{cs.func.name}() calls it at line {cs.node.lineno}; create the engine "
                   f"once and share it, or cache {func.name}() with functools.cache",
                   func.name)
        return


def _check_external(ctx: ModuleContext, cs: CallSite, engines: set[str]) -> None:
    """A call, per call, of another module's function that builds a new engine each time."""
    spelled = ctx.dotted(cs.node.func)
    func = cs.func
    if spelled not in engines or func is None or is_entry_point(func) or is_cached(func):
        return
    parent = parent_of(cs.stmt, cs.node)
    if isinstance(parent, ast.Return) or (isinstance(parent, ast.Assign) and any(
            not isinstance(t, ast.Name) or _kept(func, t.id) for t in parent.targets)):
        return
    ctx.report(CODE, cs.node, f"{spelled}() builds a new engine on every call and "
               f"{func.name}() calls it each time it runs; create the engine once and share it, "
               f"or cache {spelled.rsplit('.', 1)[-1]}() with functools.cache", func.name)
