"""Cost of the pytest plugin on a generated suite of 1,000 tests of which a tenth leak.

Every test checks out a connection (SQLite file, one session-scoped engine; half the tests use a
function-scoped connection fixture, half ``with engine.connect()``). Every tenth test leaks
(allowed by a ``pooldoctor_allow`` marker, so the run stays green and the check still runs in
full): alternately a raw ``sqlite3`` connection kept in a list (a PD105: the plugin must
collect to tell "still referenced" from "garbage") and a pooled connection dropped in a
reference cycle (a PD102 found by that collection). The conftest also keeps a heap of
``--heap`` container objects alive, standing in for a real application's modules and data:
that heap is what a full garbage collection walks, and what made the old per-leak full
collection expensive on real suites.

Three configurations, each run as a fresh pytest process; the order of the three is rotated
round by round so machine noise hits each alike:

- ``absent``:   ``-p no:pooldoctor`` (the plugin is not even loaded)
- ``disabled``: the plugin installed but not enabled (what every pooldoctor user gets)
- ``enabled``:  ``--pooldoctor`` (the guard on, every test checked)

Measured: CPU time (user + system) of the test loop, inside pytest by the generated conftest
(from the start to the end of ``pytest_runtestloop``), and of the rest of the process. Reported:
per round, the ratio against ``absent`` of the same round; over the rounds, the median ratio
with its spread (lowest and highest), and the median difference per test.

    python bench/pytest_plugin.py [--tests 1000] [--rounds 9] [--heap 300000] [--also SRC]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIGS = {
    "absent": ["-p", "no:pooldoctor"],
    "disabled": [],
    "enabled": ["--pooldoctor"],
}

CONFTEST = '''
import os
import time

import pytest
import sqlalchemy as sa

# a real application's heap (modules, caches, data): what a full collection walks
HEAP = [[i, (i,)] for i in range({heap} // 2)]


def pytest_configure(config):
    config.addinivalue_line("markers", "pooldoctor_allow: (declared for -p no:pooldoctor)")


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    t0 = time.process_time()
    try:
        return (yield)
    finally:
        with open(os.environ["PD_BENCH_LOOP"], "w") as fh:
            fh.write(repr(time.process_time() - t0))


@pytest.fixture(scope="session")
def db(tmp_path_factory):
    return str(tmp_path_factory.mktemp("db") / "bench.sqlite")


@pytest.fixture(scope="session")
def engine(db):
    e = sa.create_engine(f"sqlite:///{{db}}")
    yield e
    e.dispose()


@pytest.fixture
def conn(engine):
    with engine.connect() as c:
        yield c
'''

HEADER = '''import sqlite3

import pytest

KEPT = []
'''

KEEP = '''@pytest.mark.pooldoctor_allow(reason="the benchmark's leak")
def test_{n}(db):
    KEPT.append(sqlite3.connect(db))
'''

CYCLE = '''@pytest.mark.pooldoctor_allow(reason="the benchmark's leak")
def test_{n}(engine):
    c = engine.connect()
    c.exec_driver_sql("select 1")
    box = {{"c": c}}
    box["self"] = box
'''

WITH = '''def test_{n}(engine):
    with engine.connect() as c:
        c.exec_driver_sql("select 1")
'''

FIXTURE = '''def test_{n}(conn):
    conn.exec_driver_sql("select 1")
'''


def generate(root: Path, tests: int, heap: int, per_file: int = 100) -> int:
    """Write the suite; return how many tests leak."""
    (root / "conftest.py").write_text(CONFTEST.format(heap=heap))
    (root / "pytest.ini").write_text("[pytest]\n")
    n = f = leaks = 0
    while n < tests:
        parts = [HEADER]
        for _ in range(min(per_file, tests - n)):
            if n % 10 == 9:
                parts.append((KEEP if leaks % 2 else CYCLE).format(n=n))
                leaks += 1
            else:
                parts.append((WITH if n % 2 else FIXTURE).format(n=n))
            n += 1
        (root / f"test_gen_{f}.py").write_text("\n\n".join(parts))
        f += 1
    return leaks


def run(root: Path, extra: list[str], tests: int,
        pythonpath: str | None = None) -> tuple[float, float]:
    """(cpu seconds of the test loop, cpu seconds of the rest) of one pytest process."""
    loop_file = root / "loop.txt"
    env = {**os.environ, "PD_BENCH_LOOP": str(loop_file)}
    if pythonpath:  # another checkout's src/ first: its pooldoctor is the one imported
        env["PYTHONPATH"] = pythonpath
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-p", "no:hypothesispytest", "-p", "no:randomly", *extra, str(root)],
        capture_output=True, text=True, cwd=root, timeout=900, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or f"{tests} passed" not in proc.stdout:
        raise SystemExit(f"pytest {' '.join(extra)} failed:\n{proc.stdout[-2000:]}")
    total = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    loop = float(loop_file.read_text())
    return loop, total - loop


def spread(values: list[float], fmt: str) -> str:
    """``median [lowest, highest]``."""
    return (f"{format(statistics.median(values), fmt)} "
            f"[{format(min(values), fmt)}, {format(max(values), fmt)}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tests", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--heap", type=int, default=300_000,
                    help="container objects the conftest keeps alive (default 300000)")
    ap.add_argument("--also", metavar="SRC",
                    help="also run 'enabled' with the pooldoctor of another checkout's src/ "
                         "folder (e.g. an older commit), in the same rounds")
    args = ap.parse_args()
    configs = dict(CONFIGS)
    paths: dict[str, str | None] = {name: None for name in configs}
    if args.also:
        configs["other"] = CONFIGS["enabled"]
        paths["other"] = args.also
    with tempfile.TemporaryDirectory(prefix="pd-bench-pytest-") as tmp:
        root = Path(tmp)
        leaks = generate(root, args.tests, args.heap)
        print(f"pytest plugin overhead: {args.tests} tests ({leaks} leak), heap {args.heap} "
              f"objects, {args.rounds} rounds (python {sys.version.split()[0]}, "
              f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f})")
        run(root, CONFIGS["absent"], args.tests)  # warm caches (bytecode, page cache)
        if args.also:
            print(f"other: enabled, with pooldoctor from {args.also}")
        loops: dict[str, list[float]] = {k: [] for k in configs}
        rests: dict[str, list[float]] = {k: [] for k in configs}
        names = list(configs)
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]  # rotated each round
            for name in order:
                loop, rest = run(root, configs[name], args.tests, paths[name])
                loops[name].append(loop)
                rests[name].append(rest)
        print(f"{'config':<10} {'test loop ms':>14} {'ratio vs absent, per round':>32} "
              f"{'us/test':>8} {'rest of process ms':>20}")
        base_l, base_r = loops["absent"], rests["absent"]
        for name in configs:
            ratios = [a / b for a, b in zip(loops[name], base_l)]
            per_test = [(a - b) / args.tests * 1e6 for a, b in zip(loops[name], base_l)]
            print(f"{name:<10} {statistics.median(loops[name]) * 1e3:14.0f} "
                  f"{spread(ratios, '.3f'):>32} {statistics.median(per_test):+8.0f} "
                  f"{statistics.median(rests[name]) * 1e3:14.0f} "
                  f"({statistics.median([a - b for a, b in zip(rests[name], base_r)]) * 1e3:+.0f})")
        print("ratio: median over the rounds of (config / absent of the same round), "
              "[lowest, highest]; us/test and (+ms): median differences against absent")


if __name__ == "__main__":
    main()
