"""Speed of `pooldoctor lint` on whole real trees against ruff and pylint, in the same run.

    .venv/bin/python bench/lint_speed.py [TREE ...] [--runs N] [--pylint-runs N] [--no-pylint]

TREEs default to the installed SQLAlchemy and Django sources (`pip install django` into the
venv). Every tool checks the same files as its own process: pooldoctor lint (the whole-project
pass, files in parallel on the machine's cores), ruff with its default rules, ruff with the rules
closest to pooldoctor's (RUFF_COMPARABLE below), and pylint with only R1732
(consider-using-with, its resource rule) on as many jobs as there are cores. One untimed warm-up
run of each tool first, then N timed rounds in alternated order (forward, then backward...).
Figures: median wall seconds with [min-max], lines per second of wall time (what a developer
waits for) and CPU seconds of the child (user+sys, less sensitive to other load).
A one-file run (what pre-commit does) is timed too: the CLI process on one file, and
pooldoctor's own work on it in-process.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET = 100_000  # lines per second of wall time, whole tree, this machine's cores
ONE_FILE_TARGET_MS = 100
RUFF_COMPARABLE = ("SIM115,S105,S106,S107,ASYNC210,ASYNC212,ASYNC220,ASYNC221,ASYNC222,"
                   "ASYNC230,ASYNC250,ASYNC251")  # files, hard-coded passwords, blocking calls
BIN = Path(sys.executable).parent


def default_trees() -> list[Path]:
    trees = []
    for name in ("sqlalchemy", "django"):
        try:
            module = __import__(name)
        except ImportError:
            print(f"({name} is not installed: skipped)")
            continue
        trees.append(Path(module.__file__).parent)  # type: ignore[arg-type]
    return trees


def count_lines(tree: Path) -> tuple[int, int]:
    files = [p for p in tree.rglob("*.py") if "__pycache__" not in p.parts]
    return len(files), sum(p.read_bytes().count(b"\n") for p in files)


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall s, cpu s of the child and its children) of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                   env={**os.environ, "PYTHONHASHSEED": "0"}, timeout=3600)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def commands(tree: Path, pylint: bool) -> dict[str, list[str]]:
    t = str(tree)
    cmds = {
        "pooldoctor lint": [str(BIN / "pooldoctor"), "lint", "--isolated", "-q", "--exit-zero",
                            t],
        "ruff (default rules)": [str(BIN / "ruff"), "check", "--isolated", "--no-cache",
                                 "--exit-zero", "-q", t],
        "ruff (comparable rules)": [str(BIN / "ruff"), "check", "--isolated", "--no-cache",
                                    "--exit-zero", "-q", "--select", RUFF_COMPARABLE, t],
    }
    if pylint:
        cmds["pylint R1732"] = [str(BIN / "pylint"), "--disable=all", "--enable=R1732",
                                f"--jobs={cores()}", "--persistent=n", "--score=n", t]
    return cmds


Samples = dict[str, list[tuple[float, float]]]


def rounds(cmds: dict[str, list[str]], runs: dict[str, int]) -> Samples:
    """Warm-up, then alternated rounds; a tool stops once it has its number of runs."""
    for cmd in cmds.values():
        timed(cmd)
    out: Samples = {name: [] for name in cmds}
    names = list(cmds)
    for r in range(max(runs.values())):
        order = names if r % 2 == 0 else list(reversed(names))
        for name in order:
            if len(out[name]) < runs[name]:
                out[name].append(timed(cmds[name]))
    return out


def show(name: str, samples: list[tuple[float, float]], lines: int) -> float:
    walls = [w for w, _ in samples]
    cpus = [c for _, c in samples]
    wall = statistics.median(walls)
    rate = lines / wall
    print(f"  {name:<24} wall {wall:7.2f} s [{min(walls):.2f}-{max(walls):.2f}]  "
          f"cpu {statistics.median(cpus):7.2f} s  {rate:11,.0f} lines/s (wall)  "
          f"n={len(samples)}")
    return wall


def one_file(path: Path, runs: int) -> None:
    """The pre-commit case: the CLI on one file, and pooldoctor's own work on it."""
    from pooldoctor.lint import lint_paths

    cli = [str(BIN / "pooldoctor"), "lint", "--isolated", "-q", "--exit-zero", str(path)]
    bare = [sys.executable, "-c", "pass"]
    timed(cli)
    walls = [timed(cli)[0] for _ in range(runs)]
    base = [timed(bare)[0] for _ in range(runs)]
    inproc, inproc_cpu = [], []
    lint_paths([str(path)])
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        lint_paths([str(path)])
        inproc.append(time.perf_counter() - start)
        inproc_cpu.append(time.process_time() - cpu)
    lines = path.read_bytes().count(b"\n")
    own = statistics.median(inproc) * 1000
    print(f"one file ({path.name}, {lines} lines):")
    print(f"  CLI process   {statistics.median(walls) * 1000:7.0f} ms [{min(walls) * 1000:.0f}-"
          f"{max(walls) * 1000:.0f}]  (python -c pass: {statistics.median(base) * 1000:.0f} ms)")
    print(f"  lint itself   {own:7.1f} ms wall, {statistics.median(inproc_cpu) * 1000:.1f} ms cpu"
          f"  (in-process lint_paths; target {ONE_FILE_TARGET_MS} ms wall: "
          f"{'meets' if own < ONE_FILE_TARGET_MS else 'MISSES'})")


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("trees", nargs="*", type=Path)
    ap.add_argument("--runs", type=int, default=5, help="timed runs of pooldoctor and ruff")
    ap.add_argument("--pylint-runs", type=int, default=3)
    ap.add_argument("--no-pylint", action="store_true")
    args = ap.parse_args()
    trees = [t.resolve() for t in args.trees] or default_trees()
    print(f"python {sys.version.split()[0]}, {cores()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at start; median wall [min-max] of alternated runs after a "
          f"warm-up")
    met = True
    for tree in trees:
        nfiles, nlines = count_lines(tree)
        print(f"\n{tree} ({nfiles} files, {nlines:,} lines)")
        cmds = commands(tree, not args.no_pylint)
        runs = {name: args.pylint_runs if name.startswith("pylint") else args.runs
                for name in cmds}
        results = rounds(cmds, runs)
        walls: dict[str, float] = {}
        for name, samples in results.items():
            walls[name] = show(name, samples, nlines)
        pd = walls["pooldoctor lint"]
        for name, wall in walls.items():
            if name != "pooldoctor lint":
                print(f"  {name} takes {wall / pd:.2f}x the wall time of pooldoctor lint")
        rate = nlines / pd
        met = met and rate >= TARGET
        print(f"  target {TARGET:,} lines/s (wall, {cores()} cores): "
              f"{'meets' if rate >= TARGET else 'MISSES'}")
    sample = Path(__file__).resolve().parents[1] / "tests" / "lint_corpus" / "pd201_dbapi.py"
    print()
    one_file(sample, args.runs)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
