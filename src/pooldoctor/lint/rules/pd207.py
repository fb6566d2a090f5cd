"""PD207: ``max_overflow=-1`` (an unbounded pool)."""

from __future__ import annotations

import ast

from ..context import ModuleContext

CODE = "PD207"
MESSAGE = ("max_overflow=-1 lets the pool open connections without limit; give it a bound the "
           "server can take")


def _is_minus_one(node: ast.AST | None) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return isinstance(node.operand, ast.Constant) and node.operand.value == 1
    if isinstance(node, ast.Constant):
        return node.value == -1 or node.value == "-1"
    return False


def check(ctx: ModuleContext) -> None:
    for cs in ctx.calls:
        for k in cs.node.keywords:
            if k.arg == "max_overflow" and _is_minus_one(k.value):
                ctx.report(CODE, k.value, MESSAGE, cs.func.name if cs.func else None)
    for d in ctx.dicts:
        for key, value in zip(d.keys, d.values):
            if isinstance(key, ast.Constant) and isinstance(key.value, str) \
                    and key.value.endswith("max_overflow") and _is_minus_one(value):
                ctx.report(CODE, value, MESSAGE)
