"""Naming a guarded process's connections for the server (attribution, see server watch).

PostgreSQL drivers get ``application_name``, PyMySQL ``program_name``; a name the user chose is
never overridden. The tag is ``pooldoctor:<pid>:<program>`` cut to the server's limit, so the
server watch can tie a server connection to the guarded process that opened it.
"""

from __future__ import annotations

import os
import sys
from typing import Any

PG_DRIVERS = {"psycopg", "psycopg2", "psycopg2cffi", "asyncpg", "pg8000", "psycopg_async"}
MYSQL_PROGRAM_NAME = {"pymysql", "aiomysql"}
_PG_LIMIT = 63  # bytes (NAMEDATALEN - 1)


_tags: dict[int, str] = {}


def process_tag(pid: int | None = None) -> str:
    """``pooldoctor:<pid>:<program>``, cut to PostgreSQL's 63 bytes (computed once per pid)."""
    pid = pid or os.getpid()
    tag = _tags.get(pid)
    if tag is None:
        prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
        tag = f"pooldoctor:{pid}:{prog}".encode()[:_PG_LIMIT].decode(errors="ignore")
        _tags[pid] = tag
    return tag


def parse_tag(name: str | None) -> int | None:
    """The pid in a tag made by :func:`process_tag`, or None."""
    if not name or not name.startswith("pooldoctor:"):
        return None
    parts = name.split(":", 2)
    try:
        return int(parts[1])
    except (IndexError, ValueError):
        return None


def tag_connect_params(driver: str, params: dict[str, Any]) -> None:
    """Add the process tag to a driver's connect keyword arguments, unless one is set."""
    if os.environ.get("POOLDOCTOR_NO_TAG"):
        return
    if driver in PG_DRIVERS:
        if "application_name" in params:
            return
        if driver.startswith("psycopg") and os.environ.get("PGAPPNAME"):
            return  # libpq uses the user's PGAPPNAME when no application_name is given
        dsn = params.get("dsn") or params.get("conninfo") or ""
        if isinstance(dsn, str) and "application_name" in dsn:
            return
        if driver == "asyncpg":
            settings = dict(params.get("server_settings") or {})
            if "application_name" not in settings:
                settings["application_name"] = process_tag()
                params["server_settings"] = settings
            return
        params["application_name"] = process_tag()
    elif driver in MYSQL_PROGRAM_NAME:
        params.setdefault("program_name", process_tag())
