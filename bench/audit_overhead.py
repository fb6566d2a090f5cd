"""Cost of the SQL audit log per statement, against a process that never had it.

One connection executes ``SELECT 1`` in a loop. Every side of every round is a fresh process
(see ``_ab.py``): the "off" side never enabled the audit (an earlier ``enable()`` used to leave
SQLAlchemy's event marks behind and slow it), sides run in rotating order, each warms up
before it is timed (the audit sides with the audit on), CPU is the whole process's. The audit
writes to a file in a temporary directory. Sides:

- ``off``: no audit; ``all``: every statement written; ``sample=0.01``: 1 in 100 written;
  ``slow-only``: ``slow_ms=1000, sample=0`` (only slow or failed statements: none here);
- ``after-disable``: ``enable()`` then ``disable()`` before the loop: must cost nothing.

``--callgrind`` adds instructions per statement (SQLite; steady on a shared machine).

    python bench/audit_overhead.py [--rounds 9] [--statements 20000] [--pg-statements 2000]
                                   [--pg URL | --no-pg] [--callgrind]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any

import _ab

CONFIGS: dict[str, dict[str, Any] | None] = {
    "off": None,
    "all": {},
    "sample=0.01": {"sample": 0.01},
    "slow-only": {"slow_ms": 1000.0, "sample": 0.0},
    "after-disable": {},
}


def worker(side: str, n: int, url: str) -> None:
    import sqlalchemy as sa

    from pooldoctor import audit

    with tempfile.TemporaryDirectory() as tmp:
        engine = sa.create_engine(url)
        kw = CONFIGS[side]
        if kw is not None:
            audit.enable(os.path.join(tmp, "audit.jsonl"), **kw)
            if side == "after-disable":
                audit.disable()
        with engine.connect() as conn:
            run = conn.exec_driver_sql
            result = _ab.timed_loop(lambda: run("SELECT 1"), n)
        audit.disable()
        engine.dispose()
    _ab.emit(result)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--statements", type=int, default=20000)
    ap.add_argument("--pg-statements", type=int, default=2000)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--callgrind", action="store_true")
    args = ap.parse_args()
    if args.worker:
        side, n, url = args.worker
        worker(side, int(n), url)
        return 0
    me = os.path.abspath(__file__)
    _ab.header("SELECT 1 on one connection, no audit vs audit", args.rounds)
    targets = [("sqlite SELECT 1", "sqlite://", args.statements, ("cpu",))]
    if not args.no_pg:
        targets.append(("postgresql SELECT 1", args.pg, args.pg_statements, ("cpu", "wall")))
    for label, url, n, clocks in targets:
        def cmd(side: str, n: int = n, url: str = url) -> list[str]:
            return [_ab.PY, me, "--worker", side, str(n), url]

        results = _ab.ab({s: (cmd(s), {}) for s in CONFIGS}, args.rounds)
        _ab.report(f"{label} ({n} per process)", results, base="off", clocks=clocks)
        if args.callgrind and url.startswith("sqlite") and _ab.have_valgrind():
            k = max(n // 4, 500)
            ir = {s: _ab.instructions(lambda m, s=s: cmd(s, m), k) for s in CONFIGS}
            print("  instructions per statement (callgrind): " + " | ".join(
                f"{s} {v:,.0f}" + ("" if s == "off" else f" ratio {v / ir['off']:.3f}")
                for s, v in ir.items()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
