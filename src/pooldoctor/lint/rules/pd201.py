"""PD201: a DB-API connection (pymysql, psycopg, psycopg2, sqlite3...) not closed on every path."""

from __future__ import annotations

from ..context import ModuleContext
from ._resources import issues_for

CODE = "PD201"


def check(ctx: ModuleContext) -> None:
    ctx.issues.extend(issues_for(ctx, CODE))
