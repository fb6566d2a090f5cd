"""Open a connection to a database server from a URL, with one-line errors.

Used by the server watch, the advisor and the dashboard. Errors never hold the password.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
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
    timeout: float = 5.0  # seconds each query may take, network included
    timed_out: bool = field(default=False, repr=False)

    @contextmanager
    def bounded(self) -> Iterator[None]:
        """Run the block's queries within ``timeout`` (see :func:`deadline`); past it,
        :class:`ServerError` says the server did not answer."""
        if self.timed_out:  # the socket was shut down: nothing more can be asked
            raise ServerError(self._no_answer())
        try:
            fd = driver_fileno(self.conn.connection.dbapi_connection)
        except Exception:  # invalidated: the query will say so
            fd = None
        with deadline(fd, self.timeout) as fired:
            try:
                yield
            except Exception:
                if fired.is_set():
                    self.timed_out = True
                    raise ServerError(self._no_answer()) from None
                raise
        if fired.is_set():
            self.timed_out = True

    def _no_answer(self) -> str:
        return f"no answer from {self.url} within {self.timeout:g} s (--timeout)"

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

    try:
        su = u.to_sqlalchemy()
        connect_args = timeout_args(su.get_dialect().driver, timeout)
        engine = sa.create_engine(su, poolclass=NullPool, connect_args=connect_args)
    except (ImportError, sa.exc.NoSuchModuleError) as e:
        raise BadURL(_missing_driver(u, e)) from None
    except sa.exc.ArgumentError as e:
        raise BadURL(f"bad database url {masked!r}: {mask_text(str(e))}") from None
    with ExitStack() as bounds:
        fired: list[threading.Event] = []

        def on_connect(dbapi_conn: Any, record: Any) -> None:
            # the driver's handshake is bounded by its own timeouts; SQLAlchemy's first
            # queries (version, settings) run before connect() returns: bound them here
            fired.append(bounds.enter_context(deadline(driver_fileno(dbapi_conn), timeout)))

        sa.event.listen(engine, "connect", on_connect, insert=True)
        t0 = time.monotonic()
        try:
            conn = engine.connect()
            if autocommit and backend != "sqlite":
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        except Exception as e:
            engine.dispose()
            if any(f.is_set() for f in fired) or time.monotonic() - t0 >= timeout:
                raise ServerError(f"cannot connect to {masked}: no answer within "
                                  f"{timeout:g} s (--timeout)") from None
            if isinstance(e, sa.exc.DBAPIError):
                raise ServerError(f"cannot connect to {masked}: {describe_db_error(e)}"
                                  ) from None
            # driver errors that escape SQLAlchemy's wrapping
            raise ServerError(f"cannot connect to {masked}: {mask_text(_first_line(e))}"
                              ) from None
        finally:
            sa.event.remove(engine, "connect", on_connect)
        late = any(f.is_set() for f in fired)  # fired just as connect() returned
    return ServerConnection(conn, engine, "mysql" if backend == "mariadb" else backend, masked,
                            timeout=timeout, timed_out=late)


def timeout_args(driver: str, timeout: float) -> dict[str, Any]:
    """Connect arguments that bound every network step of the driver named ``driver``.

    PyMySQL and mysqlclient read the server's greeting with the *read* timeout (the connect
    timeout covers only the TCP connect): without it a port where something that is not MySQL
    listens hangs forever. libpq's ``connect_timeout`` covers the whole start-up (whole seconds;
    it has no read timeout: :meth:`ServerConnection.bounded` covers queries).
    """
    whole = max(2, math.ceil(timeout))  # libpq's minimum is 2 s
    if driver == "pymysql":
        return {"connect_timeout": timeout, "read_timeout": timeout, "write_timeout": timeout}
    if driver == "mysqldb":  # libmysqlclient: whole seconds
        secs = max(1, math.ceil(timeout))
        return {"connect_timeout": secs, "read_timeout": secs, "write_timeout": secs}
    if driver in ("psycopg", "psycopg2"):
        return {"connect_timeout": whole}
    if driver == "mysqlconnector":
        return {"connection_timeout": whole}
    return {}


@contextmanager
def deadline(fd: int | None, timeout: float) -> Iterator[threading.Event]:
    """Bound the block's network steps on socket ``fd`` to ``timeout`` seconds.

    Past it the socket is shut down, so a driver blocked reading it (libpq has no read
    timeout: a server that accepted and went silent would hold it forever) gets an error at
    once; the event yielded is set then, to tell that error from others.
    """
    fired = threading.Event()

    def expire() -> None:
        fired.set()
        if fd is not None:
            shutdown_fd(fd)

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


def driver_fileno(raw: Any) -> int | None:
    """The socket of a driver connection, when it can be found."""
    try:
        sock = getattr(raw, "_sock", None)  # PyMySQL
        if sock is not None:
            return int(sock.fileno())
        return int(raw.fileno())  # psycopg, psycopg2, mysqlclient
    except Exception:
        return None


def shutdown_fd(fd: int) -> None:
    """Shut a socket down by its file descriptor: a read blocked on it returns at once."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.detach()  # the driver still owns the descriptor


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


__all__ = ["BadURL", "ServerConnection", "ServerError", "connect", "deadline",
           "describe_db_error", "driver_fileno", "is_permission_error", "shutdown_fd",
           "timeout_args"]
