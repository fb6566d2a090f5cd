"""Naming a guarded process's connections for the server (attribution, see server watch).

PostgreSQL drivers get ``application_name``, PyMySQL ``program_name``; a name the user chose is
never overridden. The tag is ``pooldoctor:<pid>@<host>:<program>`` within PostgreSQL's 63 bytes
(the program is cut first, then the host name), so the server watch can tie a server connection
to the host and the process that opened it, from any host. Tags of older versions
(``pooldoctor:<pid>:<program>``) are still read. PyMySQL connections also get the connection
attributes ``pd_host`` and ``pd_pid``.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

PG_DRIVERS = {"psycopg", "psycopg2", "psycopg2cffi", "asyncpg", "pg8000", "psycopg_async"}
MYSQL_PROGRAM_NAME = {"pymysql", "aiomysql"}
_PG_LIMIT = 63  # bytes (NAMEDATALEN - 1)


_HOST_MAX = 32  # bytes of the host name kept in the tag (the pid and some program stay)
PREFIX = "pooldoctor:"

_tags: dict[tuple[int, str], str] = {}


def hostname() -> str:
    """This machine's (or container's, or UTS namespace's) host name, read each time: a
    forked child in a new namespace has its own."""
    try:
        return socket.gethostname() or "-"
    except OSError:
        return "-"


def _cut(text: str, limit: int) -> str:
    return text.encode()[:max(limit, 0)].decode(errors="ignore")


def process_tag(pid: int | None = None, host: str | None = None) -> str:
    """``pooldoctor:<pid>@<host>:<program>`` within PostgreSQL's 63 bytes (cached)."""
    pid = pid or os.getpid()
    host = hostname() if host is None else host
    tag = _tags.get((pid, host))
    if tag is None:
        prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
        short = _cut(host.replace(":", "_").replace("@", "_"), _HOST_MAX)
        head = f"{PREFIX}{pid}@{short}:"
        tag = head + _cut(prog, _PG_LIMIT - len(head.encode()))
        _tags[(pid, host)] = tag
    return tag


def parse_process_tag(name: str | None) -> tuple[int, str | None, str] | None:
    """(pid, host or None for tags without one, program) of a :func:`process_tag`, or None."""
    if not name or not name.startswith(PREFIX):
        return None
    head, _, prog = name[len(PREFIX):].partition(":")
    pid_text, _, host = head.partition("@")
    try:
        pid = int(pid_text)
    except ValueError:
        return None
    return pid, (host or None), prog


def parse_tag(name: str | None) -> int | None:
    """The pid in a tag made by :func:`process_tag`, or None."""
    parsed = parse_process_tag(name)
    return None if parsed is None else parsed[0]


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


def tag_mysql_attrs(conn: Any) -> None:
    """Add ``pd_host`` and ``pd_pid`` to a PyMySQL connection's attributes before it connects
    (``performance_schema.session_connect_attrs``; PyMySQL's own ``_pid`` is there too)."""
    if os.environ.get("POOLDOCTOR_NO_TAG"):
        return
    attrs = getattr(conn, "_connect_attrs", None)
    if isinstance(attrs, dict):
        attrs.setdefault("pd_host", hostname())
        attrs.setdefault("pd_pid", str(os.getpid()))
