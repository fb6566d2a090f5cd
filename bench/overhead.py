"""Overhead of the runtime guard against bare SQLAlchemy, in one run.

Rounds alternate bare / guarded (instrument() with the default configuration, global) so
that machine noise hits both sides alike; the figure is the median of the per-round ratios
(each guarded round against the bare round next to it, in the orders AB, BA, AB...: slow
drifts and order effects cancel), with the spread of those ratios (interquartile range). In-process
loops (SQLite) are timed in CPU time of the benchmark thread (time.thread_time), which other
processes on a busy machine barely disturb; the PostgreSQL round trip is timed in wall time,
since waiting for the server is the point of that figure.

    python bench/overhead.py [--cycles 20000] [--rounds 7] [--pg-rounds 201] [--pg-cycles 200]
                             [--pg URL | --no-pg]
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

    def timed_guarded() -> float:
        pooldoctor.instrument(log=False, exit_check=False)
        try:
            return per_cycle(fn, cycles, clock)
        finally:
            pooldoctor.uninstrument()

    for i in range(rounds):  # pairs in the order AB, BA, AB...: what comes first or second
        if i % 2 == 0:  # in a pair (a warmer cache, the watchdog's start) favours neither
            bare.append(per_cycle(fn, cycles, clock))
            guarded.append(timed_guarded())
        else:
            guarded.append(timed_guarded())
            bare.append(per_cycle(fn, cycles, clock))
    b, g = statistics.median(bare), statistics.median(guarded)
    ratios = sorted(gi / bi for bi, gi in zip(bare, guarded))
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
    print(f"{name:<48} bare {b * 1e6:8.2f} us   guarded {g * 1e6:8.2f} us   "
          f"ratio {statistics.median(ratios):5.3f} (IQR {q1:5.3f}-{q3:5.3f})", flush=True)
    return b, g


def interleaved(url: str, pairs: int) -> None:
    """The PostgreSQL round trip, bare and guarded cycle by cycle.

    On a small VM the loopback round trip drifts by several percent from one block of
    cycles to the next (the host's scheduling; a block that follows a pause runs faster),
    more than the guard's cost. Here two engines on the same database take turns, one cycle
    each, in the orders AB, BA, AB...: every guarded cycle has a bare neighbour run under the
    same conditions. Each engine has its own server process, and one may run faster than the
    other: the guard is on engine 1 for the first half of the pairs and on engine 2 for the
    second, and the figure is the geometric mean of the two halves' ratios (the engines' own
    difference cancels). The guarded engine has the runtime guard (``instrument(engine)``:
    pool, transactions, watchdog); the global driver hooks are not on this path (they wrap
    ``cursor()``; the SQLite lines above have them).
    """
    engines = (sa.create_engine(url), sa.create_engine(url))

    def cycle(engine: sa.Engine) -> None:
        with engine.connect() as c:
            c.exec_driver_sql("SELECT 1")

    def half(guarded_engine: sa.Engine, bare_engine: sa.Engine, n: int) -> tuple[float, float]:
        pooldoctor.instrument(guarded_engine, log=False, exit_check=False)
        try:
            for _ in range(200):
                cycle(bare_engine)
                cycle(guarded_engine)
            clock = time.perf_counter
            bare: list[float] = []
            guarded: list[float] = []
            for i in range(n):
                first, second = ((bare_engine, bare), (guarded_engine, guarded))[::1 - 2 * (i % 2)]
                t0 = clock()
                cycle(first[0])
                t1 = clock()
                cycle(second[0])
                t2 = clock()
                first[1].append(t1 - t0)
                second[1].append(t2 - t1)
        finally:
            pooldoctor.uninstrument()
        return (statistics.median(guarded) / statistics.median(bare),
                sum(guarded) / sum(bare))

    try:
        m1, s1 = half(engines[0], engines[1], pairs // 2)
        m2, s2 = half(engines[1], engines[0], pairs // 2)
    finally:
        for e in engines:
            e.dispose()
    print(f"{'postgresql: interleaved cycle by cycle (wall)':<48} ratio {(m1 * m2) ** 0.5:5.3f} "
          f"(medians; halves {m1:5.3f} {m2:5.3f}), means {(s1 * s2) ** 0.5:5.3f} "
          f"(halves {s1:5.3f} {s2:5.3f}), {pairs} pairs", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--pg-rounds", type=int, default=31,
                    help="bare/guarded pairs of blocks for the PostgreSQL figure")
    ap.add_argument("--pg-cycles", type=int, default=2000,
                    help="cycles per block for the PostgreSQL figure")
    ap.add_argument("--pg-pairs", type=int, default=20000,
                    help="bare/guarded pairs of single cycles for the interleaved figure")
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
                args.pg_cycles, args.pg_rounds, clock=time.perf_counter)
        pg.dispose()
        interleaved(args.pg, args.pg_pairs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
