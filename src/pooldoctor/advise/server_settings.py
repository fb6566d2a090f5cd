"""Read a server's connection limits and idle timeouts, as the connecting user sees them.

PostgreSQL: ``max_connections`` less ``superuser_reserved_connections`` (and
``reserved_connections`` on 16+), the role's ``rolconnlimit``, the database's ``datconnlimit``,
``idle_session_timeout`` (14+) and ``idle_in_transaction_session_timeout`` as set for this
user and database, and the client backends of ``pg_stat_activity``.

MySQL/MariaDB: ``max_connections``, the account's ``max_user_connections`` (the session value is
the account limit when it has one, else the global one), ``wait_timeout`` (what a pool's
non-interactive connections get), ``interactive_timeout``, MariaDB's ``idle_transaction_timeout``,
``Threads_connected`` and the user's threads in ``PROCESSLIST``.

The advisor's own connection is never counted as "used by others".
"""

from __future__ import annotations

from typing import Any

from ..dbconnect import ServerConnection, describe_db_error, is_permission_error
from .model import ServerLimits


def read_limits(sc: ServerConnection) -> ServerLimits:
    """The limits of the server behind ``sc`` (an AUTOCOMMIT connection from dbconnect)."""
    if sc.backend == "postgresql":
        return _postgres(sc)
    if sc.backend == "mysql":
        return _mysql(sc)
    limits = ServerLimits(backend=sc.backend, url=sc.url)
    if sc.backend == "sqlite":
        limits.notes.append("sqlite has no connection limit and no idle timeout")
    else:
        limits.notes.append(f"limits of {sc.backend!r} servers are not known to pooldoctor")
    return limits


def _rows(sc: ServerConnection, sql: str) -> list[Any]:
    return sc.query(sql)


def _optional(sc: ServerConnection, limits: ServerLimits, what: str, sql: str) -> list[Any] | None:
    """Run a query whose failure for want of a privilege only leaves a figure unknown."""
    try:
        return _rows(sc, sql)
    except Exception as e:
        if not is_permission_error(e):
            raise
        limits.notes.append(f"{what} unknown: {describe_db_error(e)}")
        return None


# ----------------------------------------------------------------------------- PostgreSQL

_PG_SETTINGS = ("max_connections", "superuser_reserved_connections", "reserved_connections",
                "idle_session_timeout", "idle_in_transaction_session_timeout")


def _pg_seconds(setting: str | None, unit: str | None) -> float | None:
    """A pg_settings time value in seconds; None when 0 (disabled) or absent."""
    if setting is None:
        return None
    value = float(setting)
    if value <= 0:
        return None
    scale = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}.get(unit or "s", 1.0)
    return value * scale


def _postgres(sc: ServerConnection) -> ServerLimits:
    limits = ServerLimits(backend="postgresql", url=sc.url)
    names = ", ".join(f"'{n}'" for n in _PG_SETTINGS)
    rows = _rows(sc, f"SELECT name, setting, unit FROM pg_settings WHERE name IN ({names})")
    settings = {r[0]: (r[1], r[2]) for r in rows}
    limits.settings = {k: v[0] for k, v in settings.items()}
    limits.version = str(_rows(sc, "SHOW server_version")[0][0])
    limits.max_connections = int(settings["max_connections"][0])
    su = int(settings["superuser_reserved_connections"][0])
    reserved = su
    detail = f"superuser_reserved_connections {su}"
    if "reserved_connections" in settings:  # PostgreSQL 16+
        rc = int(settings["reserved_connections"][0])
        reserved += rc
        detail += f" + reserved_connections {rc}"
    limits.reserved, limits.reserved_detail = reserved, detail
    ist = settings.get("idle_session_timeout")
    if ist is not None:
        limits.idle_timeout_s = _pg_seconds(*ist)
    limits.idle_timeout_name = "idle_session_timeout"
    iit = settings.get("idle_in_transaction_session_timeout")
    if iit is not None:
        limits.idle_in_transaction_timeout_s = _pg_seconds(*iit)

    user, rolconnlimit, rolsuper = _rows(
        sc, "SELECT rolname, rolconnlimit, rolsuper FROM pg_roles WHERE rolname = current_user")[0]
    limits.user = str(user)
    limits.user_limit_name = "rolconnlimit"
    if int(rolconnlimit) >= 0:
        limits.user_limit = int(rolconnlimit)
    if rolsuper:
        limits.notes.append(f"user {user!r} is a superuser: the reserved slots and connection "
                            "limits do not stop it; run the application as a plain user")
    db, datconnlimit = _rows(sc, "SELECT datname, datconnlimit FROM pg_database "
                                 "WHERE datname = current_database()")[0]
    limits.database = str(db)
    limits.db_limit_name = "datconnlimit"
    if int(datconnlimit) >= 0:
        limits.db_limit = int(datconnlimit)

    used = _optional(sc, limits, "connections used by others", """
        SELECT count(*),
               count(*) FILTER (WHERE usename = current_user),
               count(*) FILTER (WHERE datname = current_database())
        FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()""")
    if used:
        limits.used_by_others, limits.used_by_user, limits.used_by_db = map(int, used[0])
    return limits


# ----------------------------------------------------------------------------- MySQL / MariaDB


def _mysql(sc: ServerConnection) -> ServerLimits:
    limits = ServerLimits(backend="mysql", url=sc.url)
    (version, max_conn, g_muc, s_muc, wait, interactive, user, db) = _rows(sc, """
        SELECT VERSION(), @@global.max_connections, @@global.max_user_connections,
               @@session.max_user_connections, @@global.wait_timeout,
               @@global.interactive_timeout, CURRENT_USER(), DATABASE()""")[0]
    limits.version = str(version)
    limits.max_connections = int(max_conn)
    limits.reserved = 0  # the one extra SUPER slot lies beyond max_connections
    limits.user = str(user)
    limits.database = None if db is None else str(db)
    limits.user_limit_name = "max_user_connections"
    if int(s_muc) > 0:
        limits.user_limit = int(s_muc)
    limits.idle_timeout_s = float(wait) if float(wait) > 0 else None
    limits.idle_timeout_name = "wait_timeout"
    limits.settings = {"max_connections": int(max_conn), "max_user_connections": int(g_muc),
                       "account max_user_connections": int(s_muc), "wait_timeout": int(wait),
                       "interactive_timeout": int(interactive)}
    idle_txn = _rows(sc, "SHOW GLOBAL VARIABLES LIKE 'idle_transaction_timeout'")  # MariaDB
    if idle_txn:
        limits.settings["idle_transaction_timeout"] = int(idle_txn[0][1])
        limits.idle_in_transaction_timeout_s = float(idle_txn[0][1]) or None

    threads = _rows(sc, "SHOW GLOBAL STATUS LIKE 'Threads_connected'")
    if threads:
        limits.used_by_others = max(0, int(threads[0][1]) - 1)
    # without the PROCESS privilege PROCESSLIST shows only this user's threads: what we want
    mine = _optional(sc, limits, "connections of this user", """
        SELECT COUNT(*) FROM information_schema.PROCESSLIST
        WHERE USER = SUBSTRING_INDEX(CURRENT_USER(), '@', 1) AND ID <> CONNECTION_ID()""")
    if mine:
        limits.used_by_user = int(mine[0][0])
    return limits
