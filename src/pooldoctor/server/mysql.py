"""MySQL 8 / MariaDB probe: the process list joined with InnoDB transactions, and one
status counter, per snapshot (two queries).

- Without ``PROCESS`` the process list holds only the login's own connections and InnoDB
  transactions are not readable: idle-in-transaction cannot be told from idle.
- With ``performance_schema`` off (MariaDB's default) program names (``program_name``
  connection attributes) are not visible: the application column stays empty.
- Neither server exposes when a connection was opened: ``connected_s`` stays unknown.
"""

from __future__ import annotations

from typing import Any

from ..dbconnect import is_permission_error
from .model import ACTIVE, IDLE, IDLE_TXN, OTHER, ServerConn, Snapshot
from .probe import Probe, ProbeQueryError
from .sql import QUERY_CHARS, TAIL_CHARS, clean_query, read_tags

_SYSTEM_COMMANDS = ("Daemon", "Binlog Dump", "Binlog Dump GTID", "Slave_IO", "Slave_SQL",
                    "Slave_worker", "Register Slave")
_SYSTEM_USERS = ("system user", "event_scheduler")
_IDLE_COMMANDS = ("Sleep",)
_OTHER_COMMANDS = ("Killed", "Connect", "Delayed insert")

STATUS = ("SHOW GLOBAL STATUS WHERE Variable_name IN "
          "('Connection_errors_max_connections', 'Max_used_connections')")


def _activity(time_expr: str, trx: bool, attrs: bool) -> str:
    cols = [
        "p.ID", "p.USER", "p.HOST", "p.DB", "p.COMMAND", time_expr, f"LEFT(p.INFO, {QUERY_CHARS})",
        "p.STATE", "p.ID = CONNECTION_ID()", "@@GLOBAL.max_connections",
        "TIMESTAMPDIFF(MICROSECOND, t.trx_started, NOW(6)) / 1000000" if trx else "NULL",
        "a.ATTR_VALUE" if attrs else "NULL",
        f"RIGHT(p.INFO, {TAIL_CHARS})",
    ]
    sql = f"SELECT {', '.join(cols)} FROM information_schema.PROCESSLIST p"
    if trx:
        sql += " LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID"
    if attrs:
        sql += (" LEFT JOIN performance_schema.session_connect_attrs a"
                " ON a.PROCESSLIST_ID = p.ID AND a.ATTR_NAME = 'program_name'")
    commands = ", ".join(f"'{c}'" for c in _SYSTEM_COMMANDS)
    users = ", ".join(f"'{u}'" for u in _SYSTEM_USERS)
    return f"{sql} WHERE p.COMMAND NOT IN ({commands}) AND p.USER NOT IN ({users}) ORDER BY p.ID"


class MySQLProbe(Probe):
    backend = "mysql"

    def setup(self) -> None:
        rows = self.run("SELECT VERSION(), CURRENT_USER(), @@performance_schema, CONNECTION_ID()")
        self.version, self.user = str(rows[0][0]), str(rows[0][1])
        self.own_id = int(rows[0][3])
        self.mariadb = "mariadb" in self.version.lower()
        perf = bool(int(rows[0][2] or 0))
        time_expr = "p.TIME_MS / 1000" if self.mariadb else "p.TIME"
        self.trx = self._can("SELECT COUNT(*) FROM information_schema.INNODB_TRX")
        attrs = perf and self._can(
            "SELECT COUNT(*) FROM performance_schema.session_connect_attrs")
        self.activity = _activity(time_expr, self.trx, attrs)
        if not self.trx:
            self.notes.append(
                f"no PROCESS privilege for {self.user}: only its own connections are listed "
                "and open transactions are not visible (idle in transaction shows as idle); "
                f"GRANT PROCESS ON *.* TO {self.user}")
        if not perf:
            self.notes.append(
                "performance_schema is off: program names (application) are not visible; "
                "attribution matches guarded processes by thread id only")
        elif not attrs:
            self.notes.append("performance_schema.session_connect_attrs is not readable: "
                              "program names (application) are not visible")

    def _can(self, sql: str) -> bool:
        try:
            self.run(sql)
        except ProbeQueryError as e:
            if is_permission_error(e.error):
                return False
            raise
        return True

    def take(self, snap: Snapshot) -> None:
        rows = self.run(self.activity)
        status = dict(self.run(STATUS))
        snap.queries += 2
        snap.conns.extend(_conn(r) for r in rows)
        if rows:
            snap.max_connections = int(rows[0][9])
        snap.reserved = 0  # MySQL keeps one extra slot for admins beyond max_connections
        rejected = status.get("Connection_errors_max_connections")
        snap.rejected_total = int(rejected) if rejected is not None else None

    def terminate(self, conn: ServerConn) -> str | None:
        try:
            self.run(f"KILL CONNECTION {int(conn.id)}")
        except ProbeQueryError as e:
            args = getattr(getattr(e.error, "orig", e.error), "args", ())
            if args and args[0] == 1094:  # unknown thread id
                return "already gone"
            return str(e)
        return None


def _conn(r: Any) -> ServerConn:
    command = str(r[4])
    xact_s = None if r[10] is None else max(float(r[10]), 0.0)
    if command in _IDLE_COMMANDS:
        state = IDLE_TXN if xact_s is not None else IDLE
    elif command in _OTHER_COMMANDS:
        state = OTHER
    else:
        state = ACTIVE
    host, port = _split_host(r[2])
    query = r[6] if state != IDLE else None
    if state == IDLE_TXN:
        query = None  # the process list only shows the running statement
    query, tags = read_tags(_text(query), _text(r[12]) if query and len(r) > 12 else None)
    return ServerConn(
        id=int(r[0]), user=r[1], database=r[3], client=host, client_port=port,
        application=_text(r[11]), state=state, connected_s=None,
        state_s=None if r[5] is None else max(float(r[5]), 0.0), xact_s=xact_s,
        query=clean_query(query) if query else None,
        wait=str(r[7]) if state == ACTIVE and r[7] else None, own=bool(r[8]), tags=tags)


def _text(v: Any) -> str | None:
    if v is None:
        return None
    return v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else str(v)


def _split_host(host: Any) -> tuple[str | None, int | None]:
    text = _text(host)
    if not text:
        return None, None
    head, sep, tail = text.rpartition(":")
    if sep and tail.isdigit():
        return head, int(tail)
    return text, None
