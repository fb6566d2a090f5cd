"""PD208: a MySQL/MariaDB engine without ``pool_recycle`` or ``pool_pre_ping``.

The server closes connections idle longer than ``wait_timeout`` (8 hours by default, often much
less behind proxies); the pool hands them out anyway and the first query fails with
"MySQL server has gone away".
"""

from __future__ import annotations

import ast

from ..context import FuncNode, ModuleContext
from ..resources import is_engine_factory, local_bindings
from ._util import has_splat, kwarg, string_value

CODE = "PD208"
_MYSQL = ("mysql", "mariadb")
_NO_POOL = frozenset({"NullPool", "StaticPool", "AssertionPool"})


def _url_text(ctx: ModuleContext, node: ast.expr | None, func: FuncNode | None,
              depth: int = 0) -> str | None:
    """The URL an expression stands for, when it can be seen in this module."""
    if node is None or depth > 3:
        return None
    text = string_value(node)
    if text is not None:
        return text
    if isinstance(node, ast.Name):
        value = local_bindings(ctx, func).get(node.id) or ctx.module_names.get(node.id)
        return _url_text(ctx, value, func, depth + 1)
    if isinstance(node, ast.Call):
        name = ctx.dotted(node.func) or ""
        if name.endswith(("environ.get", "getenv")) and len(node.args) >= 2:
            return _url_text(ctx, node.args[1], func, depth + 1)  # the default
        if name.endswith(("URL.create", "make_url")) and node.args:
            text = _url_text(ctx, node.args[0], func, depth + 1)
            if name.endswith("URL.create") and text is not None:
                return text + "://"
            return text
    return None


def check(ctx: ModuleContext) -> None:
    for cs in ctx.calls:
        call = cs.node
        if not is_engine_factory(ctx, call.func):
            continue
        name = ctx.qualname(call.func) or ""
        if name.endswith("engine_from_config"):
            continue
        url = call.args[0] if call.args else (kwarg(call, "url").value  # type: ignore[union-attr]
                                              if kwarg(call, "url") else None)
        text = _url_text(ctx, url, cs.func)
        if text is None or not text.lower().startswith(_MYSQL):
            continue
        if "pool_recycle=" in text or "pool_pre_ping=" in text:
            continue
        if _set(kwarg(call, "pool_recycle"), recycle=True) or _set(
                kwarg(call, "pool_pre_ping"), recycle=False) or has_splat(call):
            continue
        poolclass = kwarg(call, "poolclass")
        if poolclass is not None and (ctx.dotted(poolclass.value) or "").rsplit(
                ".", 1)[-1] in _NO_POOL:
            continue
        ctx.report(CODE, call, "MySQL/MariaDB engine without pool_recycle or pool_pre_ping: the "
                   "server drops connections idle longer than wait_timeout and the pool hands "
                   "them out dead; set pool_recycle below wait_timeout or pool_pre_ping=True",
                   cs.func.name if cs.func else None)


def _set(k: ast.keyword | None, recycle: bool) -> bool:
    """Does the keyword turn the protection on? ``pool_recycle=-1`` (SQLAlchemy's default) and
    ``pool_pre_ping=False`` do not; a value that is not a literal is given the benefit."""
    if k is None:
        return False
    v = k.value
    if isinstance(v, ast.UnaryOp) and isinstance(v.op, ast.USub) and isinstance(
            v.operand, ast.Constant):
        return not recycle
    if isinstance(v, ast.Constant):
        if recycle:
            return not (isinstance(v.value, (int, float)) and v.value < 0) and v.value is not None
        return bool(v.value)
    return True
