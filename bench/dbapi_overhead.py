"""Overhead of the raw-driver guard: ``connect()`` + ``close()`` against the bare driver.

The guarded side calls the global ``pooldoctor.instrument()`` with its defaults (what
``pooldoctor run`` installs) before the driver is used. Every side of every round is a fresh
process (see ``_ab.py``; ``uninstrument()`` between rounds used to leave state behind), sides
in rotating order, warm-up on both sides, CPU of the whole process (the watchdog included).
Two clocks: wall time (what the program feels, server round trips included) and process CPU
(the client's own work). "added cpu" below is the guard's extra CPU per connect as a share of
the bare wall time: the wall overhead the guard can cause, which the noise of a shared machine
does not swamp (the guard adds no round trip). ``--no-tag`` leaves out the process tag
(``application_name`` / ``program_name``) to see the hold alone.

    python bench/dbapi_overhead.py [--rounds 11] [--cycles 100] [--sqlite-cycles 20000]
                                   [--mysql URL | --no-mysql] [--pg URL | --no-pg] [--no-tag]
                                   [--callgrind]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from typing import Any

import _ab


def url_kwargs(url: str, dbname: str) -> dict[str, Any]:
    from pooldoctor.urls import parse_url

    u = parse_url(url)
    kw = {"host": u.host or "127.0.0.1", "port": u.port, "user": u.username,
          "password": u.password, dbname: u.database}
    return {k: v for k, v in kw.items() if v is not None}


def worker(case: str, side: str, n: int, url: str) -> None:
    if side == "guarded":
        import pooldoctor

        pooldoctor.instrument()
    op: Callable[[], Any]
    if case == "sqlite3":
        import sqlite3

        def op() -> None:
            sqlite3.connect(":memory:").close()
    elif case == "pymysql":
        import pymysql

        my = url_kwargs(url, "database")

        def op() -> None:
            pymysql.connect(**my).close()
    else:
        import psycopg

        pg = url_kwargs(url, "dbname")

        def op() -> None:
            psycopg.connect(**pg).close()
    _ab.emit(_ab.timed_loop(op, n, warm=max(n // 10, 5)))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--cycles", type=int, default=100, help="connects per process, servers")
    ap.add_argument("--sqlite-cycles", type=int, default=20000)
    ap.add_argument("--no-tag", action="store_true",
                    help="do not tag connections (POOLDOCTOR_NO_TAG=1): the hold alone")
    ap.add_argument("--mysql", default="mysql+pymysql://root@127.0.0.1:3306/test")
    ap.add_argument("--no-mysql", action="store_true")
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--callgrind", action="store_true", help="instructions per sqlite3 connect")
    args = ap.parse_args()
    if args.worker:
        case, side, n, url = args.worker
        worker(case, side, int(n), url)
        return 0
    env = {"POOLDOCTOR_NO_TAG": "1"} if args.no_tag else {}
    me = os.path.abspath(__file__)
    _ab.header(f"connect()+close(), bare vs instrument(); tag {'off' if args.no_tag else 'on'}",
               args.rounds)
    cases = [("sqlite3", "sqlite3 connect(':memory:')", args.sqlite_cycles, "")]
    if not args.no_mysql:
        cases.append(("pymysql", "PyMySQL", args.cycles, args.mysql))
    if not args.no_pg:
        cases.append(("psycopg", "psycopg 3", args.cycles, args.pg))
    for case, label, n, url in cases:
        def cmd(side: str, n: int = n, case: str = case, url: str = url) -> list[str]:
            return [_ab.PY, me, "--worker", case, side, str(n), url or "-"]

        results = _ab.ab({s: (cmd(s), env) for s in ("bare", "guarded")}, args.rounds)
        _ab.report(f"{label} ({n} per process)", results, clocks=("cpu", "wall"))
        added = statistics.median(g["cpu"] - b["cpu"] for b, g in
                                  zip(results["bare"], results["guarded"]))
        wall = statistics.median(b["wall"] for b in results["bare"])
        print(f"  added cpu {added * 1e6:+.1f} us per connect = {added / wall:.2%} of the bare "
              "wall time", flush=True)
        if args.callgrind and case == "sqlite3" and _ab.have_valgrind():
            k = max(n // 10, 500)
            ir = {s: _ab.instructions(lambda m, s=s: cmd(s, m), k, env)
                  for s in ("bare", "guarded")}
            print(f"  instructions per connect (callgrind): bare {ir['bare']:,.0f} | guarded "
                  f"{ir['guarded']:,.0f} ratio {ir['guarded'] / ir['bare']:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
