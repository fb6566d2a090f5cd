"""Cost of the SQL audit log per statement, against no audit, in one run.

One connection executes ``SELECT 1`` in a loop. Rounds alternate: no audit, then each audit
configuration, so machine noise hits every side alike; the figure is the ratio of medians.
SQLite (in-process) is timed in CPU time of this thread (time.thread_time), which other
processes on a busy machine barely disturb; PostgreSQL in wall time (the round trip is the
point). The audit writes to a file in a temporary directory.

Configurations: ``all`` (every statement written), ``sample=0.01`` (1 in 100 written),
``slow_ms=1000`` with ``sample=0`` (only slow or failed statements: none here).

    python bench/audit_overhead.py [--statements 20000] [--rounds 7] [--pg URL | --no-pg]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from pooldoctor import audit

CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("all", {}),
    ("sample=0.01", {"sample": 0.01}),
    ("slow_ms=1000 sample=0", {"slow_ms": 1000.0, "sample": 0.0}),
]


def per_statement(conn: Any, n: int, clock: Callable[[], float]) -> float:
    run = conn.exec_driver_sql
    t0 = clock()
    for _ in range(n):
        run("SELECT 1")
    return (clock() - t0) / n


def measure(label: str, engine: sa.Engine, n: int, rounds: int, path: str,
            clock: Callable[[], float]) -> None:
    with engine.connect() as conn:
        per_statement(conn, max(n // 10, 10), clock)  # warm up
        times: dict[str, list[float]] = {"off": [], **{name: [] for name, _ in CONFIGS}}
        for _ in range(rounds):
            times["off"].append(per_statement(conn, n, clock))
            for name, kw in CONFIGS:
                audit.enable(path, **kw)
                times[name].append(per_statement(conn, n, clock))
                audit.disable()
            if os.path.exists(path):
                os.truncate(path, 0)
    base = statistics.median(times["off"])
    print(f"{label}: no audit {base * 1e6:8.2f} us/statement", flush=True)
    for name, _ in CONFIGS:
        t = statistics.median(times[name])
        print(f"  audit {name:<24} {t * 1e6:8.2f} us/statement   ratio {t / base:5.3f}   "
              f"(+{(t - base) * 1e6:.2f} us)", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--statements", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--no-pg", action="store_true")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, SQLAlchemy {sa.__version__}, {args.rounds} rounds "
          "alternating no audit / audit, median per statement")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "audit.jsonl")
        sqlite = sa.create_engine("sqlite://")
        measure("sqlite SELECT 1 (cpu)", sqlite, args.statements, args.rounds, path,
                time.thread_time)
        sqlite.dispose()
        if not args.no_pg:
            pg = sa.create_engine(args.pg)
            measure("postgresql SELECT 1 (wall)", pg, max(args.statements // 10, 500),
                    args.rounds, path, time.perf_counter)
            pg.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
