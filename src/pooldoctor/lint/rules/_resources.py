"""Shared analysis behind PD201, PD202 and PD203: every opened resource, followed to its close.

It runs once per module (cached on the context); each of the three rules reports its own code.
"""

from __future__ import annotations

import ast

from ..context import (
    CallSite,
    FuncNode,
    ModuleContext,
    is_test_module,
    last_name,
    walk_shallow,
)
from ..flow import Interpreter
from ..flowstate import CLOSERS, Verdict
from ..issues import Issue
from ..resources import DRIVERS, Kind, classify
from ..selfheld import has_resource_methods, held_call, holder_closed

HINT = {
    "PD201": "use `with contextlib.closing(...)` or close() in a finally",
    "PD202": "use `with conn.cursor() as cur:` or close() in a finally",
    "PD203": "use `with ...:` or close() in a finally",
}
LIFECYCLE = frozenset({
    "close", "aclose", "__exit__", "__aexit__", "__del__", "dispose", "shutdown", "teardown",
    "tearDown", "tearDownClass", "teardown_class", "teardown_method", "disconnect", "stop",
    "cleanup", "release", "finalize", "__aenter__", "__enter__", "reset", "quit", "terminate",
})
FIXTURE_DECORATORS = frozenset({"fixture", "yield_fixture"})


def issues_for(ctx: ModuleContext, code: str) -> list[Issue]:
    cached = ctx.cache.get("resource_issues")
    if cached is None:
        cached = _analyse(ctx)
        ctx.cache["resource_issues"] = cached
    return [i for i in cached if i.code == code]  # type: ignore[attr-defined]


def parent_of(root: ast.AST, target: ast.AST) -> ast.AST | None:
    for node in ast.walk(root):
        for child in ast.iter_child_nodes(node):
            if child is target:
                return node
    return None


def _closer_functions(ctx: ModuleContext) -> dict[str, frozenset[int]]:
    """Module functions that close some of their parameters: name -> closed positions.

    ``def close_all(cur, conn): cur.close(); conn.close()`` -> ``{"close_all": {0, 1}}``.
    """
    cached = ctx.cache.get("closer_functions")
    if cached is None:
        table: dict[str, frozenset[int]] = {}
        top = {id(stmt) for stmt in ctx.tree.body
               if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))}
        closed: dict[int, tuple[FuncNode, set[int]]] = {}
        for fn, name in ctx.closes:  # `name.close()` seen by the indexer, in function fn
            if id(fn) not in top:
                continue
            params = [a.arg for a in fn.args.args]
            if name in params:
                closed.setdefault(id(fn), (fn, set()))[1].add(params.index(name))
        for fn, found in closed.values():
            table[fn.name] = frozenset(found)
        if ctx.external and ctx.external.closers:
            for spelled, positions in ctx.external.closers.items():
                table.setdefault(spelled.rsplit(".", 1)[-1], positions)
        cached = table
        ctx.cache["closer_functions"] = cached
    return cached  # type: ignore[return-value]


def _is_fixture(func: FuncNode) -> bool:
    for d in func.decorator_list:
        node = d.func if isinstance(d, ast.Call) else d
        name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
        if name in FIXTURE_DECORATORS:
            return True
    return False


def _analyse(ctx: ModuleContext) -> list[Issue]:
    issues: list[Issue] = []
    assigned_cache: dict[int, set[str]] = {}
    held: bool | None = None
    for cs in ctx.calls:
        kind = classify(ctx, cs.node, cs.func, cs.cls)
        if kind is None:
            if cs.cls is not None and isinstance(cs.stmt, ast.Assign):
                if held is None:
                    held = has_resource_methods(ctx)
                if held:
                    _held(ctx, cs, issues)
            continue
        _one(ctx, cs, kind, issues, assigned_cache)
    return issues


def _held(ctx: ModuleContext, cs: CallSite, issues: list[Issue]) -> None:
    """``self.con, self.cur = self.d_b.connect()`` (``selfheld.py``)."""
    found = held_call(ctx, cs)
    if found is None:
        return
    kind, holder, attrs = found
    for attr in attrs:
        _check_self_attr(ctx, cs, kind, attr, cs.stmt.lineno, cs.node, issues, holder)


def _assigned_names(func: FuncNode, cache: dict[int, set[str]]) -> set[str]:
    names = cache.get(id(func))
    if names is None:
        names = set()
        for node in walk_shallow(func.body):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
        cache[id(func)] = names
    return names


def _one(ctx: ModuleContext, cs: CallSite, kind: Kind, issues: list[Issue],
         assigned_cache: dict[int, set[str]]) -> None:
    call, stmt, func = cs.node, cs.stmt, cs.func
    if kind.code == "PD202":
        receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
        if func is None or receiver is None or _sqlite_only(ctx):
            return
        if isinstance(receiver, ast.Name) and receiver.id in _assigned_names(func,
                                                                              assigned_cache):
            return  # a connection of this function: closing it closes the cursor
        if isinstance(receiver, (ast.Call, ast.Await)):
            return
    if func is not None and _expects_failure(func, stmt):
        return  # `with pytest.raises(...)`: the call is meant to fail
    parent = parent_of(stmt, call)
    if isinstance(parent, ast.Await):
        parent = parent_of(stmt, parent)
    fname = func.name if func is not None else None
    if kind.slot >= 0:  # a factory returning a tuple: follow the item that is the resource
        if func is None or not (isinstance(parent, ast.Assign) and parent is stmt
                                and len(parent.targets) == 1):
            return
        target = parent.targets[0]
        if not isinstance(target, (ast.Tuple, ast.List)) or len(target.elts) <= kind.slot:
            return
        item = target.elts[kind.slot]
        if isinstance(item, ast.Attribute) and isinstance(item.value, ast.Name) \
                and item.value.id == "self":  # self.con, self.cur = get_pair()
            _check_self_attr(ctx, cs, kind, item.attr, stmt.lineno, call, issues)
            return
        if not isinstance(item, ast.Name):
            return
        var = target.elts[kind.slot].id  # type: ignore[attr-defined]
        verdict = _interpret(ctx, func, var, stmt, kind, call)
        message = verdict and _message(kind, var, verdict, stmt.lineno, fname,
                                       _lenient(ctx, func, cs.cls, kind, call))
        if message:
            issues.append(Issue(kind.code, call.lineno, ctx.column(call), message, fname))
        return
    if isinstance(parent, ast.Yield) and func is not None and _is_fixture(func) \
            and kind.code != "PD202":
        issues.append(Issue(kind.code, call.lineno, ctx.column(call),
                            f"{kind.noun} from {kind.label} is yielded by fixture {fname}() "
                            f"and never closed after the yield; name it and close it after "
                            f"the yield (pytest runs that part even when the test fails)",
                            fname))
        return

    def add(node: ast.AST, message: str) -> None:
        issues.append(Issue(kind.code, getattr(node, "lineno", 1), ctx.column(node), message,
                            fname))

    # `with open_it() as x:`
    if isinstance(parent, ast.withitem):
        if kind.with_closes:
            return
        var = parent.optional_vars
        what = f"`with` on a {kind.driver} {kind.noun} ends the transaction but does not close it"
        if not isinstance(var, ast.Name) or func is None:
            add(call, f"{what}; use `with contextlib.closing({kind.label[:-2]}(...)) as conn:`")
            return
        verdict = _interpret(ctx, func, var.id, stmt, kind, call)
        if verdict is not None and verdict.leaks:
            add(call, f"{what}; `{var.id}` stays open: use "
                      f"`with contextlib.closing({kind.label[:-2]}(...)) as {var.id}:`")
        return
    if isinstance(parent, ast.Assign) and len(parent.targets) == 1 and parent is stmt:
        target = parent.targets[0]
        if isinstance(target, ast.Name):
            if func is None:
                return  # module level: lives as long as the module
            verdict = _interpret(ctx, func, target.id, stmt, kind, call)
            if verdict is None:
                return
            for attr, line in verdict.self_attrs:
                _check_self_attr(ctx, cs, kind, attr, line, call, issues)
            message = _message(kind, target.id, verdict, stmt.lineno, fname,
                               _lenient(ctx, func, cs.cls, kind, call))
            if message:
                add(call, message)
            return
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                and target.value.id == "self":
            _check_self_attr(ctx, cs, kind, target.attr, stmt.lineno, call, issues)
        return
    if isinstance(parent, ast.Attribute) and func is not None and kind.code != "PD202":
        # connect(...).cursor(), engine.connect().execute(...): nobody can close it
        grand = parent_of(stmt, parent)
        if isinstance(grand, ast.Call) and grand.func is parent and parent.attr not in CLOSERS \
                and not isinstance(parent_of(stmt, grand), ast.withitem):
            add(call, f"{kind.noun} from {kind.label} is used without a name and never "
                      f"closed; {HINT[kind.code]}")
        return
    if isinstance(parent, ast.Expr) and func is not None:
        add(call, f"{kind.noun} from {kind.label} is opened and dropped without being closed")


def _in_test(ctx: ModuleContext, func: FuncNode, cls: ast.ClassDef | None) -> bool:
    """Test code: a test function, a method of a test class, a fixture, or any function of a
    test module (``test_*.py``, ``*_test.py``, ``conftest.py``, under ``tests/``)."""
    return func.name.startswith("test") or (cls is not None and cls.name.startswith("Test")) \
        or _is_fixture(func) or is_test_module(ctx.path)


_DRIVER_ROOTS = frozenset(d.split(".")[0] for d in DRIVERS) | {"sqlalchemy", "sqlmodel"}


# SQLite bindings: the standard library's, APSW, sqlean.py, pysqlite
_SQLITE = frozenset({"sqlite3", "apsw", "sqlean", "pysqlite2", "pysqlite3"})


def _sqlite_only(ctx: ModuleContext) -> bool:
    """A module whose only database is SQLite (sqlite3, APSW...): its cursors hold no server
    resource nor pool slot, and CPython frees them with their last reference (PD202 not
    reported)."""
    flag = ctx.cache.get("sqlite_only")
    if flag is None:
        roots = {o.lstrip(".").split(".")[0] for o in ctx.aliases.values()}
        flag = bool(roots & _SQLITE) and not (roots & (_DRIVER_ROOTS - _SQLITE))
        ctx.cache["sqlite_only"] = flag
    return bool(flag)


def _lenient(ctx: ModuleContext, func: FuncNode, cls: ast.ClassDef | None, kind: Kind,
             call: ast.Call) -> bool:
    """Is a close skipped only by an exception not worth a finding here? In test code the
    failing step is the report; an in-memory sqlite3 database holds no file, lock or server."""
    return _in_test(ctx, func, cls) or (kind.driver == "sqlite3" and _in_memory(call))


def _in_memory(call: ast.Call) -> bool:
    """``sqlite3.connect(":memory:")``."""
    arg = call.args[0] if call.args else next(
        (k.value for k in call.keywords if k.arg == "database"), None)
    return isinstance(arg, ast.Constant) and arg.value in (":memory:", "")


_RAISES = frozenset({"raises", "assertRaises", "assertRaisesRegex", "assertRaisesRegexp"})


def _expects_failure(func: FuncNode, stmt: ast.stmt) -> bool:
    for node in walk_shallow(func.body):
        if isinstance(node, (ast.With, ast.AsyncWith)) and any(
                isinstance(i.context_expr, ast.Call) and isinstance(
                    i.context_expr.func, (ast.Attribute, ast.Name)) and getattr(
                    i.context_expr.func, "attr", getattr(i.context_expr.func, "id", ""))
                in _RAISES for i in node.items) and any(n is stmt for n in walk_shallow(node.body)):
            return True
    return False


def _interpret(ctx: ModuleContext, func: FuncNode, var: str, stmt: ast.stmt, kind: Kind,
               call: ast.Call) -> Verdict | None:
    interp = Interpreter(func, var, stmt, kind.with_closes, _closer_functions(ctx),
                         yield_raises=not _is_fixture(func), site_call=call,
                         cursor_mode=kind.code == "PD202", session_mode=kind.noun == "session")
    verdict = interp.run()
    return None if verdict.aborted else verdict


def _message(kind: Kind, var: str, v: Verdict, site_line: int, fname: str | None,
             lenient: bool = False) -> str | None:
    what = f"{kind.noun} `{var}` from {kind.label}"
    hint = HINT[kind.code]
    if v.overwrites:
        line = v.overwrites[0]
        if line == site_line:
            return (f"{what} is opened again at line {line} (in a loop) before the previous one "
                    f"is closed; close it in the loop or open it once outside")
        if line in v.deletes:
            return f"{what} is deleted at line {line} before it is closed; close it first"
        return f"{what} is replaced at line {line} before it is closed; close it first"
    if (v.leaks_return or v.leaks_end) and not v.closes and not v.escapes:
        return f"{what} is never closed; {hint}"
    if v.leaks_return:
        return f"{what} is not closed when the function returns at line {v.leaks_return[0]}; " \
               f"{hint}"
    if v.leaks_end:
        where = f"{fname}()" if fname else "the function"
        return f"{what} is not closed on every path: it can still be open when {where} ends; " \
               f"{hint}"
    if kind.code == "PD202":
        return None  # a cursor dropped on an error path is freed with the traceback
    if v.releases and not v.closes:
        return None  # a Session that ends in commit()/rollback() holds no connection after it
    if lenient and not any(is_raise for _, is_raise in v.leaks_raise):
        return None  # skipped only when a test step fails / an in-memory sqlite3 database
    explicit = [line for line, is_raise in v.leaks_raise if is_raise]
    if explicit:
        return f"{what} is not closed when the raise at line {explicit[0]} leaves the " \
               f"function; {hint}"
    if v.leaks_raise and not v.escapes:
        line = v.leaks_raise[0][0]
        close = f" at line {v.closes[0]}" if v.closes else ""
        return (f"{what} is closed only on the happy path: an exception at line {line} skips "
                f"the close{close}; {hint}")
    return None


def _check_self_attr(ctx: ModuleContext, cs: CallSite, kind: Kind, attr: str, line: int,
                     call: ast.Call, issues: list[Issue], holder: str | None = None) -> None:
    cls = cs.cls
    if cls is None:
        return
    if holder is not None and holder_closed(cls, holder, attr):
        return
    local = {s.name: s for s in ctx.tree.body if isinstance(s, ast.ClassDef)}
    todo, seen, unknown_base = [cls], set(), False
    while todo:
        c = todo.pop()
        if c.name in seen:
            continue
        seen.add(c.name)
        if _class_closes(c, attr, kind):
            return
        for b in c.bases:
            name = _base_name(b)
            if name in local:
                todo.append(local[name])
            elif name not in ("object", "", "ABC", "Protocol", "Generic"):
                unknown_base = True
    if unknown_base:
        return  # a base class we cannot see may close it in its own close()
    nor = "" if holder is None else f" (nor is self.{holder})"
    issues.append(Issue(kind.code, line, ctx.column(call) if call.lineno == line else 1,
                        f"{kind.noun} stored on self.{attr} from {kind.label} is never closed "
                        f"by class {cls.name}{nor}; close it in close() or __exit__()",
                        cs.func.name if cs.func else None))


def _views_of(cls: ast.ClassDef, attr: str) -> set[str]:
    """``attr`` and the properties that return it: ``@property def connection(self): return
    self._connection`` makes ``self.connection.close()`` close ``self._connection``."""
    names = {attr}
    for item in cls.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                last_name(d) in ("property", "cached_property") for d in item.decorator_list):
            for node in walk_shallow(item.body):
                if isinstance(node, ast.Return) and isinstance(node.value, ast.Attribute) \
                        and node.value.attr == attr and isinstance(node.value.value, ast.Name) \
                        and node.value.value.id == "self":
                    names.add(item.name)
    return names


def _class_closes(cls: ast.ClassDef, attr: str, kind: Kind) -> bool:
    views = _views_of(cls, attr)
    for item in cls.body:
        if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if item.name in ("__getattr__", "__getattribute__"):
            return True  # a proxy: close() reaches the wrapped object
        lifecycle = item.name in LIFECYCLE
        for node in walk_shallow(item.body):
            if isinstance(node, ast.Attribute):
                if lifecycle and node.attr == attr and isinstance(node.value, ast.Name) \
                        and node.value.id == "self":
                    return True
                if node.attr in CLOSERS and isinstance(node.value, ast.Attribute) \
                        and node.value.attr in views:
                    return True  # self.conn.close() / self.conn.close as a callback
            elif isinstance(node, ast.withitem):
                e = node.context_expr
                if isinstance(e, ast.Attribute) and e.attr == attr and kind.with_closes:
                    return True
    return False


def _base_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        return _base_name(node.value)
    return ""
