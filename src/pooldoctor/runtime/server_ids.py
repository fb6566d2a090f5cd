"""The server's id for a driver connection, where the driver knows it without a round trip."""

from __future__ import annotations

from typing import Any


def server_id(conn: Any) -> int | None:
    """PostgreSQL backend pid or MySQL/MariaDB thread id; None when unknown (never raises)."""
    if conn is None:
        return None
    try:
        info = getattr(conn, "info", None)
        pid = getattr(info, "backend_pid", None)  # psycopg 3
        if isinstance(pid, int) and pid:
            return pid
        for name in ("thread_id", "get_backend_pid", "get_server_pid"):  # PyMySQL, MySQLdb,
            fn = getattr(conn, name, None)  # psycopg2, asyncpg
            if callable(fn):
                value = fn()
                if isinstance(value, int) and value:
                    return value
        value = getattr(conn, "connection_id", None)  # mysql-connector
        if isinstance(value, int) and value:
            return value
        value = getattr(conn, "server_thread_id", None)  # aiomysql / PyMySQL internals
        if isinstance(value, (tuple, list)) and value and isinstance(value[0], int):
            return value[0]
    except Exception:
        return None
    return None
