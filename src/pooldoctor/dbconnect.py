"""Open a connection to a database server from a URL, with one-line errors.

Used by the server watch, the advisor and the dashboard. Errors never hold the password.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .urls import BadURL, mask_text, mask_url, parse_url

EXTRAS = {"pymysql": "mysql", "psycopg": "postgres", "psycopg2": "postgres2", "MySQLdb": "mysql"}


class ServerError(Exception):
    """The server can't be reached or used: unreachable, bad password, missing privilege."""

    exit_code = 3


@dataclass
class ServerConnection:
    """A SQLAlchemy connection to a server, with the masked URL and the backend family."""

    conn: Any  # sqlalchemy.engine.Connection
    engine: Any
    backend: str  # "postgresql" | "mysql" | "sqlite" | ...
    url: str  # masked

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            self.engine.dispose()

    def __enter__(self) -> ServerConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(url: str, *, timeout: float = 5.0, autocommit: bool = True) -> ServerConnection:
    """Connect to the server at ``url`` (SQLAlchemy form); raise BadURL or ServerError."""
    u = parse_url(url)
    masked = mask_url(u)
    backend = u.get_backend_name()
    if u.port is not None and not 0 < u.port < 65536:
        raise BadURL(f"bad database url {masked!r}: port {u.port} is out of range 1-65535")
    import sqlalchemy as sa  # a bad URL is refused without it
    from sqlalchemy.pool import NullPool

    connect_args: dict[str, Any] = {}
    if backend in ("postgresql", "mysql", "mariadb"):
        connect_args["connect_timeout"] = max(1, int(timeout))
    try:
        engine = sa.create_engine(u.to_sqlalchemy(), poolclass=NullPool,
                                  connect_args=connect_args)
    except (ImportError, sa.exc.NoSuchModuleError) as e:
        raise BadURL(_missing_driver(u, e)) from None
    except sa.exc.ArgumentError as e:
        raise BadURL(f"bad database url {masked!r}: {mask_text(str(e))}") from None
    try:
        conn = engine.connect()
        if autocommit and backend != "sqlite":
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
    except sa.exc.DBAPIError as e:
        engine.dispose()
        raise ServerError(f"cannot connect to {masked}: {describe_db_error(e)}") from None
    except Exception as e:  # driver errors that escape SQLAlchemy's wrapping
        engine.dispose()
        raise ServerError(f"cannot connect to {masked}: {mask_text(_first_line(e))}") from None
    return ServerConnection(conn, engine, "mysql" if backend == "mariadb" else backend, masked)


def _missing_driver(u: Any, e: BaseException) -> str:
    import sqlalchemy as sa

    if isinstance(e, sa.exc.NoSuchModuleError):
        return f"unknown database or driver {u.drivername!r} in {mask_url(u)}"
    name = getattr(e, "name", None) or str(e)
    extra = EXTRAS.get(str(name).split(".")[0])
    hint = f"; pip install 'pooldoctor[{extra}]'" if extra else ""
    return f"driver for {u.drivername!r} is not installed ({mask_text(_first_line(e))}){hint}"


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def describe_db_error(e: Any) -> str:
    """A short, masked description of a driver error (no SQL, no traceback)."""
    orig = getattr(e, "orig", e)
    args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int):  # PyMySQL / MySQLdb: (code, message)
        text = f"({args[0]}) {args[1]}"
    else:
        text = _first_line(orig)
    return mask_text(text.strip().rstrip("."))


def is_permission_error(e: Any) -> bool:
    """True for "permission denied" / "access denied" errors from either server."""
    orig = getattr(e, "orig", e)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None),
                                                          "sqlstate", None)
    if sqlstate == "42501":
        return True
    args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
    return bool(args) and args[0] in (1044, 1045, 1142, 1143, 1227)


__all__ = ["BadURL", "ServerConnection", "ServerError", "connect", "describe_db_error",
           "is_permission_error"]
