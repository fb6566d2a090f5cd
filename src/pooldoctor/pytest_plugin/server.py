"""Count this process's connections on a database server (``--pooldoctor-server URL``).

A server connection is this process's when any of these holds (the first that matched is
kept in ``matched_by``):

- ``tag``: its PostgreSQL ``application_name`` (or, with MariaDB/MySQL's performance_schema on,
  its ``program_name``) is this process's tag from :func:`pooldoctor.runtime.tags.process_tag`
  (set by the guard on every connection SQLAlchemy opens);
- ``socket`` (Linux, TCP): the client address and port the server reports belong to a TCP
  socket this process has open (``/proc/self/fd`` and ``/proc/self/net/tcp{,6}``) — this sees
  connections of any driver, tagged or not, but not Unix-socket connections or ones behind NAT;
- ``hold``: its backend pid / thread id is the server id of a hold in the guard's ledger.

Connections a hold or a pool explains (checked out, open and tracked, or idle in a guarded
pool) are not counted: what is left is what the guard cannot see, and its growth during a test
is a leak (PD303). The probe connection is a raw driver connection made before the guard is
installed, and the queries exclude it.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from pooldoctor.runtime.tags import process_tag
from pooldoctor.urls import BadURL, mask_url, parse_url

SYNC_DRIVERS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql",
                "mariadb": "mariadb+pymysql"}
TIMEOUT_S = 5.0  # every network step of the probe connection (connect, each query)
GRACE_S = 2.0  # a closed connection may linger on the server for a moment; poll this long
POLL_S = 0.05


@dataclass
class Growth:
    """More unexplained server connections after a test than before."""

    before: int
    after: int
    ids: set[int]
    matched_by: dict[str, str]


class ServerCounter:
    """One probe connection to a PostgreSQL or MariaDB/MySQL server."""

    def __init__(self, raw: Any, backend: str, url: str, host: str | None,
                 port: int | None) -> None:
        self.raw = raw
        self.backend = backend  # "postgresql" | "mysql"
        self.url = url  # masked
        self.host = host
        self.port = port
        self.label = "PostgreSQL" if backend == "postgresql" else "MariaDB/MySQL"
        self.tag = process_tag()
        self.perf_schema = False
        if backend == "mysql":
            rows = self._query("SELECT @@performance_schema")
            self.perf_schema = bool(rows and rows[0][0])

    @classmethod
    def open(cls, url: str) -> ServerCounter:
        """Connect (raises ``pytest.UsageError`` with one masked line on failure)."""
        import sqlalchemy as sa

        from pooldoctor.dbconnect import describe_db_error, timeout_args

        try:
            u = parse_url(url).to_sqlalchemy()
        except BadURL as e:
            raise pytest.UsageError(f"--pooldoctor-server: {e}") from None
        masked = mask_url(u)
        backend = u.get_backend_name()
        if backend not in ("postgresql", "mysql", "mariadb"):
            raise pytest.UsageError(
                f"--pooldoctor-server needs a postgresql or mysql url, got {masked}")
        if u.get_dialect().is_async:  # the probe is synchronous: use the sync driver
            u = u.set(drivername=SYNC_DRIVERS.get(backend, backend))
        try:
            engine = sa.create_engine(u, poolclass=sa.pool.NullPool)
            dialect = engine.dialect
            cargs, cparams = dialect.create_connect_args(u)
            for key, value in timeout_args(dialect.driver, TIMEOUT_S).items():
                cparams.setdefault(key, value)
            raw = dialect.connect(*cargs, **cparams)  # no pool, no events: the guard won't see it
            engine.dispose()
        except ImportError as e:
            raise pytest.UsageError(
                f"--pooldoctor-server: driver for {u.drivername!r} is not installed ({e})"
            ) from None
        except Exception as e:
            raise pytest.UsageError(
                f"--pooldoctor-server: cannot connect to {masked}: {describe_db_error(e)}"
            ) from None
        if backend == "postgresql":
            raw.autocommit = True
        else:
            raw.autocommit(True)
        try:
            return cls(raw, "mysql" if backend == "mariadb" else backend, masked, u.host,
                       u.port or (5432 if backend == "postgresql" else 3306))
        except Exception as e:
            raw.close()
            raise pytest.UsageError(
                f"--pooldoctor-server: cannot use {masked}: {describe_db_error(e)}") from None

    def close(self) -> None:
        try:
            self.raw.close()
        except Exception:
            pass

    def _query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        from pooldoctor.dbconnect import ServerError, deadline, driver_fileno

        with deadline(driver_fileno(self.raw), TIMEOUT_S) as fired:
            try:
                cur = self.raw.cursor()
                try:
                    cur.execute(sql, params)
                    return list(cur.fetchall())
                finally:
                    cur.close()
            except Exception:
                if fired.is_set():
                    raise ServerError(f"no answer from {self.url} within {TIMEOUT_S:g} s"
                                      ) from None
                raise

    # ------------------------------------------------------------------ counting

    def ours(self) -> dict[int, str]:
        """This process's connections on the server: server id -> how it was recognised."""
        mine = local_endpoints(self.port) if self.port else set()
        out: dict[int, str] = {}
        if self.backend == "postgresql":
            rows = self._query(
                "SELECT pid, application_name, host(client_addr), client_port "
                "FROM pg_stat_activity WHERE backend_type = 'client backend' "
                "AND pid <> pg_backend_pid()")
            for pid, app, addr, port in rows:
                if app == self.tag:
                    out[pid] = "tag"
                elif addr is not None and (_norm(addr), port) in mine:
                    out[pid] = "socket"
            return out
        rows = self._query("SELECT ID, HOST FROM information_schema.PROCESSLIST "
                           "WHERE ID <> CONNECTION_ID()")
        for tid, host in rows:
            addr, _, port = str(host or "").rpartition(":")
            if port.isdigit() and (_norm(addr), int(port)) in mine:
                out[int(tid)] = "socket"
        if self.perf_schema:
            for (tid,) in self._query(
                    "SELECT PROCESSLIST_ID FROM performance_schema.session_connect_attrs "
                    "WHERE ATTR_NAME = 'program_name' AND ATTR_VALUE = %s", (self.tag,)):
                out.setdefault(int(tid), "tag")
        return out

    def unexplained(self, known: set[int]) -> int:
        """How many of this process's server connections no hold and no pool explains."""
        return len(self._unexplained(known)[0])

    def _unexplained(self, known: set[int]) -> tuple[set[int], dict[str, str]]:
        ours = self.ours()
        idle_ids, idle_unknown = self.idle_in_pools()
        ids = {i for i in ours if i not in known and i not in idle_ids}
        if idle_unknown:  # idle connections whose id is unknown: drop as many, tagged first
            order = sorted(ids, key=lambda i: (ours[i] != "tag", i))
            ids = set(order[idle_unknown:])
        return ids, {str(i): ours[i] for i in sorted(ids)}

    def growth(self, before: int, known: Callable[[], set[int]]) -> Growth | None:
        """Growth since ``before``, polled for ``GRACE_S`` so closing connections can go."""
        deadline = time.monotonic() + GRACE_S
        while True:
            ids, how = self._unexplained(known())
            if len(ids) <= before:
                return None
            if time.monotonic() >= deadline:
                return Growth(before, len(ids), ids, how)
            time.sleep(POLL_S)

    def idle_in_pools(self) -> tuple[set[int], int]:
        """Connections idle in the guarded QueuePools that point at this server: the server
        ids the guard noted at connect, and how many more have no known id."""
        from pooldoctor.runtime import sqlalchemy as sa_rt

        ids: set[int] = set()
        unknown = 0
        for info in sa_rt.all_infos():
            if not self._same_server(info.url):
                continue
            pool_ids, pool_unknown = sa_rt.idle_server_ids(info)
            ids |= pool_ids
            unknown += pool_unknown
        return ids, unknown

    def _same_server(self, url: str | None) -> bool:
        if not url:
            return False
        try:
            u = parse_url(url)
        except BadURL:
            return False
        backend = u.get_backend_name()
        backend = "mysql" if backend == "mariadb" else backend
        default = 5432 if backend == "postgresql" else 3306
        return (backend == self.backend and _norm(u.host or "") == _norm(self.host or "")
                and (u.port or default) == self.port)


# ---------------------------------------------------------------------- local sockets


def local_endpoints(remote_port: int) -> set[tuple[str, int]]:
    """(address, port) of this process's TCP sockets connected to ``remote_port`` (Linux)."""
    inodes: set[str] = set()
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return set()
    for fd in fds:
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    if not inodes:
        return set()
    out: set[tuple[str, int]] = set()
    for name in ("tcp", "tcp6"):
        try:
            with open(f"/proc/self/net/{name}", encoding="ascii") as fh:
                lines = fh.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 10 or parts[9] not in inodes:
                continue
            rport = parts[2].rsplit(":", 1)[1]
            if int(rport, 16) != remote_port:
                continue
            laddr, lport = parts[1].rsplit(":", 1)
            out.add((_decode(laddr), int(lport, 16)))
    return out


def _decode(hexaddr: str) -> str:
    raw = bytes.fromhex(hexaddr)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(hexaddr, 16)))
    words = struct.unpack("<4I", raw)
    return _norm(socket.inet_ntop(socket.AF_INET6, struct.pack(">4I", *words)))


def _norm(addr: str) -> str:
    """One spelling per address: IPv4-mapped IPv6 as IPv4, ``localhost`` as 127.0.0.1."""
    addr = addr.strip("[]")
    if addr.startswith("::ffff:") and "." in addr:
        return addr[7:]
    if addr == "localhost":
        return "127.0.0.1"
    return addr
