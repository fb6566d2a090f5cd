"""Factories reached through values: an instance's method, a name bound to a factory, a
parameter that receives one.

- ``db = Database(dsn); conn = db.connect()`` (also ``Database(dsn).connect()`` and
  ``Database.open(dsn)``) when ``Database.connect`` returns a fresh resource, for a class of the
  same module or of another module of the run (``Summary.classes``);
- ``factory = get_conn; conn = factory()``, in a function or at module level, also
  ``factory = sqlite3.connect`` and ``factory = db.connect``;
- ``def run(factory=get_conn)`` and ``run(get_conn)`` / ``run(factory=get_conn)`` for
  ``def run(factory): conn = factory()``: the parameter is a factory when its default or an
  argument of any call of ``run`` in the run is one (calls from other modules arrive as
  ``Externals.params``).

An instance kept on ``self`` (``self.db.connect()``) is ``selfheld.py``'s. Not followed: a
factory in a container (``FACTORIES["pg"]()``), a method of a parameter.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from .context import CallSite, FuncNode, ModuleContext, walk_shallow
from .drivers import DRIVERS
from .issues import Kind


def local_bindings(ctx: ModuleContext, func: FuncNode | None) -> dict[str, ast.expr]:
    """``name -> value`` of the simple assignments in ``func`` (cached per function)."""
    if func is None:
        return {}
    key = f"bind:{id(func)}"
    cached = ctx.cache.get(key)
    if cached is None:
        binds: dict[str, ast.expr] = {}
        for node in walk_shallow(func.body):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                    node.targets[0], ast.Name):
                binds.setdefault(node.targets[0].id, node.value)
        ctx.cache[key] = cached = binds
    return cached  # type: ignore[return-value]


def callee_kind(ctx: ModuleContext, call: ast.Call, func: FuncNode | None,
                table: dict[tuple[str, str], Kind]) -> Kind | None:
    """The kind ``call`` opens when its callee is a value that holds a factory."""
    f = call.func
    if isinstance(f, ast.Name):
        target = _bound_ref(ctx, f.id, func)
        if target is not None:
            return ref_kind(ctx, target, func, table)
        if func is not None:
            return _param_kind(ctx, func, f.id, table)
        return None
    if isinstance(f, ast.Attribute):
        methods = instance_methods(ctx, f.value, func, table)
        if methods:
            return methods.get(f.attr)
    return None


def ref_kind(ctx: ModuleContext, ref: ast.expr, func: FuncNode | None,
             table: dict[tuple[str, str], Kind]) -> Kind | None:
    """The kind a reference to a callable (not a call) opens when called."""
    if isinstance(ref, ast.Name) and ref.id not in ctx.aliases:
        found = table.get(("", ref.id))
        if found is not None:
            return found
    q = ctx.qualname(ref)
    if q is not None and q in DRIVERS:
        return Kind("PD201", f"{q}()", "connection", DRIVERS[q], q.split(".")[0])
    ext = ctx.external
    if ext is not None and ext.factories:
        spelled = ctx.dotted(ref)
        if spelled is not None and spelled in ext.factories:
            return ext.factories[spelled]
    if isinstance(ref, ast.Attribute):
        methods = instance_methods(ctx, ref.value, func, table)
        if methods:
            return methods.get(ref.attr)
    return None


def _bound_ref(ctx: ModuleContext, name: str, func: FuncNode | None) -> ast.expr | None:
    """``factory`` of ``factory = get_conn`` (local first, then module level)."""
    value = ctx.value_refs.get(id(func), {}).get(name) if func is not None else None
    if value is None:
        value = ctx.module_names.get(name)
    return value if isinstance(value, (ast.Name, ast.Attribute)) else None


def class_methods(ctx: ModuleContext, table: dict[tuple[str, str], Kind]
                  ) -> dict[str, dict[str, Kind]]:
    """``class -> method -> kind`` for the methods of this module's classes that are factories,
    labelled ``Class.method()``."""
    out: dict[str, dict[str, Kind]] = {}
    for (cls, name), kind in table.items():
        if cls:
            out.setdefault(cls, {})[name] = Kind(kind.code, f"{cls}.{name}()", kind.noun,
                                                 kind.with_closes, kind.driver, kind.slot)
    return out


def instance_methods(ctx: ModuleContext, receiver: ast.expr, func: FuncNode | None,
                     table: dict[tuple[str, str], Kind]) -> dict[str, Kind] | None:
    """The factory methods of the class ``receiver`` is an instance of (or is)."""
    ext = ctx.external
    if not (ext is not None and ext.classes) and not any(cls for cls, _ in table):
        return None  # no class of the run has a factory method: the common case
    spelled: str | None = None
    if isinstance(receiver, ast.Call):
        spelled = ctx.dotted(receiver.func)
    elif isinstance(receiver, ast.Name):
        value = local_bindings(ctx, func).get(receiver.id) if func is not None else None
        if value is None:
            value = ctx.module_names.get(receiver.id)
        if isinstance(value, ast.Await):
            value = value.value
        if isinstance(value, ast.Call):
            spelled = ctx.dotted(value.func)
        elif value is None:
            spelled = receiver.id  # the class itself: Database.open(dsn)
    elif isinstance(receiver, ast.Attribute) and isinstance(receiver.value, ast.Name) \
            and receiver.value.id not in ("self", "cls"):
        spelled = ctx.dotted(receiver)  # models.Database.open(dsn)
    if not spelled:
        return None
    if "." not in spelled and any(cls == spelled for cls, _ in table):
        return class_methods(ctx, table).get(spelled)
    if ext is not None and ext.classes:
        return ext.classes.get(spelled)
    return None


def _params(fn: FuncNode) -> list[str]:
    return [a.arg for a in (*fn.args.posonlyargs, *fn.args.args)]


def _param_kind(ctx: ModuleContext, func: FuncNode, name: str,
                table: dict[tuple[str, str], Kind]) -> Kind | None:
    """A parameter called in its function, when a default or an argument is a factory."""
    params = _params(func)
    kwonly = [a.arg for a in func.args.kwonlyargs]
    if name not in params and name not in kwonly:
        return None
    defaults = dict(zip(params[len(params) - len(func.args.defaults):], func.args.defaults))
    defaults.update((a.arg, d) for a, d in zip(func.args.kwonlyargs, func.args.kw_defaults)
                    if d is not None)
    default = defaults.get(name)
    if isinstance(default, (ast.Name, ast.Attribute)):
        kind = ref_kind(ctx, default, None, table)
        if kind is not None:
            return kind
    ext = ctx.external
    if ext is not None and (func.name, name) in ext.params:
        return ext.params[(func.name, name)]
    position = params.index(name) if name in params else -1
    for cs in _calls_of(ctx).get(func.name, ()):
        args = cs.node.args
        arg: ast.expr | None = args[position] if 0 <= position < len(args) else None
        if arg is None:
            arg = next((k.value for k in cs.node.keywords if k.arg == name), None)
        if isinstance(arg, (ast.Name, ast.Attribute)):
            kind = ref_kind(ctx, arg, cs.func, table)
            if kind is not None:
                return kind
    return None


def _calls_of(ctx: ModuleContext) -> dict[str, list[CallSite]]:
    """Calls of this module's top-level functions by their plain name."""
    cached = ctx.cache.get("calls_of")
    if cached is None:
        top = {s.name for s in ctx.tree.body
               if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
        found: dict[str, list[CallSite]] = {}
        for cs in ctx.calls:
            f = cs.node.func
            if isinstance(f, ast.Name) and f.id in top:
                found.setdefault(f.id, []).append(cs)
        ctx.cache["calls_of"] = cached = found
    return cached  # type: ignore[return-value]


def passed_factories(ctx: ModuleContext, table: dict[tuple[str, str], Kind],
                     origins: Callable[[str], tuple[str, ...]], module: str
                     ) -> list[tuple[tuple[str, ...], int | str, tuple[str, ...]]]:
    """For the summary: ``(callee origins, position or keyword, argument origins)`` of the
    calls of imported functions that pass a function by name, positionally
    (``run_with(get_conn)``);
    ``project.py`` resolves both sides across modules."""
    out: list[tuple[tuple[str, ...], int | str, tuple[str, ...]]] = []
    for cs in ctx.passing:
        f = cs.node.func
        if not isinstance(f, (ast.Name, ast.Attribute)):
            continue
        spelled = ctx.dotted(f)
        callee = origins(spelled) if spelled is not None else ()
        if not callee:
            continue
        for where, arg in enumerate(cs.node.args):
            if isinstance(arg, ast.Name) and ("", arg.id) in table:
                out.append((callee, where, (f"{module}.{arg.id}",)))
            elif isinstance(arg, (ast.Name, ast.Attribute)):
                arg_spelled = ctx.dotted(arg)
                found = origins(arg_spelled) if arg_spelled is not None else ()
                if found:
                    out.append((callee, where, found))
    return out
