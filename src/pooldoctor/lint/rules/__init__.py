"""The rules, one module per code; each has ``CODE`` and ``check(ctx)``."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from ..context import ModuleContext

RULE_CODES: tuple[str, ...] = tuple(f"PD2{n:02d}" for n in range(1, 12))

Check = Callable[[ModuleContext], None]


def load(codes: tuple[str, ...] | list[str] | frozenset[str] = RULE_CODES) -> list[Check]:
    """The check functions of ``codes``, in code order."""
    checks: list[Check] = []
    for code in sorted(codes):
        module = import_module(f"{__name__}.{code.lower()}")
        checks.append(module.check)
    return checks
