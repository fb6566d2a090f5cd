"""Cost of statement tags (``tag_sql=True``) per statement, against untagged, in one run.

One guarded connection executes ``SELECT 1`` in a loop; short rounds (``--statements`` each)
alternate untagged / tagged (same engine, same guard, same connection), each side going first
in every other pair, after a warm-up of both sides, so machine noise hits both alike. Untagged
is what a user who does not ask for tags runs: no wrapper installed at all; tagged is the
steady state (the site's comment and the tagged statement built once, as in a long-running
program). Per round: wall time (``time.perf_counter``) and this process's CPU time
(``time.process_time``); the figures are the medians per statement, their ratio, and the
lowest and highest per-round ratio. With tags on, the server also parses some 150 more bytes
per statement: that is in the PostgreSQL wall figure.

``--callgrind`` adds the steady figure that machine load does not move: instructions per
statement counted by valgrind's callgrind in child processes (``PYTHONHASHSEED=0``, address
randomisation off), from two runs of different lengths per side, so start-up cancels out.

    python bench/sqltags_overhead.py [--statements 300] [--rounds 300] [--pg URL | --no-pg]
                                     [--callgrind [--cg-repeats 3]]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import sqlalchemy as sa

import pooldoctor
from pooldoctor.runtime import sqltags

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SQL = "SELECT 1"


def tags(dialect: Any, on: bool) -> None:
    """Tags on: the wrapper installed; off: no wrapper at all. The site caches are kept, as in
    a program that turned tags on once (``sqltags.enable`` / ``disable`` would clear them)."""
    if on:
        sqltags.enabled = True
        sqltags.wrap_dialect(dialect)
    else:
        sqltags.unwrap_dialects()
        sqltags.enabled = False


def run_round(conn: Any, n: int) -> tuple[float, float]:
    """(wall, process CPU) seconds per statement over ``n`` statements."""
    run = conn.exec_driver_sql
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        run(SQL)
    return (time.perf_counter() - w0) / n, (time.process_time() - c0) / n


def measure(label: str, url: str, n: int, rounds: int) -> None:
    engine = sa.create_engine(url)
    pooldoctor.instrument(engine, log=False, exit_check=False)
    try:
        with engine.connect() as conn:
            for on in (False, True, False, True):  # warm up both sides
                tags(engine.dialect, on)
                run_round(conn, n)
            sides: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
            for i in range(rounds):
                for on in ((False, True) if i % 2 == 0 else (True, False)):
                    tags(engine.dialect, on)
                    sides[on].append(run_round(conn, n))
            tags(engine.dialect, False)
        for k, what in ((0, "wall"), (1, "cpu")):
            off = [r[k] for r in sides[False]]
            on_ = [r[k] for r in sides[True]]
            base, tagged = statistics.median(off), statistics.median(on_)
            per_round = [b / a for a, b in zip(off, on_, strict=True)]
            print(f"{label} ({what}): untagged {base * 1e6:8.2f} us, tagged {tagged * 1e6:8.2f}"
                  f" us   ratio {tagged / base:5.3f} (+{(tagged - base) * 1e6:.2f} us; "
                  f"per-round ratios {min(per_round):.3f}-{max(per_round):.3f}, median "
                  f"{statistics.median(per_round):.3f})", flush=True)
    finally:
        pooldoctor.uninstrument()
        sqltags.disable()
        engine.dispose()


def child(url: str, n: int, on: bool) -> None:
    """One side, ``n`` statements after a warm-up, for callgrind to count."""
    engine = sa.create_engine(url)
    pooldoctor.instrument(engine, log=False, exit_check=False)
    with engine.connect() as conn:
        tags(engine.dialect, on)
        run_round(conn, 200)
        run_round(conn, n)
        tags(engine.dialect, False)
    pooldoctor.uninstrument()
    engine.dispose()


def instructions(url: str, n: int, on: bool) -> int:
    cmd = ["setarch", "-R", "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
           sys.executable, __file__, "--child", url, str(n), "1" if on else "0"]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ,
                       "PYTHONHASHSEED": "0"}, check=True)
    for line in r.stderr.splitlines():
        if "Collected :" in line:
            return int(line.rsplit(":", 1)[1].replace(",", "").strip())
    raise RuntimeError(f"no callgrind total in: {r.stderr[-500:]}")


def callgrind(label: str, url: str, short: int, long: int, repeats: int) -> None:
    per: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeats):
        for on in (False, True):
            a, b = instructions(url, short, on), instructions(url, long, on)
            per[on].append((b - a) / (long - short))
    base, tagged = statistics.median(per[False]), statistics.median(per[True])
    print(f"{label} (callgrind, {repeats} x {short}/{long} statements): untagged "
          f"{base:,.0f} instructions, tagged {tagged:,.0f}   +{tagged - base:,.0f} per statement"
          f" (ratio {tagged / base:.4f}; untagged runs {min(per[False]):,.0f}-"
          f"{max(per[False]):,.0f}, tagged {min(per[True]):,.0f}-{max(per[True]):,.0f})",
          flush=True)


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1")
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("--statements", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--pg", default=PG)
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--cg-repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, SQLAlchemy {sa.__version__}, {args.rounds} rounds "
          f"alternating untagged / tagged, medians per statement; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    targets = [("sqlite SELECT 1", "sqlite://", args.statements * 4)]
    if not args.no_pg:
        targets.append(("postgresql SELECT 1", args.pg, args.statements))
    for label, url, n in targets:
        try:
            measure(label, url, n, args.rounds)
        except sa.exc.OperationalError as e:
            print(f"{label}: not measured ({type(e).__name__}: {str(e).splitlines()[0]})")
    if args.callgrind:
        for label, url, _ in targets:
            short, long = (1000, 3000) if url.startswith("sqlite") else (500, 1500)
            callgrind(label, url, short, long, args.cg_repeats)
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
