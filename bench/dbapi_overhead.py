"""Overhead of the raw-driver guard: wrapped connect()+close() against the bare driver, one run.

Rounds alternate bare / guarded (``pooldoctor.instrument()`` global, default options; the
guard is removed again between rounds, which puts the bare driver back), so machine noise hits
both sides alike. Two clocks:

- wall time (``time.perf_counter``): what the program feels, server round trips included;
- CPU time of this thread (``time.thread_time``): the client's own work, where the guard's
  cost is not diluted by waiting for the server (a harsher figure).

A ratio is the median over rounds of guarded/bare for the two sides of the same round (the
order of the sides alternates), so slow drift of a shared machine cancels out; "best-of" is
the ratio of the fastest round of each side (the least disturbed ones, as ``timeit``
recommends). The server drivers are the target (< 2 % in wall time). sqlite3
``connect(':memory:')`` is an in-process call of a few microseconds, so its ratio shows the
guard's absolute cost. "added cpu" is the guard's extra client CPU per cycle as a share of
the bare wall time: an estimate of the wall overhead that the noise of a shared machine does
not swamp (the guard adds no round trip). ``--no-tag`` leaves out the process tag
(``application_name`` / ``program_name``), to see the hold alone.

    python bench/dbapi_overhead.py [--cycles 50] [--sqlite-cycles 20000] [--rounds 15]
                                   [--mysql URL | --no-mysql] [--pg URL | --no-pg] [--no-tag]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import pooldoctor


def per_cycle(fn: Callable[[], None], cycles: int) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(cycles):
        fn()
    return (time.perf_counter() - w0) / cycles, (time.thread_time() - c0) / cycles


def measure(name: str, fn: Callable[[], None], cycles: int, rounds: int) -> dict[str, float]:
    """Median per-cycle times and the median of the per-round guarded/bare ratios."""
    for _ in range(max(cycles // 10, 5)):  # warm up both paths
        fn()
    pooldoctor.instrument(log=False, exit_check=False)
    for _ in range(max(cycles // 10, 5)):
        fn()
    pooldoctor.uninstrument()
    bare: list[tuple[float, float]] = []
    guarded: list[tuple[float, float]] = []
    for i in range(rounds):
        for side in ((0, 1) if i % 2 == 0 else (1, 0)):  # alternate the order against drift
            if side:
                pooldoctor.instrument(log=False, exit_check=False)
                guarded.append(per_cycle(fn, cycles))
                pooldoctor.uninstrument()
            else:
                bare.append(per_cycle(fn, cycles))
    out: dict[str, float] = {}
    parts = []
    for k, label in ((0, "wall"), (1, "cpu")):
        b = statistics.median(x[k] for x in bare)
        g = statistics.median(x[k] for x in guarded)
        ratio = statistics.median(gx[k] / bx[k] for bx, gx in zip(bare, guarded))
        best = min(x[k] for x in guarded) / min(x[k] for x in bare)
        out[f"{label}_ratio"] = ratio
        out[f"{label}_best_ratio"] = best
        parts.append(f"{label}: bare {b * 1e6:9.1f} us  guarded {g * 1e6:9.1f} us  "
                     f"ratio {ratio:6.3f} (best-of {best:6.3f})")
    added = statistics.median(gx[1] - bx[1] for bx, gx in zip(bare, guarded))
    bare_wall = statistics.median(x[0] for x in bare)
    out["cpu_added_us"] = added * 1e6
    out["cpu_added_of_wall"] = added / bare_wall
    parts.append(f"added cpu {added * 1e6:6.1f} us = {added / bare_wall:6.2%} of bare wall")
    print(f"{name:<30} " + " | ".join(parts), flush=True)
    return out


def url_args(url: str) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return {"host": u.host or "127.0.0.1", "port": u.port, "user": u.username,
            "password": u.password, "database": u.database}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=50, help="connects per round, servers")
    ap.add_argument("--sqlite-cycles", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--no-tag", action="store_true",
                    help="do not tag connections (POOLDOCTOR_NO_TAG=1): the hold alone")
    ap.add_argument("--mysql", default="mysql+pymysql://root@127.0.0.1:3306/test")
    ap.add_argument("--no-mysql", action="store_true")
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--no-pg", action="store_true")
    args = ap.parse_args()
    if args.no_tag:
        os.environ["POOLDOCTOR_NO_TAG"] = "1"
    print(f"python {sys.version.split()[0]}; {args.rounds} rounds alternating bare/guarded; "
          f"connect()+close() per cycle; tag {'off' if args.no_tag else 'on'}")

    import sqlite3

    def sqlite_cycle() -> None:
        sqlite3.connect(":memory:").close()

    measure("sqlite3 connect(':memory:')", sqlite_cycle, args.sqlite_cycles, args.rounds)

    if not args.no_mysql:
        import pymysql

        a = url_args(args.mysql)
        my = {k: v for k, v in a.items() if v is not None}

        def pymysql_cycle() -> None:
            pymysql.connect(**my).close()

        measure(f"PyMySQL {pymysql.VERSION_STRING}", pymysql_cycle, args.cycles, args.rounds)

    if not args.no_pg:
        import psycopg

        a = url_args(args.pg)
        a["dbname"] = a.pop("database")
        pg = {k: v for k, v in a.items() if v is not None}

        def psycopg_cycle() -> None:
            psycopg.connect(**pg).close()

        measure(f"psycopg {psycopg.__version__}", psycopg_cycle, args.cycles, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
