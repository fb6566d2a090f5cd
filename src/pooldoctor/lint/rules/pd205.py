"""PD205: ``lru_cache``/``cache`` on a function that returns a Session or a Connection.

The cached object is shared by every caller and never closed; one session or connection ends up
used from several requests or threads. Caching an engine or a sessionmaker is fine.
"""

from __future__ import annotations

import ast

from ..context import ModuleContext, last_name, walk_shallow
from ..resources import classify

CODE = "PD205"
_CACHES = frozenset({"lru_cache", "cache", "cached", "alru_cache"})


def check(ctx: ModuleContext) -> None:
    for func, cls in ctx.functions:
        decos = [d for d in func.decorator_list if last_name(d) in _CACHES]
        if not decos:
            continue
        assigned: dict[str, str] = {}
        returned: str | None = None
        for node in walk_shallow(func.body):
            value = getattr(node, "value", None)
            if isinstance(value, ast.Await):
                value = value.value
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
                    node.targets[0], ast.Name) and isinstance(value, ast.Call):
                kind = classify(ctx, value, func, cls)
                if kind is not None and kind.code != "PD202":
                    assigned[node.targets[0].id] = f"{kind.noun} from {kind.label}"
            elif isinstance(node, ast.Return) and value is not None:
                if isinstance(value, ast.Call):
                    kind = classify(ctx, value, func, cls)
                    if kind is not None and kind.code != "PD202":
                        returned = f"{kind.noun} from {kind.label}"
                elif isinstance(value, ast.Name) and value.id in assigned:
                    returned = assigned[value.id]
        if returned:
            ctx.report(CODE, decos[0], f"@{last_name(decos[0])} on {func.name}() caches a "
                       f"{returned}: every caller shares one that is never closed; cache the "
                       "engine or sessionmaker instead", func.name)
