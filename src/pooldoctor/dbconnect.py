"""Open a connection to a database server from a URL, with one-line errors.

Used by the server watch, the advisor and the dashboard. Errors never hold the password.
"""

from __future__ import annotations

import importlib
import math
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from .urls import BadURL, DatabaseURL, mask_text, mask_url, parse_url

EXTRAS = {"pymysql": "mysql", "psycopg": "postgres", "psycopg2": "postgres2", "MySQLdb": "mysql"}
# pip names of the drivers that have no extra of ours
PACKAGES = {"mysql": "mysql-connector-python"}


class ServerError(Exception):
    """The server can't be reached or used: unreachable, bad password, missing privilege."""

    exit_code = 3


@dataclass
class ServerConnection:
    """A DB-API connection to a server, with the masked URL and the backend family."""

    conn: Any  # the driver's connection (psycopg, psycopg2, PyMySQL, MySQLdb)
    backend: str  # "postgresql" | "mysql" | "sqlite" | ...
    url: str  # masked
    timeout: float = 5.0  # seconds each query may take, network included
    timed_out: bool = field(default=False, repr=False)
    errors: tuple[type[BaseException], ...] = field(default=(Exception,), repr=False)
    """The exceptions that mean the database refused or failed a query (the driver's Error)."""

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        """The rows (tuples) of one statement within ``timeout``; parameters are ``:name``."""
        with self.bounded():
            return self._execute(sql, params)

    def _execute(self, sql: str, params: dict[str, Any] | None) -> list[Any]:
        cur = self.conn.cursor()
        try:
            if params is None:
                cur.execute(sql)
            else:
                cur.execute(pyformat(sql), params)
            return list(cur.fetchall()) if cur.description is not None else []
        finally:
            cur.close()

    def _fileno(self) -> int | None:
        return driver_fileno(self.conn)

    @contextmanager
    def bounded(self) -> Iterator[None]:
        """Run the block's queries within ``timeout`` (see :func:`deadline`); past it,
        :class:`ServerError` says the server did not answer."""
        if self.timed_out:  # the socket was shut down: nothing more can be asked
            raise ServerError(self._no_answer())
        try:
            fd = self._fileno()
        except Exception:  # invalidated: the query will say so
            fd = None
        t0 = time.monotonic()
        with deadline(fd, self.timeout) as fired:
            try:
                yield
            except Exception:
                # the driver's own read timeout (PyMySQL, mysqlclient: the same length;
                # mysql-connector: whole seconds) may fire before our timer's thread runs
                if fired.is_set() or time.monotonic() - t0 >= self.timeout:
                    self.timed_out = True
                    raise ServerError(self._no_answer()) from None
                raise
        if fired.is_set():
            self.timed_out = True

    def _no_answer(self) -> str:
        return f"no answer from {self.url} within {self.timeout:g} s (--timeout)"

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> ServerConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class _SAServerConnection(ServerConnection):
    """The same through a SQLAlchemy engine, for the drivers pooldoctor does not drive."""

    engine: Any = None

    def _execute(self, sql: str, params: dict[str, Any] | None) -> list[Any]:
        import sqlalchemy as sa

        if params is None:
            result = self.conn.exec_driver_sql(sql)
        else:
            result = self.conn.execute(sa.text(sql), params)
        return list(result.fetchall()) if result.returns_rows else []

    def _fileno(self) -> int | None:
        return driver_fileno(self.conn.connection.dbapi_connection)

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            self.engine.dispose()


_NAMED = re.compile(r"(?<![:\w]):(\w+)")


def pyformat(sql: str) -> str:
    """``:name`` parameters as the drivers' ``%(name)s`` (a literal ``%`` doubled; ``::`` kept)."""
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))


def connect(url: str, *, timeout: float = 5.0, autocommit: bool = True) -> ServerConnection:
    """Connect to the server at ``url`` (SQLAlchemy form); raise BadURL or ServerError.

    psycopg, psycopg2, PyMySQL, mysqlclient and mysql-connector are driven directly (no
    SQLAlchemy); any other driver or dialect goes through a SQLAlchemy engine.
    """
    u = parse_url(url)
    masked = mask_url(u)
    backend = u.get_backend_name()
    if u.port is not None and not 0 < u.port < 65536:
        raise BadURL(f"bad database url {masked!r}: port {u.port} is out of range 1-65535")
    family = FAMILIES.get(backend)
    driver = SYNC_DRIVERS.get((family or "", u.get_driver_name()))
    if family is None or driver is None:
        return _connect_sqlalchemy(u, masked, timeout, autocommit)
    try:
        module = importlib.import_module(MODULES[driver])
    except ImportError as e:
        raise BadURL(_missing_driver(u, e)) from None
    errors: tuple[type[BaseException], ...] = (module.Error,)
    t0 = time.monotonic()
    try:
        raw = _open(module, driver, u, timeout, autocommit)
    except Exception as e:
        if time.monotonic() - t0 >= timeout:
            raise ServerError(f"cannot connect to {masked}: no answer within "
                              f"{timeout:g} s (--timeout)") from None
        why = describe_db_error(e) if isinstance(e, errors) else mask_text(_first_line(e))
        raise ServerError(f"cannot connect to {masked}: {why}") from None
    return ServerConnection(raw, family, masked, timeout=timeout, errors=errors)


# (family, driver in the URL) -> the sync driver the watch uses ('' is the dialect's default,
# as SQLAlchemy's); async drivers map to the sync driver of the same server
SYNC_DRIVERS = {
    ("postgresql", ""): "psycopg2", ("postgresql", "psycopg2"): "psycopg2",
    ("postgresql", "psycopg"): "psycopg", ("postgresql", "psycopg_async"): "psycopg",
    ("postgresql", "asyncpg"): "psycopg",
    ("mysql", ""): "mysqldb", ("mysql", "mysqldb"): "mysqldb", ("mysql", "pymysql"): "pymysql",
    ("mysql", "aiomysql"): "pymysql", ("mysql", "asyncmy"): "pymysql",
    ("mysql", "mysqlconnector"): "mysqlconnector",
}
FAMILIES = {"postgresql": "postgresql", "postgres": "postgresql", "mysql": "mysql",
            "mariadb": "mysql"}
MODULES = {"psycopg": "psycopg", "psycopg2": "psycopg2", "pymysql": "pymysql",
           "mysqldb": "MySQLdb", "mysqlconnector": "mysql.connector"}
_MYSQL_INTS = ("compress", "client_flag", "local_infile", "connect_timeout", "read_timeout",
               "write_timeout")


def _open(module: Any, driver: str, u: DatabaseURL, timeout: float, autocommit: bool) -> Any:
    """The driver's connection for ``u``, every network step bounded by ``timeout``."""
    query = {k: (v[-1] if isinstance(v, tuple) else v) for k, v in u.query.items()}
    kw: dict[str, Any] = {"host": u.host, "port": u.port, "user": u.username,
                          "password": u.password}
    if driver in ("psycopg", "psycopg2"):
        kw["dbname"] = u.database
        kw = {k: v for k, v in kw.items() if v is not None}
        kw.update(query)
        kw.update(timeout_args(driver, timeout))
        if driver == "psycopg":
            return module.connect(autocommit=autocommit, **kw)
        raw = module.connect(**kw)
        raw.autocommit = autocommit
        return raw
    kw["database"] = u.database
    if driver == "mysqlconnector":
        kw = {k: v for k, v in kw.items() if v is not None}
        kw.update(query)
        kw.update(timeout_args(driver, timeout, module))
        return module.connect(autocommit=autocommit, **kw)
    # PyMySQL / mysqlclient, the arguments SQLAlchemy's dialect gives them
    kw = {k: v for k, v in kw.items() if v is not None}
    ssl = {k[4:]: query.pop(k) for k in list(query) if k.startswith("ssl_")}
    mixed: dict[str, Any] = dict(query)
    for k in _MYSQL_INTS:
        if k in mixed:
            mixed[k] = int(mixed[k])
    if ssl:
        mixed["ssl"] = ssl
    kw.update(mixed)
    kw.setdefault("charset", "utf8mb4")
    kw.update(timeout_args(driver, timeout))
    return module.connect(autocommit=autocommit, **kw)


def _connect_sqlalchemy(u: DatabaseURL, masked: str, timeout: float,
                        autocommit: bool) -> ServerConnection:
    """Any other dialect or driver: a SQLAlchemy engine (imported only here)."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    backend = u.get_backend_name()
    try:
        su = u.to_sqlalchemy()
        dialect = su.get_dialect()
        connect_args = timeout_args(dialect.driver, timeout, getattr(dialect, "dbapi", None))
        engine = sa.create_engine(su, poolclass=NullPool, connect_args=connect_args)
    except sa.exc.NoSuchModuleError:
        raise BadURL(f"unknown database or driver {u.drivername!r} in {masked}") from None
    except ImportError as e:
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
    return _SAServerConnection(conn, "mysql" if backend == "mariadb" else backend, masked,
                               timeout=timeout, timed_out=late, errors=(sa.exc.SQLAlchemyError,),
                               engine=engine)


def timeout_args(driver: str, timeout: float, module: Any = None) -> dict[str, Any]:
    """Connect arguments that bound every network step of the driver named ``driver``
    (``module``: the driver itself, when its version decides).

    PyMySQL and mysqlclient read the server's greeting with the *read* timeout (the connect
    timeout covers only the TCP connect): without it a port where something that is not MySQL
    listens hangs forever. libpq's ``connect_timeout`` covers the whole start-up (whole seconds;
    it has no read timeout: :meth:`ServerConnection.bounded` covers queries). mysql-connector's
    ``connection_timeout`` covers the TCP connect and, in its pure-Python protocol, every read
    and write; from 9.3 its C extension also takes ``read_timeout``/``write_timeout`` (whole
    seconds, refused by older versions: given only when the driver knows them).
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
        secs = max(1, math.ceil(timeout))
        args = {"connection_timeout": secs}
        known = getattr(getattr(module, "constants", None), "DEFAULT_CONFIGURATION", {})
        if "read_timeout" in known:
            args.update(read_timeout=secs, write_timeout=secs)
        return args
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
        inner = getattr(getattr(raw, "_socket", None), "sock", None)  # mysql-connector (pure)
        if inner is not None:
            return int(inner.fileno())
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


def _missing_driver(u: DatabaseURL, e: BaseException) -> str:
    name = getattr(e, "name", None) or str(e)
    top = str(name).split(".")[0]
    extra = EXTRAS.get(top)
    hint = (f"; pip install 'pooldoctor[{extra}]'" if extra else
            f"; pip install {PACKAGES[top]}" if top in PACKAGES else "")
    return f"driver for {u.drivername!r} is not installed ({mask_text(_first_line(e))}){hint}"


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def describe_db_error(e: Any) -> str:
    """A short, masked description of a driver error (no SQL, no traceback)."""
    orig = getattr(e, "orig", e)
    args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int):  # PyMySQL / MySQLdb: (code, message)
        msg = getattr(orig, "msg", None)  # mysql-connector: args[1] repeats code and sqlstate
        text = f"({args[0]}) {msg if isinstance(msg, str) and msg else args[1]}"
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
           "describe_db_error", "driver_fileno", "is_permission_error", "pyformat",
           "shutdown_fd", "timeout_args"]
