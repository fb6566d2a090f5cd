"""PD202: cursor not closed, on a connection that outlives the function."""

from __future__ import annotations

from ..context import ModuleContext
from ._resources import issues_for

CODE = "PD202"


def check(ctx: ModuleContext) -> None:
    ctx.issues.extend(issues_for(ctx, CODE))
