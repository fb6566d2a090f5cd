"""PD211: a generator dependency (FastAPI's ``get_db()``) consumed with ``next()``.

``next(get_db())`` runs the generator up to its ``yield`` and drops it: the code after the yield
(``finally: db.close()``) runs only when the garbage collector finalizes the generator, if ever.
"""

from __future__ import annotations

import ast
import re

from ...lazyre import lazy
from ..context import FuncNode, ModuleContext, walk_shallow
from ..resources import classify

CODE = "PD211"
# get_db, get_session, get_async_session, get_db_conn: the noun ends the name (not
# get_user_records, get_cursor_rows: plain functions returning rows)
_DEPENDENCY_NAME = lazy(r"^a?get_(\w+_)?(db|session|conn|connection|database)$",
                        re.IGNORECASE)


def _generators(ctx: ModuleContext) -> dict[str, FuncNode]:
    """Module generator functions that clean up after their yield or yield a resource."""
    cached = ctx.cache.get("generators")
    if cached is not None:
        return cached  # type: ignore[return-value]
    found: dict[str, FuncNode] = {}
    ctx.cache["generators"] = found
    for stmt in ctx.tree.body:
        if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                or id(stmt) not in ctx.yielding:
            continue
        has_yield = cleanup = False
        for node in walk_shallow(stmt.body):
            if isinstance(node, (ast.Yield, ast.YieldFrom)):
                has_yield = True
            elif (isinstance(node, ast.Try) and node.finalbody) or isinstance(
                    node, (ast.With, ast.AsyncWith)) or (
                    isinstance(node, ast.Call) and classify(ctx, node, stmt, None) is not None):
                cleanup = True
        if has_yield and cleanup:
            found[stmt.name] = stmt
    return found


def check(ctx: ModuleContext) -> None:
    gens: dict[str, FuncNode] | None = None
    for cs in ctx.calls:
        call = cs.node
        if not (isinstance(call.func, ast.Name) and call.func.id in ("next", "anext")
                and len(call.args) >= 1):
            continue
        if gens is None:
            gens = _generators(ctx)
        arg = call.args[0]
        if isinstance(arg, ast.Call):
            name = arg.func.id if isinstance(arg.func, ast.Name) else None
            if name is None or not _is_dependency(ctx, name, gens):
                continue
            ctx.report(CODE, call, f"{call.func.id}({name}()) runs the generator to its yield "
                       f"and drops it: its cleanup (finally/close) never runs; use "
                       f"`with contextlib.contextmanager({name})() as ...:` or keep the "
                       f"generator and close() it", cs.func.name if cs.func else None)
        elif isinstance(arg, ast.Name) and cs.func is not None:
            source = _generator_source(ctx, cs.func, arg.id, gens)
            if source and not _closed(cs.func, arg.id):
                ctx.report(CODE, call, f"generator `{arg.id}` from {source}() is advanced with "
                           f"{call.func.id}() and never closed: its cleanup never runs; call "
                           f"{arg.id}.close() in a finally", cs.func.name)


def _is_dependency(ctx: ModuleContext, name: str, gens: dict[str, FuncNode]) -> bool:
    if name in gens:
        return True
    ext = ctx.external
    if ext is not None:
        if name in ext.generators:
            return True
        if name in ext.plain or name in ext.factories or name in ext.closers:
            return False  # a function of the run that is not a generator
    if name in ctx.aliases:  # imported from outside the run: judge by the conventional name
        origin = ctx.aliases[name].rsplit(".", 1)[-1]
        return bool(_DEPENDENCY_NAME.match(name) or _DEPENDENCY_NAME.match(origin))
    return False


def _generator_source(ctx: ModuleContext, func: FuncNode, var: str,
                      gens: dict[str, FuncNode]) -> str | None:
    for node in walk_shallow(func.body):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                node.targets[0], ast.Name) and node.targets[0].id == var and isinstance(
                node.value, ast.Call) and isinstance(node.value.func, ast.Name):
            name = node.value.func.id
            if _is_dependency(ctx, name, gens):
                return name
    return None


def _closed(func: FuncNode, var: str) -> bool:
    advances = 0
    for node in walk_shallow(func.body):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                "next", "anext") and node.args and isinstance(node.args[0], ast.Name) \
                and node.args[0].id == var:
            advances += 1
            if advances > 1:
                return True  # advanced again to its end: the cleanup runs
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == var and node.attr in ("close", "aclose", "throw", "send"):
            return True
        if isinstance(node, ast.For) and isinstance(node.iter, ast.Name) and node.iter.id == var:
            return True  # exhausted by a loop
        if isinstance(node, ast.Call) and any(isinstance(a, ast.Name) and a.id == var
                                              for a in node.args) and not (
                isinstance(node.func, ast.Name) and node.func.id in ("next", "anext")):
            return True  # handed to closing(), an ExitStack, a helper
    return False
