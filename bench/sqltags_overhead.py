"""Cost of statement tags (``tag_sql=True``) per statement, against untagged, in one run.

One guarded connection executes ``SELECT 1`` in a loop; short rounds (``--statements`` each)
alternate tags off / tags on (same engine, same guard, same connection), many times, so machine
noise hits both sides alike; the figure is the ratio of the medians. PostgreSQL is timed in
wall time (a round trip: the target is a ratio <= 1.02); SQLite in CPU time of this thread
(time.thread_time), which shows the tag's own cost with no network to hide it. With tags on,
every statement carries the comment, so the server also parses some 150 more bytes: that is
part of the PostgreSQL wall figure. The client's CPU time per PostgreSQL statement is printed
too: on a loaded machine the wall ratio swings by tens of percent from round to round, the CPU
time much less.

    python bench/sqltags_overhead.py [--statements 300] [--rounds 60] [--pg URL | --no-pg]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

import pooldoctor
from pooldoctor.runtime import sqltags


def per_statement(conn: Any, n: int, clock: Callable[[], float]) -> float:
    run = conn.exec_driver_sql
    t0 = clock()
    for _ in range(n):
        run("SELECT 1")
    return (clock() - t0) / n


def measure(label: str, url: str, n: int, rounds: int, clock: Callable[[], float]) -> None:
    engine = sa.create_engine(url)
    pooldoctor.instrument(engine, log=False, exit_check=False)
    try:
        with engine.connect() as conn:
            per_statement(conn, max(n // 10, 10), clock)  # warm up
            off: list[float] = []
            on: list[float] = []
            for i in range(rounds):  # off/on, then on/off: neither side always goes first
                for tagged in ((False, True) if i % 2 == 0 else (True, False)):
                    if tagged:
                        sqltags.enable([engine.dialect])
                        on.append(per_statement(conn, n, clock))
                    else:
                        sqltags.disable()
                        off.append(per_statement(conn, n, clock))
            sqltags.disable()
        base, tagged = statistics.median(off), statistics.median(on)
        spread = (min(b / a for a, b in zip(off, on, strict=True)),
                  max(b / a for a, b in zip(off, on, strict=True)))
        print(f"{label}: untagged {base * 1e6:8.2f} us/statement, tagged "
              f"{tagged * 1e6:8.2f} us/statement   ratio {tagged / base:5.3f} "
              f"(+{(tagged - base) * 1e6:.2f} us; per-round ratios {spread[0]:.3f}-"
              f"{spread[1]:.3f})", flush=True)
    finally:
        pooldoctor.uninstrument()
        engine.dispose()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--statements", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--no-pg", action="store_true")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, SQLAlchemy {sa.__version__}, {args.rounds} rounds "
          "alternating untagged / tagged, median per statement")
    measure("sqlite SELECT 1 (cpu)", "sqlite://", args.statements * 4, args.rounds,
            time.thread_time)
    if not args.no_pg:
        try:
            measure("postgresql SELECT 1 (wall)", args.pg, args.statements, args.rounds,
                    time.perf_counter)
            measure("postgresql SELECT 1 (client cpu)", args.pg, args.statements, args.rounds,
                    time.thread_time)
        except sa.exc.OperationalError as e:
            print(f"postgresql: not measured ({type(e).__name__}: {str(e).splitlines()[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
