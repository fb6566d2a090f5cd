"""PostgreSQL probe: one query on ``pg_stat_activity`` per snapshot.

Without ``pg_monitor`` (or superuser), other users' rows show ``<insufficient privilege>``
instead of their query, and state, ages and client are NULL: they are kept, counted and
shown as hidden, never dropped. Their backend type is hidden too: a hidden row with a database
and a user is counted as a client connection (a parallel worker may be counted with it).
"""

from __future__ import annotations

from typing import Any

from .model import (
    ACTIVE,
    HIDDEN,
    IDLE,
    IDLE_TXN,
    IDLE_TXN_ABORTED,
    OTHER,
    ServerConn,
    Snapshot,
)
from .probe import Probe
from .sql import QUERY_CHARS, TAIL_CHARS, clean_query, read_tags

ACTIVITY = f"""
SELECT a.pid, a.usename, a.datname, host(a.client_addr), a.client_hostname, a.client_port,
       a.application_name, a.state,
       EXTRACT(EPOCH FROM (now() - a.backend_start))::float8,
       EXTRACT(EPOCH FROM (now() - a.state_change))::float8,
       EXTRACT(EPOCH FROM (now() - a.xact_start))::float8,
       left(a.query, {QUERY_CHARS}), a.wait_event_type, a.wait_event,
       a.pid = pg_backend_pid(), a.backend_start::text,
       current_setting('max_connections')::int,
       current_setting('superuser_reserved_connections')::int,
       coalesce(current_setting('reserved_connections', true), '0')::int,
       right(a.query, {TAIL_CHARS})
FROM pg_stat_activity a
WHERE a.backend_type = 'client backend'
   OR (a.backend_type IS NULL AND a.datname IS NOT NULL AND a.usename IS NOT NULL)
ORDER BY a.pid
"""

_STATES = {"active": ACTIVE, "idle": IDLE, "idle in transaction": IDLE_TXN,
           "idle in transaction (aborted)": IDLE_TXN_ABORTED}

TERMINATE = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE pid = :pid AND backend_start::text = :started")


class PostgresProbe(Probe):
    backend = "postgresql"

    def setup(self) -> None:
        rows = self.run("SELECT current_setting('server_version'), current_user, "
                        "pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') "
                        "OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), "
                        "pg_backend_pid()")
        self.version, self.user, self.sees_all = rows[0][0], rows[0][1], bool(rows[0][2])
        self.own_id = int(rows[0][3])

    def take(self, snap: Snapshot) -> None:
        rows = self.run(ACTIVITY)
        snap.queries += 1
        hidden = 0
        for r in rows:
            c = _conn(r)
            hidden += c.state == HIDDEN
            snap.conns.append(c)
        if rows:
            snap.max_connections = int(rows[0][16])
            snap.reserved = int(rows[0][17]) + int(rows[0][18])
        if hidden:
            snap.notes.append(
                f"{hidden} connection{'s' if hidden != 1 else ''} of other users show "
                f"{HIDDEN}: state, ages, client and query hidden; "
                f"grant pg_monitor to {self.user} to see them")

    def terminate(self, conn: ServerConn) -> str | None:
        if conn.backend_start is None:
            return "its start time is hidden (insufficient privilege)"
        try:
            rows = self.run(TERMINATE, {"pid": conn.id, "started": conn.backend_start})
        except Exception as e:
            return str(e)
        if not rows:
            return "already gone"
        return None if rows[0][0] else "pg_terminate_backend returned false"


def _conn(r: Any) -> ServerConn:
    query = r[11]
    raw_state = r[7]
    tags = None
    if raw_state is None and query == HIDDEN:
        state = HIDDEN
        query = None
    else:
        query, tags = read_tags(query, r[19] if len(r) > 19 else None)
        state = _STATES.get(raw_state or "", OTHER)
    client = r[3] or r[4] or ("local" if raw_state is not None else None)
    wait = f"{r[12]}:{r[13]}" if r[12] and state == ACTIVE else None
    return ServerConn(
        id=int(r[0]), user=r[1], database=r[2], client=client, client_port=r[5],
        application=r[6] or None, state=state,
        connected_s=_pos(r[8]), state_s=_pos(r[9]), xact_s=_pos(r[10]),
        query=clean_query(query) if query else None, wait=wait, own=bool(r[14]),
        backend_start=r[15], tags=tags)


def _pos(v: Any) -> float | None:
    return None if v is None else max(float(v), 0.0)
