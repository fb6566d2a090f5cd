"""Speed of `pooldoctor lint` on a large real tree, against pylint with only R1732 (one core).

    .venv/bin/python bench/lint_speed.py [TREE] [--repeat N] [--no-pylint]

TREE defaults to SQLAlchemy's installed source. Each tool runs as its own single-process
subprocess on the same files; CPU seconds come from the children's resource usage, so a busy
machine slows the wall clock but not the figures that matter. Prints lines/second and the ratio.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

TARGET = 50_000  # lines per second on one core


def default_tree() -> Path:
    import sqlalchemy

    return Path(sqlalchemy.__file__).parent


def count_lines(tree: Path) -> tuple[int, int]:
    files = [p for p in tree.rglob("*.py") if "__pycache__" not in p.parts]
    return len(files), sum(p.read_bytes().count(b"\n") for p in files)


def timed(cmd: list[str]) -> tuple[float, float, int]:
    """(wall s, cpu s, exit status) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONHASHSEED": "0"}, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode


def best(cmd: list[str], repeat: int) -> tuple[float, float, int]:
    runs = [timed(cmd) for _ in range(repeat)]
    return min(runs, key=lambda r: r[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tree", nargs="?", type=Path)
    ap.add_argument("--repeat", type=int, default=3, help="pooldoctor runs (best is kept)")
    ap.add_argument("--no-pylint", action="store_true")
    args = ap.parse_args()
    tree = (args.tree or default_tree()).resolve()
    nfiles, nlines = count_lines(tree)
    bindir = Path(sys.executable).parent
    print(f"tree: {tree} ({nfiles} files, {nlines} lines)")
    print(f"python {sys.version.split()[0]}, one process per tool, cpu = user+sys of the child")

    pd_cmd = [str(bindir / "pooldoctor"), "lint", "--isolated", "-q", "--exit-zero", str(tree)]
    wall, cpu, rc = best(pd_cmd, args.repeat)
    pd_rate = nlines / cpu
    print(f"pooldoctor lint      cpu {cpu:7.2f} s  wall {wall:7.2f} s  "
          f"{pd_rate:10,.0f} lines/s (cpu)  exit {rc}")

    ruff = bindir / "ruff"
    if ruff.exists():
        wall_r, cpu_r, _ = best([str(ruff), "check", "--isolated", "--no-cache", "--select",
                                 "SIM115", str(tree)], 1)
        print(f"ruff SIM115          cpu {cpu_r:7.2f} s  wall {wall_r:7.2f} s  "
              f"{nlines / cpu_r:10,.0f} lines/s (cpu, multi-threaded: cpu is the sum)")

    if not args.no_pylint:
        pl_cmd = [str(bindir / "pylint"), "--disable=all", "--enable=R1732", "--jobs=1",
                  "--persistent=n", "--score=n", str(tree)]
        wall_p, cpu_p, _ = timed(pl_cmd)
        print(f"pylint R1732 only    cpu {cpu_p:7.2f} s  wall {wall_p:7.2f} s  "
              f"{nlines / cpu_p:10,.0f} lines/s (cpu)")
        print(f"ratio: pooldoctor lint is {cpu_p / cpu:.1f}x faster than pylint R1732 (cpu)")
    verdict = "meets" if pd_rate >= TARGET else "MISSES"
    print(f"target {TARGET:,} lines/s on one core: {verdict}")
    return 0 if pd_rate >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
