"""Connections kept on ``self`` through an instance kept on ``self``.

::

    class Users:
        def __init__(self):
            self.d_b = Database(params)
            self.con, self.cur = self.d_b.connect()   # Database.connect opens and returns one

``Database.connect`` is a *resource method* when every value it returns is a fresh resource
(a factory, ``values.class_methods``) or a resource it also keeps on ``self`` and returns
(``self.conn = connect(...); return self.conn, self.cur``: an *owning* method — the instance
owns it, and whoever holds the instance must close one or the other). The class that stores
the result on ``self`` must close it: ``self.con.close()`` or a lifecycle method that touches it
(``_resources._class_closes``), a call of a closing method of the holder
(``self.d_b.close_conn()``), or ``self.con`` handed to a function that closes it
(``Helper.close_con(self.con)``).

Owning methods are only followed here, into attributes: a local ``db = Database(); conn, cur =
db.connect()`` stays the object's business (``db.close_conn()`` closes it).
"""

from __future__ import annotations

import ast

from .context import CallSite, FuncNode, ModuleContext, walk_shallow
from .issues import Kind
from .resources import _factories, classify

_CLOSING_PREFIXES = ("close", "disconnect", "release", "dispose", "shutdown", "teardown",
                     "cleanup", "stop", "quit", "terminate", "finish", "__exit__",
                     "__aexit__", "__del__")


def _closing_name(name: str) -> bool:
    return name.lower().lstrip("_").startswith(_CLOSING_PREFIXES) or name in (
        "__exit__", "__aexit__", "__del__")


def owned_methods(ctx: ModuleContext) -> dict[str, dict[str, Kind]]:
    """``class -> method -> kind`` for the public methods that open a resource, keep it on
    ``self`` and return it (alone or as an item of a tuple), labelled ``Class.method()``. A
    private method (``Connection._revalidate_connection``) is the class's own business: other
    classes do not call it, and following it would make every module that imports the class
    be checked a second time."""
    cached = ctx.cache.get("owned_methods")
    if cached is not None:
        return cached  # type: ignore[return-value]
    out: dict[str, dict[str, Kind]] = {}
    ctx.cache["owned_methods"] = out
    # only methods with a call of interest stored on self (the indexer's calls): no body walk
    # for the getters and the plain methods
    seen: set[int] = set()
    methods: set[int] | None = None
    for cs in ctx.calls:
        fn, cls, stmt = cs.func, cs.cls, cs.stmt
        if fn is None or cls is None or id(fn) in seen or fn.name.startswith("_") \
                or not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
            continue
        t = stmt.targets[0]
        if not (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                and t.value.id == "self"):
            continue
        seen.add(id(fn))
        if methods is None:
            methods = {id(item) for c in ctx.tree.body if isinstance(c, ast.ClassDef)
                       for item in c.body}
        if id(fn) not in methods:
            continue  # a nested function or class
        kind = _owned_kind(ctx, fn, cls)
        if kind is not None:
            out.setdefault(cls.name, {})[fn.name] = kind
    return out


def _owned_kind(ctx: ModuleContext, fn: FuncNode, cls: ast.ClassDef) -> Kind | None:
    returns = ctx.returns.get(id(fn))
    if not returns or not all(_returns_self_attr(r.value) for r in returns):
        return None  # the cheap refusal first: no body walk for most methods
    kept: dict[str, Kind] = {}
    for node in walk_shallow(fn.body):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            t = node.targets[0]
            value = node.value.value if isinstance(node.value, ast.Await) else node.value
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) \
                    and t.value.id == "self" and isinstance(value, ast.Call):
                k = classify(ctx, value, fn, cls, factories=True)
                if k is not None and k.code != "PD202" and k.slot < 0:
                    kept[t.attr] = k
    if not kept:
        return None
    found: Kind | None = None
    for ret in returns:
        if ret.value is None or (isinstance(ret.value, ast.Constant) and ret.value.value is None):
            continue
        value = ret.value
        items = value.elts if isinstance(value, ast.Tuple) else [value]
        hit = None
        for slot, item in enumerate(items):
            if isinstance(item, ast.Attribute) and isinstance(item.value, ast.Name) \
                    and item.value.id == "self" and item.attr in kept:
                k = kept[item.attr]
                hit = k.replace(slot=slot) if isinstance(value, ast.Tuple) else k
                break
        if hit is None:
            return None
        found = hit
    if found is None:
        return None
    return Kind(found.code, f"{cls.name}.{fn.name}()", found.noun, found.with_closes,
                found.driver, found.slot)


def _returns_self_attr(value: ast.expr | None) -> bool:
    """``return self.conn``, ``return self.conn, self.cur`` or ``return None``."""
    if value is None or (isinstance(value, ast.Constant) and value.value is None):
        return True
    items = value.elts if isinstance(value, ast.Tuple) else [value]
    return any(isinstance(i, ast.Attribute) and isinstance(i.value, ast.Name)
               and i.value.id == "self" for i in items)


def has_resource_methods(ctx: ModuleContext) -> bool:
    """Cheap test: does any class of the module, or of the run, open resources in a method?"""
    ext = ctx.external
    if ext is not None and (ext.classes or ext.owned):
        return True
    return bool(owned_methods(ctx)) or any(cls for cls, _ in _factories(ctx))


def _class_resource_methods(ctx: ModuleContext, spelled: str) -> dict[str, Kind] | None:
    """The resource methods (fresh or owning) of the class a call spelled ``spelled`` makes."""
    from .values import class_methods

    if "." not in spelled:
        local = {**class_methods(ctx, _factories(ctx)).get(spelled, {}),
                 **owned_methods(ctx).get(spelled, {})}
        if local:
            return local
    ext = ctx.external
    if ext is not None:
        found = {**ext.classes.get(spelled, {}), **ext.owned.get(spelled, {})}
        return found or None
    return None


def _method_names(ctx: ModuleContext) -> set[str]:
    """The names of every resource method of this module's classes and of the run's."""
    from .values import class_methods

    cached = ctx.cache.get("resource_method_names")
    if cached is None:
        names: set[str] = set()
        ext = ctx.external
        for table in (class_methods(ctx, _factories(ctx)), owned_methods(ctx),
                      ext.classes if ext is not None else {},
                      ext.owned if ext is not None else {}):
            for methods in table.values():
                names.update(methods)
        ctx.cache["resource_method_names"] = cached = names
    return cached  # type: ignore[return-value]


def _holder_class(ctx: ModuleContext, cls: ast.ClassDef, holder: str) -> str | None:
    """``Database`` of ``self.d_b = Database(...)`` in any method of ``cls``."""
    for fn in cls.body:
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in walk_shallow(fn.body):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                    and isinstance(node.value, ast.Call):
                t = node.targets[0]
                if isinstance(t, ast.Attribute) and t.attr == holder \
                        and isinstance(t.value, ast.Name) and t.value.id == "self":
                    return ctx.dotted(node.value.func)
    return None


def held_call(ctx: ModuleContext, cs: CallSite) -> tuple[Kind, str, list[str]] | None:
    """For ``self.a[, self.b] = self.holder.method()`` where ``method`` is a resource method of
    the class ``self.holder`` is an instance of: ``(kind, holder, attributes at the slot)``."""
    call, stmt, cls = cs.node, cs.stmt, cs.cls
    f = call.func
    if cls is None or not isinstance(stmt, ast.Assign) or stmt.value is not call \
            or len(stmt.targets) != 1 or not isinstance(f, ast.Attribute) \
            or not isinstance(f.value, ast.Attribute) or not isinstance(f.value.value, ast.Name) \
            or f.value.value.id != "self":
        return None
    if f.attr not in _method_names(ctx):
        return None  # the cheap refusal first: no walk of the class for most calls
    holder = f.value.attr
    spelled = _holder_class(ctx, cls, holder)
    if not spelled:
        return None
    methods = _class_resource_methods(ctx, spelled)
    kind = methods.get(f.attr) if methods else None
    if kind is None:
        return None
    target = stmt.targets[0]
    if kind.slot >= 0:
        if not isinstance(target, (ast.Tuple, ast.List)) or len(target.elts) <= kind.slot:
            return None
        target = target.elts[kind.slot]
    if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
            and target.value.id == "self"):
        return None
    return kind, holder, [target.attr]


def holder_closed(cls: ast.ClassDef, holder: str, attr: str) -> bool:
    """Does a method of ``cls`` close the holder (``self.d_b.close_conn()``), touch it in a
    lifecycle method, or hand ``self.<attr>`` to a function that closes its argument?"""
    for fn in cls.body:
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        lifecycle = _closing_name(fn.name)
        for node in walk_shallow(fn.body):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == holder and isinstance(node.value.value, ast.Name) \
                    and node.value.value.id == "self" and _closing_name(node.attr):
                return True  # self.d_b.close_conn()
            if lifecycle and isinstance(node, ast.Attribute) and node.attr == holder \
                    and isinstance(node.value, ast.Name) and node.value.id == "self":
                return True
            if isinstance(node, ast.Call) and _closing_name(_callee_name(node.func)) and any(
                    isinstance(a, ast.Attribute) and a.attr == attr
                    and isinstance(a.value, ast.Name) and a.value.id == "self"
                    for a in node.args):
                return True  # Helper.close_con(self.con)
    return False


def _callee_name(f: ast.expr) -> str:
    if isinstance(f, ast.Attribute):
        return f.attr
    return f.id if isinstance(f, ast.Name) else ""
