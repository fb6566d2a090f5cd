"""What opens a resource: DB-API connections, SQLAlchemy connections and sessions, cursors.

``classify(ctx, call, func, cls)`` says whether a call opens something that must be closed, and
what: the code (PD201/PD202/PD203), a label for messages and whether ``with x:`` closes it.
Functions of the same module that return such a resource count as openers too (the caller is
then responsible), so a leak through ``conn = get_conn()`` is found where it happens.
"""

from __future__ import annotations

import ast
import re

from ..lazyre import lazy
from .context import FuncNode, ModuleContext, last_name, walk_shallow
from .drivers import DRIVERS
from .issues import Kind
from .values import callee_kind, local_bindings

__all__ = ["DRIVERS", "Kind", "classify", "factory_kind", "local_bindings"]


SESSION_CLASSES = frozenset({
    "sqlalchemy.orm.Session", "sqlalchemy.orm.session.Session", "sqlmodel.Session",
    "sqlalchemy.ext.asyncio.AsyncSession", "sqlalchemy.ext.asyncio.session.AsyncSession",
    "sqlmodel.ext.asyncio.session.AsyncSession",
})
SESSIONMAKERS = frozenset({
    "sqlalchemy.orm.sessionmaker", "sqlalchemy.orm.session.sessionmaker",
    "sqlalchemy.ext.asyncio.async_sessionmaker",
    "sqlalchemy.ext.asyncio.session.async_sessionmaker",
})
ENGINE_FACTORIES = frozenset({
    "sqlalchemy.create_engine", "sqlalchemy.engine.create_engine",
    "sqlalchemy.engine.create.create_engine", "sqlalchemy.engine_from_config",
    "sqlalchemy.ext.asyncio.create_async_engine", "sqlalchemy.ext.asyncio.async_engine_from_config",
    "sqlmodel.create_engine",
})
_ENGINE_NAME = lazy(r"engine", re.IGNORECASE)
# project names that are session factories by convention (FastAPI's SessionLocal, ...)
_SESSION_FACTORY_NAME = lazy(r"^(\w*SessionLocal|Session|\w+Session|session_factory|"
                             r"session_maker|SessionFactory)$")
_PROJECT_MODULE = lazy(r"(^\.|db|database|models|session|orm|storage)", re.IGNORECASE)


def is_engine_factory(ctx: ModuleContext, func: ast.expr) -> bool:
    q = ctx.qualname(func)
    if q is not None:
        return q in ENGINE_FACTORIES
    return False


def _is_sessionmaker_call(ctx: ModuleContext, node: ast.expr | None) -> bool:
    return isinstance(node, ast.Call) and ctx.qualname(node.func) in SESSIONMAKERS


def uses_sqlalchemy(ctx: ModuleContext) -> bool:
    """Does the module import SQLAlchemy (or SQLModel)? Gates the costlier look-ups."""
    flag = ctx.cache.get("uses_sqlalchemy")
    if flag is None:
        flag = any(o.startswith(("sqlalchemy", "sqlmodel")) for o in ctx.aliases.values())
        ctx.cache["uses_sqlalchemy"] = flag
    return bool(flag)


def _bound_value(ctx: ModuleContext, name: str, func: FuncNode | None) -> ast.expr | None:
    if not uses_sqlalchemy(ctx):
        return ctx.module_names.get(name)
    local = local_bindings(ctx, func).get(name)
    return local if local is not None else ctx.module_names.get(name)


def is_engine_expr(ctx: ModuleContext, node: ast.expr, func: FuncNode | None) -> bool:
    """Does ``node`` look like a SQLAlchemy Engine (bound to create_engine or named so)?"""
    if isinstance(node, ast.Await):
        node = node.value
    if isinstance(node, ast.Name):
        value = _bound_value(ctx, node.id, func)
        if isinstance(value, ast.Call) and is_engine_factory(ctx, value.func):
            return True
        origin = ctx.aliases.get(node.id)  # `from .db import engine`, not sqlalchemy.engine
        return bool(_ENGINE_NAME.search(node.id)) and (
            origin is None or not origin.startswith(("sqlalchemy", "sqlmodel")))
    if isinstance(node, ast.Attribute):
        return bool(_ENGINE_NAME.search(node.attr))
    if isinstance(node, ast.Call):
        if is_engine_factory(ctx, node.func):
            return True
        name = ctx.dotted(node.func)
        return bool(name and _ENGINE_NAME.search(name.rsplit(".", 1)[-1]))
    return False


def _sessionmaker_attrs(ctx: ModuleContext) -> frozenset[str]:
    """Attributes that hold a sessionmaker: ``self._factory = sessionmaker(...)``, or a class
    attribute ``Session = sessionmaker(...)``."""
    cached = ctx.cache.get("sessionmaker_attrs")
    if cached is None:
        found: set[str] = set()
        for cs in ctx.calls:
            if cs.cls is None or not _is_sessionmaker_call(ctx, cs.node):
                continue
            stmt = cs.stmt
            if isinstance(stmt, ast.Assign) and stmt.value is cs.node:
                targets = stmt.targets
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is cs.node:
                targets = [stmt.target]
            else:
                continue
            for t in targets:
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) \
                        and t.value.id in ("self", "cls"):
                    found.add(t.attr)
                elif isinstance(t, ast.Name) and cs.func is None:
                    found.add(t.id)
        cached = ctx.cache["sessionmaker_attrs"] = frozenset(found)
    return cached  # type: ignore[return-value]


def _imported_object(ctx: ModuleContext, node: ast.expr) -> bool:
    """``engine`` of ``from .db import engine`` (an object), not ``import engine`` (a module)."""
    if not isinstance(node, ast.Name):
        return False
    origin = ctx.aliases.get(node.id, "")
    return "." in origin.lstrip(".") or (origin.startswith(".") and node.id in ctx.relative)


def _is_session_factory(ctx: ModuleContext, func_expr: ast.expr, func: FuncNode | None) -> bool:
    if isinstance(func_expr, ast.Call):  # sessionmaker(...)()
        return _is_sessionmaker_call(ctx, func_expr)
    if isinstance(func_expr, ast.Attribute) and isinstance(func_expr.value, ast.Name) \
            and func_expr.value.id in ("self", "cls") and uses_sqlalchemy(ctx):
        return func_expr.attr in _sessionmaker_attrs(ctx)
    if isinstance(func_expr, ast.Name):
        name = func_expr.id
        value = _bound_value(ctx, name, func)
        if value is not None:
            return _is_sessionmaker_call(ctx, value)
        origin = ctx.aliases.get(name)
        if origin is not None and _SESSION_FACTORY_NAME.match(name) \
                and "scoped" not in name.lower():
            module = origin.rsplit(".", 1)[0] if "." in origin.lstrip(".") else origin
            return (name in ctx.relative or bool(_PROJECT_MODULE.search(module))) \
                and not origin.startswith(("sqlalchemy", "requests", "httpx", "aiohttp"))
    return False


def classify(ctx: ModuleContext, call: ast.Call, func: FuncNode | None,
             cls: ast.ClassDef | None, factories: bool = True) -> Kind | None:
    """The kind of resource ``call`` opens, or None."""
    f = call.func
    q = ctx.qualname(f)
    if q is not None:
        if q in DRIVERS:
            return Kind("PD201", f"{q}()", "connection", DRIVERS[q], q.split(".")[0])
        if q in SESSION_CLASSES:
            return Kind("PD203", f"{q.rsplit('.', 1)[-1]}()", "session")
    if isinstance(f, ast.Attribute):
        if f.attr == "connect" and not call.args and (q is None or _imported_object(
                ctx, f.value)) and is_engine_expr(ctx, f.value, func):
            return Kind("PD203", f"{ctx.dotted(f) or 'engine.connect'}()", "connection")
        if f.attr == "raw_connection" and q is None:
            return Kind("PD203", f"{ctx.dotted(f) or 'engine.raw_connection'}()", "connection")
        if f.attr == "cursor" and q is None:
            return Kind("PD202", f"{ctx.dotted(f) or 'cursor'}()", "cursor")
    if _is_session_factory(ctx, f, func):
        label = ctx.dotted(f) if not isinstance(f, ast.Call) else "sessionmaker()"
        return Kind("PD203", f"{label}()", "session")
    if factories:
        return factory_kind(ctx, call, cls, func)
    return None


# ----------------------------------------------------------------------------- factories


def factory_kind(ctx: ModuleContext, call: ast.Call, cls: ast.ClassDef | None,
                 func: FuncNode | None = None) -> Kind | None:
    """When ``call`` calls a function of this module that returns a fresh resource."""
    table = _factories(ctx)
    f = call.func
    if isinstance(f, ast.Name) and f.id not in ctx.aliases:
        found = table.get(("", f.id))
        if found is not None:
            return found
        if f.id in ctx.module_names:
            return _external(ctx, f) or callee_kind(ctx, call, func, table)
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) \
            and f.value.id in ("self", "cls") and cls is not None:
        return table.get((cls.name, f.attr))
    return _external(ctx, f) or callee_kind(ctx, call, func, table)


def _external(ctx: ModuleContext, f: ast.expr) -> Kind | None:
    """A factory of another module of the run, called through any import form."""
    ext = ctx.external
    if not ext or not ext.factories:
        return None
    spelled = ctx.dotted(f)
    return ext.factories.get(spelled) if spelled is not None else None


def _factories(ctx: ModuleContext) -> dict[tuple[str, str], Kind]:
    cached = ctx.cache.get("factories")
    if cached is not None:
        return cached  # type: ignore[return-value]
    table: dict[tuple[str, str], Kind] = {}
    ctx.cache["factories"] = table
    candidates: dict[int, tuple[tuple[str, str], FuncNode, ast.ClassDef | None]] = {}
    for stmt in ctx.tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            candidates[id(stmt)] = (("", stmt.name), stmt, None)
        elif isinstance(stmt, ast.ClassDef):
            for sub in stmt.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    candidates[id(sub)] = ((stmt.name, sub.name), sub, stmt)
    # only functions that open something themselves can return something fresh; a second
    # round takes the functions that call the factories found in the first
    opening = {id(cs.func) for cs in ctx.calls if cs.func is not None and id(cs.func) in
               candidates and (classify(ctx, cs.node, cs.func, cs.cls, factories=False)
                                 or _external(ctx, cs.node.func))}
    for _ in range(2):
        for fid in opening:
            key, fn, cls = candidates[fid]
            if key in table:
                continue
            kind = _returns_fresh(ctx, fn, cls)
            if kind is not None:
                table[key] = Kind(kind.code, f"{key[1]}()", kind.noun, kind.with_closes,
                                  kind.driver, kind.slot)
        names = {key[1] for key in table}
        opening = {id(cs.func) for cs in ctx.calls if cs.func is not None and id(cs.func) in
                   candidates and _callee(cs.node) in names} - opening
        if not opening:
            break
    return table


def _callee(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else (f.id if isinstance(f, ast.Name) else "")


def _returns_fresh(ctx: ModuleContext, fn: FuncNode, cls: ast.ClassDef | None) -> Kind | None:
    """The kind a function returns when every value it returns is a fresh resource."""
    if any(isinstance(d, (ast.Name, ast.Attribute, ast.Call)) and last_name(d) in (
            "contextmanager", "asynccontextmanager", "fixture", "property", "cached_property",
            "lru_cache", "cache") for d in fn.decorator_list):
        return None
    kind: Kind | None = None
    assigned: dict[str, Kind] = {}
    for node in walk_shallow(fn.body):
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            return None
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            value = node.value.value if isinstance(node.value, ast.Await) else node.value
            if isinstance(value, ast.Call):
                k = classify(ctx, value, fn, cls, factories=True)
                if k is not None and k.code != "PD202":
                    assigned[node.targets[0].id] = k
        if isinstance(node, ast.Return):
            ret = node.value
            value = ret.value if isinstance(ret, ast.Await) else ret  # type: ignore[assignment]
            if value is None or (isinstance(value, ast.Constant) and value.value is None):
                continue
            k = _fresh_value(ctx, value, fn, cls, assigned)
            if k is None and isinstance(value, ast.Tuple):
                for slot, item in enumerate(value.elts):  # return conn, conn.cursor()
                    k = _fresh_value(ctx, item, fn, cls, assigned)
                    if k is not None:
                        k = k.replace(slot=slot)
                        break
            if k is None or k.code == "PD202":
                return None
            kind = k
    if kind is not None and assigned and _kept_elsewhere(fn, set(assigned)):
        return None  # also stored in a pool or on self: not a fresh object for the caller
    return kind


def _fresh_value(ctx: ModuleContext, value: ast.expr, fn: FuncNode, cls: ast.ClassDef | None,
                 assigned: dict[str, Kind]) -> Kind | None:
    if isinstance(value, ast.Await):
        value = value.value
    if isinstance(value, ast.Call):
        k = classify(ctx, value, fn, cls, factories=True)
        return None if k is not None and k.slot >= 0 else k
    if isinstance(value, ast.Name):
        return assigned.get(value.id)
    return None


def _kept_elsewhere(fn: FuncNode, names: set[str]) -> bool:
    from .flowstate import escapes_in

    for node in walk_shallow(fn.body):
        if isinstance(node, ast.Assign) and any(not isinstance(t, ast.Name) for t in node.targets) \
                and any(escapes_in(node.value, n) for n in names):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and any(
                escapes_in(node, n) for n in names):
            return True
    return False
