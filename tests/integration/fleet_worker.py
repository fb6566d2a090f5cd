"""A guarded worker of the fleet tests: leaks connections at known lines, then waits.

Run as ``pooldoctor run --tag-sql -- python fleet_worker.py URL``. It holds three connections:
one idle in a transaction (its last statement is tagged), one running a long statement (the
only state MariaDB's process list shows a statement for) and one idle after a commit. It prints
one JSON line (its pid and host name as it sees them, the server ids, the checkout lines) and
waits for stdin to close.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading

import sqlalchemy as sa


def server_id(conn: sa.Connection) -> int:
    sql = "SELECT pg_backend_pid()" if conn.dialect.name == "postgresql" else \
        "SELECT CONNECTION_ID()"
    return int(conn.exec_driver_sql(sql).scalar_one())


def main() -> None:
    url = sys.argv[1]
    engine = sa.create_engine(url, pool_size=3, max_overflow=0)
    sleep = "SELECT pg_sleep(60)" if engine.dialect.name == "postgresql" else "SELECT SLEEP(60)"
    lines = {}

    idle = engine.connect()  # LEAK-IDLE-TXN
    lines["idle_txn"] = _line("LEAK-IDLE-TXN")
    idle_id = server_id(idle)
    idle.exec_driver_sql("SELECT 1")  # leaves it idle in a transaction, last statement tagged

    busy = engine.connect()  # LEAK-ACTIVE
    lines["active"] = _line("LEAK-ACTIVE")
    busy_id = server_id(busy)
    busy.commit()
    threading.Thread(target=_run, args=(busy, sleep), daemon=True).start()

    spare = engine.connect()  # LEAK-IDLE
    lines["idle"] = _line("LEAK-IDLE")
    spare_id = server_id(spare)
    spare.commit()  # idle outside a transaction: its last statement is COMMIT, untagged

    print(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "lines": lines,
                      "ids": {"idle_txn": idle_id, "active": busy_id, "idle": spare_id}}),
          flush=True)
    sys.stdin.read()  # hold them until the test is done
    os._exit(0)


def _run(conn: sa.Connection, sql: str) -> None:
    try:
        conn.exec_driver_sql(sql)
    except Exception:
        pass


def _line(marker: str) -> int:
    with open(__file__, encoding="utf-8") as fh:
        for n, text in enumerate(fh, 1):
            if text.rstrip().endswith(f"# {marker}"):
                return n
    raise LookupError(marker)


if __name__ == "__main__":
    main()
