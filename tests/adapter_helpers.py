"""Helpers shared by the pool-adapter tests: server arguments, lines, findings by site."""

from __future__ import annotations

import inspect
import os
import time
from typing import Any

import pooldoctor

PG_URL = os.environ.get("POOLDOCTOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MY_URL = os.environ.get("POOLDOCTOR_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test")
TAG = "pd-adapters-test"  # application_name of this suite's PostgreSQL connections


def _parts(url: str) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return {"host": u.host or "127.0.0.1", "port": u.port, "user": u.username,
            "password": u.password or "", "database": u.database}


def pg_args() -> dict[str, Any]:
    p = _parts(PG_URL)
    return {"host": p["host"], "port": p["port"] or 5432, "user": p["user"],
            "dbname": p["database"], "application_name": TAG}


def pg_dsn() -> str:
    a = pg_args()
    return " ".join(f"{k}={v}" for k, v in a.items())


def pg_uri() -> str:
    a = pg_args()
    return (f"postgresql://{a['user']}@{a['host']}:{a['port']}/{a['dbname']}"
            f"?application_name={TAG}")


def my_args() -> dict[str, Any]:
    p = _parts(MY_URL)
    return {"host": p["host"], "port": p["port"] or 3306, "user": p["user"],
            "password": p["password"], "database": p["database"]}


def here() -> int:
    """The caller's line number (write it on the line under test)."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno


def findings(code: str | None = None) -> list[pooldoctor.Finding]:
    return [f for f in pooldoctor.report().findings if code is None or f.code == code]


def wait_finding(code: str, line: int, deadline: float = 5.0) -> pooldoctor.Finding:
    """Poll until a finding ``code`` sited at ``line`` of this suite appears."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        for f in findings(code):
            if f.site is not None and f.site.line == line:
                return f
        time.sleep(0.01)
    raise AssertionError(f"no {code} at line {line} within {deadline} s: "
                         f"{[(f.code, f.site.short() if f.site else None) for f in findings()]}")


def adapter_holds(kind: str | None = None) -> list[dict[str, Any]]:
    return [h for h in pooldoctor.holds() if kind is None or h["kind"] == kind]
