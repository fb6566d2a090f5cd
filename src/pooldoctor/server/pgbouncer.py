"""PgBouncer probe: its admin console's ``SHOW CLIENTS`` and ``SHOW SERVERS`` (one look each).

``pooldoctor snapshot postgresql://admin@bouncer:6432/pgbouncer`` lists PgBouncer's client
connections: one row per client, its address, ``application_name`` (pooldoctor's
``pooldoctor:<pid>@<host>:<program>`` tag names the guarded process), when it connected and
made its last request, and the server connection it holds right now (``link`` -> the backend
pid on PostgreSQL, from ``SHOW SERVERS``). In transaction pooling this is the only place a
connection leaked *outside* a transaction can be seen: PgBouncer gave the server connection back
and PostgreSQL has nothing of it; such a client shows as ``idle`` here, and its idle time
(since its last request) feeds PD304.

States: a client holding a server connection is ``active``; one waiting for a server ``other``
(the wait is shown); any other ``idle``. The console speaks the simple query protocol only and
knows no SQL: the probe uses psycopg directly, not SQLAlchemy. PgBouncer cannot end a single
client: ``kill`` refuses.
"""

from __future__ import annotations

import os
import time
from calendar import timegm
from typing import Any

from ..dbconnect import ServerError, deadline, driver_fileno
from ..urls import mask_text, mask_url, parse_url
from .model import ACTIVE, IDLE, OTHER, ServerConn, Snapshot
from .probe import Probe


class PgBouncerProbe(Probe):
    backend = "pgbouncer"

    def __init__(self, conn: Any, url: str, timeout: float = 5.0) -> None:  # psycopg, no SQLAlchemy
        self.conn = conn
        self.url = url
        self.timeout = timeout
        self.version = ""
        self.notes = []
        self.own_id = None
        self.setup()

    @classmethod
    def open(cls, url: str, timeout: float) -> PgBouncerProbe:
        try:
            import psycopg
        except ImportError:
            raise ServerError("watching PgBouncer's console needs psycopg 3 "
                              "(pip install 'pooldoctor[postgres]')") from None
        u = parse_url(url)
        masked = mask_url(url)
        try:
            conn = psycopg.connect(host=u.host or "localhost", port=u.port or 6432,
                                   user=u.username, password=u.password, dbname=u.database,
                                   connect_timeout=max(int(timeout), 1), autocommit=True)
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ServerError(f"cannot connect to {masked}: {mask_text(first)}") from None
        try:
            return cls(conn, masked, timeout)
        except BaseException:
            conn.close()
            raise

    def run(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        """One console command; rows as dicts by column name."""
        try:
            with deadline(driver_fileno(self.conn), self.timeout) as fired:
                try:
                    cur = self.conn.execute(sql)
                    names = [d.name for d in cur.description or ()]
                    return [dict(zip(names, row, strict=False)) for row in cur.fetchall()]
                except Exception:
                    if fired.is_set():
                        raise ServerError(f"no answer from {self.url} within "
                                          f"{self.timeout:g} s (--timeout)") from None
                    raise
        except ServerError:
            raise
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ServerError(f"{sql} on {self.url} failed: {mask_text(first)}") from None

    def setup(self) -> None:
        rows = self.run("SHOW VERSION")
        self.version = str(next(iter(rows[0].values()))) if rows else "PgBouncer"
        config = {r.get("key"): r.get("value") for r in self.run("SHOW CONFIG")}
        self.max_clients = int(config.get("max_client_conn") or 0)
        self.own_port = _local_port(self.conn)
        self.notes.append(f"PgBouncer clients ({config.get('pool_mode', '?')} pooling); "
                          "the server behind it is watched with its own url")

    def take(self, snap: Snapshot) -> None:
        clients = self.run("SHOW CLIENTS")
        servers = {r.get("ptr"): r for r in self.run("SHOW SERVERS")}
        snap.queries += 2
        now = time.time()
        for r in clients:
            c = _client(r, servers, now, self.own_port)
            if c is not None:
                snap.conns.append(c)
        snap.max_connections = self.max_clients
        snap.reserved = 0

    def terminate(self, conn: ServerConn) -> str | None:
        return "PgBouncer cannot end a single client connection"

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:
            pass


def _client(r: dict[str, Any], servers: dict[Any, dict[str, Any]], now: float,
            own_port: int | None) -> ServerConn | None:
    try:
        ident = int(str(r.get("ptr") or "0"), 16)
    except ValueError:
        return None
    server = servers.get(r.get("link")) if r.get("link") else None
    if server is not None:
        state, query = ACTIVE, f"(holds server backend {server.get('remote_pid')})"
    elif str(r.get("state", "")).startswith("waiting"):
        state, query = OTHER, None
    else:
        state, query = IDLE, None
    wait_s = float(r.get("wait") or 0) + float(r.get("wait_us") or 0) / 1e6
    return ServerConn(
        id=ident, user=r.get("user"), database=r.get("database"), client=r.get("addr"),
        client_port=_int(r.get("port")), application=r.get("application_name") or None,
        state=state, connected_s=_age(r.get("connect_time"), now),
        state_s=_age(r.get("request_time"), now), query=query,
        wait=f"waiting for a server {wait_s:.1f} s" if state == OTHER else None,
        own=own_port is not None and _int(r.get("port")) == own_port
        and r.get("database") == "pgbouncer")


def _local_port(conn: Any) -> int | None:
    """The local port of the probe's own connection (to mark its row)."""
    import socket

    try:
        sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
    except (OSError, AttributeError, ValueError):
        return None
    try:
        name = sock.getsockname()
        return int(name[1]) if isinstance(name, tuple) else None
    except OSError:
        return None
    finally:
        sock.close()


def _age(text: Any, now: float) -> float | None:
    """Seconds since a console timestamp (``2026-12-03 16:02:03 UTC``)."""
    if not text:
        return None
    try:
        ts = timegm(time.strptime(str(text).replace(" UTC", ""), "%Y-%m-%d %H:%M:%S"))
    except ValueError:
        return None
    return max(now - ts, 0.0)


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None
