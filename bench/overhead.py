"""Overhead of the runtime guard against bare SQLAlchemy: what a user of `pooldoctor run` pays.

The guarded side calls the global ``pooldoctor.instrument()`` with its defaults before the
engine exists (as ``pooldoctor run`` does): pool hooks, transaction hooks, the driver
wrappers, the watchdog thread. Each side of each round is a fresh process (see ``_ab.py``),
warmed up before it is timed, sides in rotating order; CPU is the whole process's
(``time.process_time``, the watchdog thread included). Sides:

- ``bare``: SQLAlchemy alone;
- ``guarded``: ``instrument()`` with the C hot path (``pooldoctor._speedups``) when built;
- ``guarded-py``: the same with ``POOLDOCTOR_NO_SPEEDUPS=1`` (what Python 3.10 without a
  compiler, or PyPy, runs); ``--no-py`` leaves it out.

``--callgrind`` adds instructions per operation for each side (steady on a shared machine);
``--gc`` counts them with the cyclic garbage collector on (its share of what users pay).

    python bench/overhead.py [--rounds 11] [--cycles 20000] [--pg-cycles 2000]
                             [--pg URL | --no-pg] [--no-py] [--callgrind [--gc]]
                             [--only CASE]
    python bench/overhead.py --worker CASE SIDE N [URL]      (one process of one side)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import _ab

CASES = {
    "pool": "sqlite: pool.connect()/close()",
    "engine": "sqlite: engine.connect()/close()",
    "select": "sqlite: connect + SELECT 1 + close",
    "pg": "postgresql: connect + SELECT 1 + close",
}
SIDES: dict[str, dict[str, str]] = {
    "bare": {},
    "guarded": {},
    "guarded-py": {"POOLDOCTOR_NO_SPEEDUPS": "1"},
}


def worker(case: str, side: str, n: int, url: str) -> None:
    if side != "bare":
        import pooldoctor

        pooldoctor.instrument()  # the global guard, defaults: what `pooldoctor run` installs
    import sqlalchemy as sa

    with tempfile.TemporaryDirectory() as tmp:
        engine = sa.create_engine(url if case == "pg" else f"sqlite:///{tmp}/bench.db")
        op: Callable[[], Any]
        if case == "pool":
            pool = engine.pool

            def op() -> None:
                pool.connect().close()
        elif case == "engine":
            def op() -> None:
                engine.connect().close()
        else:
            def op() -> None:
                with engine.connect() as c:
                    c.exec_driver_sql("SELECT 1")
        result = _ab.timed_loop(op, n)
        engine.dispose()
    _ab.emit(result)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--cycles", type=int, default=20000, help="operations per SQLite process")
    ap.add_argument("--pg-cycles", type=int, default=2000, help="operations per PG process")
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--no-py", action="store_true", help="leave out the pure-Python guard")
    ap.add_argument("--only", choices=list(CASES), action="append")
    ap.add_argument("--callgrind", action="store_true",
                    help="also count instructions per operation with callgrind")
    ap.add_argument("--gc", action="store_true",
                    help="callgrind with the cyclic GC on after the warm-up's full collection")
    args = ap.parse_args()
    if args.worker:
        case, side, n, *url = args.worker
        worker(case, side, int(n), url[0] if url else "")
        return 0
    sides = {k: v for k, v in SIDES.items() if not (args.no_py and k == "guarded-py")}
    cases = args.only or [c for c in CASES if not (args.no_pg and c == "pg")]
    _ab.header("bare vs the global instrument()", args.rounds)
    me = os.path.abspath(__file__)
    for case in cases:
        n = args.pg_cycles if case == "pg" else args.cycles

        def cmd(side: str, n: int = n, case: str = case) -> list[str]:
            return [_ab.PY, me, "--worker", case, side, str(n), args.pg]

        results = _ab.ab({s: (cmd(s), env) for s, env in sides.items()}, args.rounds)
        _ab.report(f"{CASES[case]} ({n} per process)", results,
                   clocks=("cpu", "wall") if case == "pg" else ("cpu",))
        if args.callgrind and _ab.have_valgrind():
            k = max(n // 20, 200)
            genv = {"BENCH_GC": "1"} if args.gc else {}
            ir = {s: _ab.instructions(lambda m, s=s: cmd(s, m), k, {**env, **genv})
                  for s, env in sides.items()}
            print("  instructions per operation (callgrind): " + " | ".join(
                f"{s} {v:,.0f}" + ("" if s == "bare" else f" ratio {v / ir['bare']:.3f}")
                for s, v in ir.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
