"""The server's id for a driver connection, where the driver knows it without a round trip."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _psycopg(conn: Any) -> Any:
    return conn.info.backend_pid


def _thread_id(conn: Any) -> Any:
    return conn.thread_id()


def _server_thread_id(conn: Any) -> Any:
    value = conn.server_thread_id
    return value[0] if isinstance(value, (tuple, list)) and value else None


# Keyed by the top-level package of the connection's class (or of a base class): only known
# drivers are asked, so nothing is ever called on an unknown object (a wrapper, a test double).
_GETTERS: dict[str, Callable[[Any], Any]] = {
    "psycopg": _psycopg,
    "psycopg2": lambda c: c.get_backend_pid(),
    "pymysql": _thread_id,
    "MySQLdb": _thread_id,
    "asyncpg": lambda c: c.get_server_pid(),
    "aiomysql": _server_thread_id,
    "mysql": lambda c: c.connection_id,  # mysql-connector
}


def server_id(conn: Any) -> int | None:
    """PostgreSQL backend pid or MySQL/MariaDB thread id; None when unknown (never raises)."""
    if conn is None:
        return None
    try:
        for cls in type(conn).__mro__:
            getter = _GETTERS.get(cls.__module__.partition(".")[0])
            if getter is not None:
                value = getter(conn)
                return value if isinstance(value, int) and value else None
    except Exception:
        return None
    return None
