"""PD203: SQLAlchemy Connection or Session not closed on every path."""

from __future__ import annotations

from ..context import ModuleContext
from ._resources import issues_for

CODE = "PD203"


def check(ctx: ModuleContext) -> None:
    ctx.issues.extend(issues_for(ctx, CODE))
