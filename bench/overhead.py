"""Overhead of the runtime guard against bare SQLAlchemy, in one run.

Rounds alternate bare / guarded (instrument() with the default configuration, global) so
that machine noise hits both sides alike; the figure is the median of the per-round ratios
(each guarded round against the bare round just before it: slow drifts cancel), with the
spread of those ratios (interquartile range). In-process
loops (SQLite) are timed in CPU time of the benchmark thread (time.thread_time), which other
processes on a busy machine barely disturb; the PostgreSQL round trip is timed in wall time,
since waiting for the server is the point of that figure.

    python bench/overhead.py [--cycles 20000] [--rounds 7] [--pg-rounds N] [--pg URL | --no-pg]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import sqlalchemy as sa

import pooldoctor


def per_cycle(fn: Callable[[], None], cycles: int, clock: Callable[[], float]) -> float:
    t0 = clock()
    for _ in range(cycles):
        fn()
    return (clock() - t0) / cycles


def measure(name: str, fn: Callable[[], None], cycles: int, rounds: int,
            clock: Callable[[], float] = time.thread_time) -> tuple[float, float]:
    for _ in range(max(cycles // 10, 10)):  # warm up both paths
        fn()
    bare: list[float] = []
    guarded: list[float] = []
    for _ in range(rounds):
        bare.append(per_cycle(fn, cycles, clock))
        pooldoctor.instrument(log=False, exit_check=False)
        guarded.append(per_cycle(fn, cycles, clock))
        pooldoctor.uninstrument()
    b, g = statistics.median(bare), statistics.median(guarded)
    ratios = sorted(gi / bi for bi, gi in zip(bare, guarded))
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
    print(f"{name:<48} bare {b * 1e6:8.2f} us   guarded {g * 1e6:8.2f} us   "
          f"ratio {statistics.median(ratios):5.3f} (IQR {q1:5.3f}-{q3:5.3f})", flush=True)
    return b, g


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--pg-rounds", type=int, default=None,
                    help="rounds for the PostgreSQL figure (default: --rounds)")
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--no-pg", action="store_true")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, SQLAlchemy {sa.__version__}, "
          f"{args.rounds} rounds alternating bare/guarded, median per cycle")
    with tempfile.TemporaryDirectory() as tmp:
        engine = sa.create_engine(f"sqlite:///{tmp}/bench.db")
        pool = engine.pool

        def pool_cycle() -> None:
            pool.connect().close()

        def engine_cycle() -> None:
            engine.connect().close()

        def sqlite_select() -> None:
            with engine.connect() as c:
                c.exec_driver_sql("SELECT 1")

        measure("sqlite: pool.connect()/close()", pool_cycle, args.cycles, args.rounds)
        measure("sqlite: engine.connect()/close()", engine_cycle, args.cycles, args.rounds)
        measure("sqlite: connect + SELECT 1 + close", sqlite_select, args.cycles, args.rounds)
        engine.dispose()
    if not args.no_pg:
        pg = sa.create_engine(args.pg)

        def pg_select() -> None:
            with pg.connect() as c:
                c.exec_driver_sql("SELECT 1")

        measure("postgresql: connect + SELECT 1 + close (wall)", pg_select,
                max(args.cycles // 10, 500), args.pg_rounds or args.rounds,
                clock=time.perf_counter)
        pg.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
