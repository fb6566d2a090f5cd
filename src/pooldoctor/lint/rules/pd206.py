"""PD206: a ``scoped_session`` registry whose ``remove()`` is never called.

The registry keeps one session per thread (or per scope); without ``remove()`` at the end of a
request or thread, the session and the connection it holds outlive the work. The check is per
run: a ``remove`` referenced on the same name in any checked file counts (teardown hooks often
live in another module).
"""

from __future__ import annotations

import ast

from ..context import ModuleContext

CODE = "PD206"
SCOPED = frozenset({"sqlalchemy.orm.scoped_session", "sqlalchemy.orm.scoping.scoped_session",
                    "sqlalchemy.ext.asyncio.async_scoped_session"})


def check(ctx: ModuleContext) -> None:
    for cs in ctx.calls:
        call = cs.node
        if ctx.qualname(call.func) not in SCOPED:
            continue
        stmt = cs.stmt
        if not isinstance(stmt, ast.Assign) or stmt.value is not call:
            continue
        target = stmt.targets[0]
        if isinstance(target, ast.Name):
            name = target.id
        elif isinstance(target, ast.Attribute):
            name = target.attr
        else:
            continue
        if (name, "remove") in ctx.attr_refs or _self_remove(ctx, name):
            continue
        # the runner drops it when another checked file calls `name.remove()`
        ctx.report(CODE, call, f"scoped_session `{name}` is never removed: call "
                   f"{name}.remove() at the end of each request or thread (a teardown hook)",
                   cs.func.name if cs.func else None, subject=name)


def _self_remove(ctx: ModuleContext, name: str) -> bool:
    """``self.Session.remove()`` / ``app.db_session.remove`` spelled through an attribute."""
    for node in ast.walk(ctx.tree):
        if isinstance(node, ast.Attribute) and node.attr == "remove" and isinstance(
                node.value, ast.Attribute) and node.value.attr == name:
            return True
    return False
