"""Probes: a connection to one server that takes snapshots and terminates connections.

This module holds the base class only; :mod:`.probes` knows the concrete probes and opens
the right one for a URL (the base never imports its subclasses).
"""

from __future__ import annotations

import time
from typing import Any

from ..dbconnect import ServerConnection, ServerError, describe_db_error
from .model import ServerConn, Snapshot


class Probe:
    """Base class: owns the watcher's connection; subclasses know one server family."""

    backend = ""

    def __init__(self, server: ServerConnection) -> None:
        self.server = server
        self.url = server.url
        self.version = ""
        self.notes: list[str] = []
        self.own_id: int | None = None  # the server's id for the watcher's own connection
        self.setup()

    # --- to implement ---------------------------------------------------------------

    def setup(self) -> None:
        """Learn once what this server and this login can see."""

    def take(self, snap: Snapshot) -> None:
        """Fill ``snap`` (connections, limits, counters)."""
        raise NotImplementedError

    def terminate(self, conn: ServerConn) -> str | None:
        """End ``conn`` on the server; None when done, else why not."""
        raise NotImplementedError

    # --- shared -----------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        snap = Snapshot(backend=self.backend, url=self.url, server_version=self.version,
                        notes=list(self.notes))
        t0 = time.perf_counter()
        self.take(snap)
        snap.query_ms = (time.perf_counter() - t0) * 1000
        return snap

    def run(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        """Execute one query, counting it; driver errors become ServerError (masked)."""
        try:
            return self.server.query(sql, params)
        except ServerError:
            raise
        except self.server.errors as e:
            raise ProbeQueryError(e, f"query on {self.url} failed: "
                                     f"{describe_db_error(e)}") from None

    def close(self) -> None:
        try:
            self.server.close()
        except Exception:
            pass

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ProbeQueryError(ServerError):
    """A probe query failed; ``error`` is the driver error (for privilege checks)."""

    def __init__(self, error: Any, message: str) -> None:
        super().__init__(message)
        self.error = error

