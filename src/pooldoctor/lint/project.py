"""The project-wide pass: factories, closers and generators followed across the modules of a run.

Each file is checked on its own first and leaves a ``Summary`` of its top-level functions (what
they return, which parameters they close, which are generators). ``Project`` joins the summaries
(module names from the ``__init__.py`` files; from-imports, relative imports, module aliases,
``import a.b as m`` + ``m.f()``, star imports, re-exports in ``__init__``), resolves factories that
return another module's factory, and gives each file that uses one its ``Externals``; only those
files are checked a second time.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable

from .context import FuncNode, ModuleContext, walk_shallow
from .index import Externals, Summary
from .issues import Kind
from .resources import _factories, is_engine_factory, local_bindings, uses_sqlalchemy
from .rules._util import is_cached, is_entry_point

_MAX_HOPS = 6
_NOT_FACTORY = frozenset({"contextmanager", "asynccontextmanager", "fixture", "property",
                          "cached_property"})


# ---------------------------------------------------------------------------- module names

_PKG_CACHE: dict[str, bool] = {}


def _is_package(folder: str) -> bool:
    hit = _PKG_CACHE.get(folder)
    if hit is None:
        hit = _PKG_CACHE[folder] = os.path.isfile(os.path.join(folder, "__init__.py"))
    return hit


def module_name(path: str) -> tuple[str, bool]:
    """``(dotted name, is a package __init__)`` from the ``__init__.py`` files above ``path``."""
    folder, base = os.path.split(os.path.abspath(path))
    stem = base[:-3] if base.endswith(".py") else base
    parts = [] if stem == "__init__" else [stem]
    while folder and _is_package(folder):
        folder, name = os.path.split(folder)
        parts.append(name)
        if not name:
            break
    return ".".join(reversed(parts)), stem == "__init__"


def absolute(module: str, is_package: bool, origin: str) -> str:
    """``..db.get_conn`` seen from ``app.api.views`` -> ``app.db.get_conn``."""
    if not origin.startswith("."):
        return origin
    level = len(origin) - len(origin.lstrip("."))
    parts = module.split(".") if module else []
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[:len(parts) - (level - 1)] if level - 1 <= len(parts) else []
    rest = origin[level:]
    return ".".join([*parts, rest] if rest else parts)


# ---------------------------------------------------------------------------- summaries


def summarize(ctx: ModuleContext) -> Summary:
    """What the top-level functions of ``ctx`` offer the other modules."""
    from .rules._resources import _closer_functions
    from .rules.pd211 import _generators
    from .selfheld import owned_methods
    from .values import class_methods, passed_factories

    module, is_pkg = module_name(ctx.path)
    summary = Summary(module)
    for local, origin in ctx.aliases.items():
        summary.aliases[local] = absolute(module, is_pkg, origin)
    summary.stars = [absolute(module, is_pkg, s) for s in ctx.stars]
    table = _factories(ctx)
    for (cls, name), kind in table.items():
        if not cls:
            summary.factories[name] = kind
    summary.classes = class_methods(ctx, table)
    summary.owned = owned_methods(ctx)
    summary.closers = dict(_closer_functions(ctx))
    summary.generators = set(_generators(ctx))
    for stmt in ctx.tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            summary.functions.add(stmt.name)
            summary.params[stmt.name] = [a.arg for a in (*stmt.args.posonlyargs,
                                                         *stmt.args.args)]
            if _returns_new_engine(ctx, stmt):
                summary.engines.add(stmt.name)
            if stmt.name not in summary.factories:
                refs = _return_refs(ctx, stmt, summary)
                if refs:
                    summary.pending[stmt.name] = refs
    for name, value in ctx.module_names.items():  # get_dbconn = database.get_dbconn
        if isinstance(value, (ast.Name, ast.Attribute)) and name not in summary.functions:
            origins = spelled_origins(ctx.dotted(value), summary)
            if origins:
                summary.aliases[name] = origins[0]
    summary.passes = passed_factories(ctx, table, lambda sp: spelled_origins(sp, summary), module)
    return summary


def _return_refs(ctx: ModuleContext, fn: FuncNode, summary: Summary
                 ) -> list[tuple[tuple[str, ...], int]] | None:
    """For a function whose every return calls a function of another module: those origins."""
    if is_cached(fn) or any(_deco_name(d) in _NOT_FACTORY for d in fn.decorator_list):
        return None
    if id(fn) in ctx.yielding:
        return None
    refs: list[tuple[tuple[str, ...], int]] = []
    returns = ctx.returns.get(id(fn), [])
    params = {a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)}
    for node in returns:  # the cheap refusals first: no body walk for most functions
        v = node.value
        if (isinstance(v, ast.Name) and v.id in params) or isinstance(
                v, (ast.Attribute, ast.Subscript, ast.BinOp, ast.Compare, ast.BoolOp,
                    ast.JoinedStr, ast.List, ast.Dict, ast.ListComp, ast.DictComp)):
            return None
        if isinstance(v, ast.Constant) and v.value is not None:
            return None
    for node in sorted(returns, key=lambda r: isinstance(r.value, ast.Name)):
        if node.value is None:
            continue
        value = node.value.value if isinstance(node.value, ast.Await) else node.value
        if isinstance(value, ast.Constant) and value.value is None:
            continue
        origins = _origins(ctx, fn, value, summary)
        slot = -1
        if not origins and isinstance(value, ast.Tuple):
            for i, item in enumerate(value.elts):
                origins = _origins(ctx, fn, item, summary)
                if origins:
                    slot = i
                    break
        if not origins:
            return None
        refs.append((origins, slot))
    return refs or None


def _origins(ctx: ModuleContext, fn: FuncNode, value: ast.expr, summary: Summary
             ) -> tuple[str, ...]:
    if isinstance(value, ast.Await):
        value = value.value
    if isinstance(value, ast.Name):
        bound = local_bindings(ctx, fn).get(value.id)
        if bound is None:
            return ()
        value = bound.value if isinstance(bound, ast.Await) else bound
    if not isinstance(value, ast.Call):
        return ()
    return spelled_origins(ctx.dotted(value.func), summary)


def spelled_origins(spelled: str | None, summary: Summary) -> tuple[str, ...]:
    """Absolute origins a call spelled ``spelled`` in the module of ``summary`` may reach."""
    if not spelled or "(" in spelled:
        return ()
    head, _, rest = spelled.partition(".")
    origin = summary.aliases.get(head)
    if origin is not None:
        return (f"{origin}.{rest}" if rest else origin,)
    if not rest and head not in summary.functions:
        return tuple(f"{star}.{head}" for star in summary.stars)
    return ()


def _returns_new_engine(ctx: ModuleContext, fn: FuncNode) -> bool:
    """``def get_engine(url): return create_engine(url)``, not cached and not memoised."""
    if not uses_sqlalchemy(ctx) or is_cached(fn) or is_entry_point(fn):
        return False
    if not any((isinstance(r.value, ast.Call) and is_engine_factory(ctx, r.value.func))
               or isinstance(r.value, ast.Name) for r in ctx.returns.get(id(fn), ())):
        return False
    found = False
    for node in walk_shallow(fn.body):
        if isinstance(node, ast.Assign) and any(not isinstance(t, ast.Name)
                                                for t in node.targets):
            return False  # kept in a dict, on self, on a module: a memo
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            return False
        if isinstance(node, ast.Return) and node.value is not None:
            value = node.value
            if isinstance(value, ast.Name):
                value = local_bindings(ctx, fn).get(value.id)  # type: ignore[assignment]
            if not (isinstance(value, ast.Call) and is_engine_factory(ctx, value.func)):
                return False
            found = True
    return found


def _deco_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


# ---------------------------------------------------------------------------- the project


class Project:
    """The summaries of a run, joined."""

    def __init__(self, summaries: Iterable[Summary]) -> None:
        self.modules: dict[str, Summary] = {}
        self.suffixes: dict[str, list[Summary]] = {}
        named: dict[str, list[Summary]] = {}
        for s in summaries:
            if s.module:
                named.setdefault(s.module, []).append(s)
        for name, same in named.items():
            if len(same) > 1:
                continue  # two scripts both named db.py: which one an import means is unknown
            s = same[0]
            self.modules[name] = s
            parts = s.module.split(".")
            for i in range(1, len(parts)):
                self.suffixes.setdefault(".".join(parts[i:]), []).append(s)
        self._resolve_pending()
        self.passed: dict[str, dict[tuple[str, str], Kind]] = {}
        self._resolve_passes()

    def module(self, name: str) -> Summary | None:
        found = self.modules.get(name)
        if found is not None:
            return found
        candidates = self.suffixes.get(name, ())
        return candidates[0] if len(candidates) == 1 else None

    def find(self, origin: str, hops: int = 0) -> tuple[Summary, str] | None:
        """The module and top-level function an absolute origin names, through re-exports."""
        if hops > _MAX_HOPS or "." not in origin:
            return None
        mod, _, name = origin.rpartition(".")
        s = self.module(mod)
        if s is None:
            return None
        if name in s.functions or name in s.classes or name in s.owned:
            return s, name
        nxt = s.aliases.get(name)
        if nxt is not None and nxt != origin:
            return self.find(nxt, hops + 1)
        for star in s.stars:
            hit = self.find(f"{star}.{name}", hops + 1)
            if hit is not None:
                return hit
        return None

    def _resolve_pending(self) -> None:
        for _ in range(_MAX_HOPS):
            changed = False
            for s in self.modules.values():
                for name, refs in list(s.pending.items()):
                    kind = self._kind_of_refs(refs)
                    if kind is not None:
                        s.factories[name] = Kind(kind.code, f"{name}()", kind.noun,
                                                 kind.with_closes, kind.driver, kind.slot)
                        del s.pending[name]
                        changed = True
            if not changed:
                return

    def _resolve_passes(self) -> None:
        """``run_with(get_conn)`` in one module makes ``factory`` of ``def run_with(factory)``
        in another a factory parameter."""
        self.pass_callees: set[str] = set()  # their names, for prefilter.names()
        for s in self.modules.values():
            for callee, where, args in s.passes:
                arg = next((h for h in map(self.find, args) if h is not None), None)
                kind = arg[0].factories.get(arg[1]) if arg is not None else None
                if kind is None:
                    continue
                self.pass_callees.update(c.rsplit(".", 1)[-1] for c in callee)
                target = next((h for h in map(self.find, callee) if h is not None), None)
                if target is None or target[1] not in target[0].functions:
                    continue
                params = target[0].params.get(target[1], [])
                name = where if isinstance(where, str) else (
                    params[where] if where < len(params) else None)
                if name is not None:
                    self.passed.setdefault(target[0].module, {})[(target[1], name)] = kind

    def _kind_of_refs(self, refs: list[tuple[tuple[str, ...], int]]) -> Kind | None:
        kind: Kind | None = None
        for origins, slot in refs:
            found = None
            for origin in origins:
                hit = self.find(origin)
                if hit is not None:
                    found = hit[0].factories.get(hit[1])
                    break
            if found is None or found.code == "PD202":
                return None
            if slot >= 0:
                if found.slot >= 0:
                    return None
                found = Kind(found.code, found.label, found.noun, found.with_closes,
                             found.driver, slot)
            kind = found
        return kind

    def externals(self, s: Summary) -> Externals:
        """What module ``s`` uses of the other modules, by its local spellings."""
        ext = Externals()
        for local, origin in s.aliases.items():
            if local in s.functions:
                continue
            hit = self.find(origin)
            if hit is not None:
                self._add(ext, local, *hit)
                continue
            target = self.module(origin)  # a module: `from . import db` / `import app.db as db`
            if target is not None and target is not s:
                for name in (*target.functions, *target.classes, *target.owned):
                    self._add(ext, f"{local}.{name}", target, name)
        for star in s.stars:
            target = self.module(star)
            if target is None or target is s:
                continue
            names = set(target.functions) | set(target.aliases) | set(target.classes) \
                | set(target.owned)
            for name in names:
                if name.startswith("_") or name in s.functions or name in s.aliases:
                    continue
                hit = self.find(f"{star}.{name}")
                if hit is not None:
                    self._add(ext, name, *hit)
        ext.params = dict(self.passed.get(s.module, {}))
        return ext

    @staticmethod
    def _add(ext: Externals, spelled: str, s: Summary, name: str) -> None:
        kind = s.factories.get(name)
        if kind is not None:
            ext.factories[spelled] = kind
        closed = s.closers.get(name)
        if closed:
            ext.closers[spelled] = closed
        if name in s.engines:
            ext.engines.add(spelled)
        methods = s.classes.get(name)
        if methods:
            ext.classes[spelled] = methods
        owned = s.owned.get(name)
        if owned:
            ext.owned[spelled] = owned
        if name in s.generators:
            ext.generators.add(spelled)
        elif kind is not None or closed or name in s.engines or methods or owned:
            pass
        else:
            ext.plain.add(spelled)
