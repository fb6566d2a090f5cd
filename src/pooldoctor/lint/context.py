"""One parsed module, indexed once for every rule: imports, functions, calls, strings.

The index is built by a single walk over the tree; rules read it and never walk the whole
tree again, which keeps the checker fast on large source trees.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from ..record import Record
from .index import Externals
from .issues import Issue

FuncNode = ast.FunctionDef | ast.AsyncFunctionDef
LOOPS = (ast.For, ast.AsyncFor, ast.While)


class CallSite(Record):
    """A call of interest and where it sits."""

    __slots__ = _fields = ("node", "stmt", "func", "cls", "in_loop")

    def __init__(self, node: ast.Call, stmt: ast.stmt, func: FuncNode | None,
                 cls: ast.ClassDef | None, in_loop: bool) -> None:
        self.node = node
        self.stmt = stmt  # the innermost statement holding the call
        self.func = func  # the innermost function holding it (None: module or class body)
        self.cls = cls  # the class whose method holds it
        self.in_loop = in_loop  # inside a for/while of the same function (or of the module)


class ModuleContext(Record):
    """Everything the rules need to know about one module (the index fills it)."""

    __slots__ = _fields = (
        "path", "tree", "lines", "aliases", "relative", "calls", "functions", "strings", "dicts",
        "module_names", "attr_refs", "withs", "issues", "cache", "stars", "returns", "yielding",
        "closes", "value_refs", "passing", "external")

    def __init__(self, path: str, tree: ast.Module, lines: list[str],
                 external: Externals | None = None) -> None:
        self.path = path
        self.tree = tree
        self.lines = lines
        self.aliases: dict[str, str] = {}  # local name -> dotted origin
        self.relative: set[str] = set()  # names imported from project modules
        self.calls: list[CallSite] = []
        self.functions: list[tuple[FuncNode, ast.ClassDef | None]] = []
        self.strings: list[ast.Constant | ast.JoinedStr] = []
        self.dicts: list[ast.Dict] = []
        self.module_names: dict[str, ast.expr] = {}  # module-level x = expr
        self.attr_refs: set[tuple[str, str]] = set()  # (name, attr) of Name.attr
        # with statements inside functions
        self.withs: list[tuple[ast.With | ast.AsyncWith, FuncNode, ast.ClassDef | None]] = []
        self.issues: list[Issue] = []
        self.cache: dict[str, object] = {}
        self.stars: list[str] = []  # modules imported with `*` (as written)
        self.returns: dict[int, list[ast.Return]] = {}  # id(func) -> returns
        self.yielding: set[int] = set()  # id() of the generator functions
        self.closes: list[tuple[FuncNode, str]] = []  # name.close() in func
        # id(func) -> local names bound to a name or attribute (`factory = get_conn`), first
        # binding
        self.value_refs: dict[int, dict[str, ast.expr]] = {}
        # calls that pass a module-level or imported name as an argument: `run_with(get_conn)`
        self.passing: list[CallSite] = []
        self.external = external  # what other modules of the run offer (project.py)

    def __reduce__(self) -> tuple[type[Record], tuple[object, ...]]:
        raise TypeError("a ModuleContext stays in the process that built it")

    # ------------------------------------------------------------------ names

    def qualname(self, node: ast.expr) -> str | None:
        """The dotted origin of ``node`` through imports (``pm.connect`` -> ``pymysql.connect``)."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        origin = self.aliases.get(node.id)
        if origin is None:
            return None
        parts.append(origin)
        return ".".join(reversed(parts))

    def dotted(self, node: ast.expr) -> str | None:
        """The source spelling of a dotted name (``self.engine.connect``), or None."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name):
            parts.append(node.id)
            return ".".join(reversed(parts))
        if isinstance(node, ast.Call):
            inner = self.dotted(node.func)
            if inner is not None:
                parts.append(inner + "()")
                return ".".join(reversed(parts))
        return None

    def column(self, node: ast.AST) -> int:
        """1-based character column of ``node`` (ast gives a 0-based UTF-8 byte offset)."""
        line_no = getattr(node, "lineno", 1)
        offset = getattr(node, "col_offset", 0)
        if 0 < line_no <= len(self.lines):
            text = self.lines[line_no - 1]
            if not text.isascii():
                return len(text.encode("utf-8")[:offset].decode("utf-8", "replace")) + 1
        return offset + 1

    def report(self, code: str, node: ast.AST, message: str,
               function: str | None = None, subject: str | None = None) -> None:
        self.issues.append(Issue(code, getattr(node, "lineno", 1), self.column(node), message,
                                 function, subject))


# ---------------------------------------------------------------------------- building

_CLOSE_NAMES = frozenset({"close", "aclose", "dispose", "terminate"})  # flow.CLOSERS
# Calls whose callee name (last part) is one of these are kept in the index.
INTERESTING = frozenset({
    "connect", "Connect", "connection", "cursor", "raw_connection", "Session", "AsyncSession",
    "sessionmaker", "async_sessionmaker", "scoped_session", "create_engine",
    "create_async_engine", "engine_from_config", "async_engine_from_config", "next", "anext",
    "sleep", "get", "post", "put", "patch", "delete", "head", "options", "request", "urlopen",
    "run", "call", "check_call", "check_output", "Popen", "input", "system", "create", "Client",
    "SessionLocal", "QueuePool", "AsyncAdaptedQueuePool",
})


def build(path: str, tree: ast.Module, lines: list[str],
          external: Externals | None = None) -> ModuleContext:
    """Index ``tree`` in one walk."""
    ctx = ModuleContext(path, tree, lines, external=external)
    _Indexer(ctx).run()
    return ctx


class _Indexer:
    def __init__(self, ctx: ModuleContext) -> None:
        self.ctx = ctx
        self.extra_names: set[str] = set()
        # per function: parameters and locals bound to a name (`factory = get_conn`): their
        # calls may open a resource (values.py)
        self.values: dict[int, set[str]] = {}

    def run(self) -> None:
        ctx = self.ctx
        for stmt in ctx.tree.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(
                    stmt.targets[0], ast.Name):
                ctx.module_names[stmt.targets[0].id] = stmt.value
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) \
                    and stmt.value is not None:
                ctx.module_names[stmt.target.id] = stmt.value
        # local factories and module-level names are interesting callees too
        for stmt in ctx.tree.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.extra_names.add(stmt.name)
            elif isinstance(stmt, ast.ClassDef):
                for sub in stmt.body:
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        self.extra_names.add(sub.name)
        self.extra_names.update(ctx.module_names)
        if any("sessionmaker" in line for line in ctx.lines):
            self.extra_names.update(_sessionmaker_attrs(ctx.tree))
        if ctx.external:
            self.extra_names.update(ctx.external.names())
        self._block(ctx.tree.body, None, None, False)

    def _block(self, stmts: list[ast.stmt], func: FuncNode | None, cls: ast.ClassDef | None,
               in_loop: bool) -> None:
        for stmt in stmts:
            self._stmt(stmt, func, cls, in_loop)

    def _stmt(self, stmt: ast.stmt, func: FuncNode | None, cls: ast.ClassDef | None,
              in_loop: bool) -> None:
        ctx = self.ctx
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            ctx.functions.append((stmt, cls if func is None else None))
            a = stmt.args
            self.values[id(stmt)] = {x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
            for deco in stmt.decorator_list:
                self._expr(deco, stmt, func, cls, in_loop)
            for default in (*stmt.args.defaults, *stmt.args.kw_defaults):
                if default is not None:
                    self._expr(default, stmt, func, cls, in_loop)
            self._block(stmt.body, stmt, cls if func is None else None, False)
            return
        if isinstance(stmt, ast.ClassDef):
            for deco in stmt.decorator_list:
                self._expr(deco, stmt, func, cls, in_loop)
            self._block(stmt.body, None, stmt, in_loop)
            return
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    ctx.aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    ctx.aliases[top] = top
            return
        if isinstance(stmt, ast.ImportFrom):
            mod = stmt.module or ""
            for alias in stmt.names:
                local = alias.asname or alias.name
                if local == "*":
                    ctx.stars.append("." * stmt.level + mod)
                    continue
                if stmt.level:
                    ctx.relative.add(local)
                    ctx.aliases[local] = "." * stmt.level + (mod + "." if mod else "") + alias.name
                else:
                    ctx.aliases[local] = f"{mod}.{alias.name}"
            return
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) \
                and isinstance(stmt.value.value, str):
            return  # a docstring or a bare string: not code
        if func is not None and isinstance(stmt, (ast.With, ast.AsyncWith)):
            ctx.withs.append((stmt, func, cls))
        elif func is not None and type(stmt) is ast.Return:
            ctx.returns.setdefault(id(func), []).append(stmt)
        elif func is not None and type(stmt) is ast.Assign and len(stmt.targets) == 1 \
                and type(stmt.targets[0]) is ast.Name \
                and type(stmt.value) in (ast.Name, ast.Attribute):
            name = stmt.targets[0].id
            self.values[id(func)].add(name)
            ctx.value_refs.setdefault(id(func), {}).setdefault(name, stmt.value)
        loop_here = in_loop or isinstance(stmt, LOOPS)
        fields = _STMT_FIELDS.get(type(stmt))
        if fields is None:
            fields = _STMT_FIELDS[type(stmt)] = tuple(
                f for f in type(stmt)._fields if f not in _SCALAR_FIELDS and f not in _BLOCKS)
        for name in fields:
            self._field(getattr(stmt, name, None), stmt, func, cls, in_loop)
        for name in ("body", "orelse", "finalbody"):
            sub = getattr(stmt, name, None)
            if sub:
                inner_loop = loop_here if name == "body" else in_loop
                if isinstance(stmt, LOOPS) and name == "orelse":
                    inner_loop = in_loop
                self._block(sub, func, cls, inner_loop)
        for handler in getattr(stmt, "handlers", ()) or ():
            if handler.type is not None:
                self._expr(handler.type, stmt, func, cls, in_loop)
            self._block(handler.body, func, cls, in_loop)
        for case in getattr(stmt, "cases", ()) or ():
            if case.guard is not None:
                self._expr(case.guard, stmt, func, cls, in_loop)
            self._block(case.body, func, cls, in_loop)

    def _field(self, value: object, stmt: ast.stmt, func: FuncNode | None,
               cls: ast.ClassDef | None, in_loop: bool) -> None:
        if isinstance(value, ast.expr):
            self._expr(value, stmt, func, cls, in_loop)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, ast.expr):
                    self._expr(item, stmt, func, cls, in_loop)
                elif isinstance(item, ast.withitem):
                    self._expr(item.context_expr, stmt, func, cls, in_loop)
                elif isinstance(item, ast.keyword):
                    self._expr(item.value, stmt, func, cls, in_loop)

    def _expr(self, root: ast.expr, stmt: ast.stmt, func: FuncNode | None,
              cls: ast.ClassDef | None, in_loop: bool) -> None:
        ctx = self.ctx
        interesting = INTERESTING
        extra = self.extra_names
        aliases = ctx.aliases
        values = self.values[id(func)] if func is not None else ()
        fields_of = _FIELDS
        name_type = ast.Name
        stack: list[ast.AST] = [root]
        while stack:
            node = stack.pop()
            t = type(node)
            if t is name_type or node is None:  # a Name has no child; kw_defaults hold None
                continue
            if t is ast.Call:
                f = node.func  # type: ignore[attr-defined]
                tf = type(f)
                name = f.attr if tf is ast.Attribute else (f.id if tf is ast.Name else None)
                if name in _CLOSE_NAMES and tf is ast.Attribute and func is not None \
                        and type(f.value) is ast.Name:
                    ctx.closes.append((func, f.value.id))
                if tf is ast.Call or (name is not None and (
                        name in interesting or name in extra
                        or (tf is ast.Name and (name in aliases or name in values)))):
                    ctx.calls.append(CallSite(node, stmt, func, cls, in_loop))  # type: ignore
                for a in node.args:  # type: ignore[attr-defined]
                    if type(a) is ast.Name and (a.id in extra or a.id in aliases):
                        ctx.passing.append(CallSite(node, stmt, func, cls, in_loop))  # type: ignore
                        break
            elif t is ast.Constant:
                if type(node.value) is str and "://" in node.value:  # type: ignore[attr-defined]
                    ctx.strings.append(node)  # type: ignore[arg-type]
                continue
            elif t is ast.JoinedStr:
                ctx.strings.append(node)  # type: ignore[arg-type]
                stack.extend(v for v in node.values  # type: ignore[attr-defined]
                             if type(v) is ast.FormattedValue)
                continue
            elif (t is ast.Yield or t is ast.YieldFrom) and func is not None:
                ctx.yielding.add(id(func))
            elif t is ast.Dict:
                ctx.dicts.append(node)  # type: ignore[arg-type]
            elif t is ast.Attribute:
                v = node.value  # type: ignore[attr-defined]
                if type(v) is ast.Name:
                    ctx.attr_refs.add((v.id, node.attr))  # type: ignore[attr-defined]
                    continue  # its only child is that Name
            fields = fields_of.get(t)
            if fields is None:
                fields = _fields_of(t)
            for f in fields:  # children(node), inlined: this loop sees every expression node
                v = getattr(node, f)
                if type(v) is list:
                    stack.extend(v)
                elif v is not None:
                    stack.append(v)


# fields that never hold a node worth visiting: names, operators, expression contexts
_SCALAR_FIELDS = frozenset({"ctx", "id", "attr", "arg", "name", "names", "module", "level",
                            "kind", "type_comment", "op", "ops", "conversion", "is_async",
                            "lineno", "simple"})
_FIELDS: dict[type, tuple[str, ...]] = {}
_BLOCKS = frozenset({"body", "orelse", "finalbody", "handlers", "cases"})
_STMT_FIELDS: dict[type, tuple[str, ...]] = {}  # a statement's fields other than its blocks


def _fields_of(t: type) -> tuple[str, ...]:
    fields = _FIELDS[t] = tuple(f for f in t._fields if f not in _SCALAR_FIELDS)  # type: ignore
    return fields


def children(node: ast.AST) -> list[ast.AST]:
    """The child nodes of ``node``, like ``ast.iter_child_nodes`` without the expression
    contexts and operators (Load, Store, Add...), and faster."""
    t = type(node)
    fields = _FIELDS.get(t)
    if fields is None:
        fields = _fields_of(t)
    out: list[ast.AST] = []
    for f in fields:
        v = getattr(node, f, None)
        if v is None:
            continue
        if type(v) is list:
            out.extend(x for x in v if isinstance(x, ast.AST))
        elif isinstance(v, ast.AST):
            out.append(v)
    return out


def _sessionmaker_attrs(tree: ast.Module) -> set[str]:
    """``X`` of ``self.X = sessionmaker(...)`` in classes: its calls make sessions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                and last_name(node.value) in ("sessionmaker", "async_sessionmaker"):
            for t in node.targets:
                if isinstance(t, ast.Attribute):
                    found.add(t.attr)
    return found


def is_test_module(path: str) -> bool:
    """``test_*.py``, ``*_test.py`` or ``conftest.py`` (pytest's and unittest's names)."""
    base = path.replace("\\", "/").rsplit("/", 1)[-1]
    return base.startswith("test_") or base.endswith("_test.py") or base == "conftest.py"


def walk_shallow(stmts: list[ast.stmt]) -> Iterator[ast.AST]:
    """Every node under ``stmts`` without entering nested functions, classes or lambdas."""
    stack: list[ast.AST] = list(reversed(stmts))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        for child in children(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                                  ast.Lambda)):
                continue
            stack.append(child)


def last_name(node: ast.expr) -> str:
    """The last name of a name, attribute or call: ``functools.lru_cache(maxsize=1)`` ->
    ``lru_cache``, ``conn.cursor()`` -> ``cursor``; "" for anything else."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def names_in(node: ast.AST) -> set[str]:
    """Names read anywhere under ``node``."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
