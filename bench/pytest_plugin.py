"""Cost of the pytest plugin on a generated suite of 1,000 tests that each check out a
connection (SQLite file, one session-scoped engine; half the tests use a function-scoped
connection fixture, half ``with engine.connect()``).

Three configurations, run as separate pytest processes, alternating round by round so machine
noise hits each alike:

- ``absent``:   ``-p no:pooldoctor`` (the plugin is not even loaded)
- ``disabled``: the plugin installed but not enabled (what every pooldoctor user gets)
- ``enabled``:  ``--pooldoctor`` (the guard on, every test checked)

Two figures per run, both CPU time (user + system), which a shared machine disturbs less than
wall time: the test loop (measured inside pytest by the generated conftest, from the start to
the end of ``pytest_runtestloop``: every test's setup, call and teardown), and the rest of the
process (start, plugin loading, collection, summary). Reported: the minimum and the median
over the rounds, ratios against ``absent``, and the difference per test and per process.

    python bench/pytest_plugin.py [--tests 1000] [--rounds 9]
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


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    t0 = time.process_time()
    try:
        return (yield)
    finally:
        with open(os.environ["PD_BENCH_LOOP"], "w") as fh:
            fh.write(repr(time.process_time() - t0))


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    e = sa.create_engine(f"sqlite:///{tmp_path_factory.mktemp('db') / 'bench.sqlite'}")
    yield e
    e.dispose()


@pytest.fixture
def conn(engine):
    with engine.connect() as c:
        yield c
'''


def generate(root: Path, tests: int, per_file: int = 100) -> None:
    (root / "conftest.py").write_text(CONFTEST)
    (root / "pytest.ini").write_text("[pytest]\n")
    n = 0
    f = 0
    while n < tests:
        lines = []
        for _ in range(min(per_file, tests - n)):
            if n % 2:
                lines.append(f"def test_{n}(engine):\n    with engine.connect() as c:\n"
                             "        c.exec_driver_sql('select 1')\n")
            else:
                lines.append(f"def test_{n}(conn):\n    conn.exec_driver_sql('select 1')\n")
            n += 1
        (root / f"test_gen_{f}.py").write_text("\n\n".join(lines))
        f += 1


def run(root: Path, extra: list[str], tests: int) -> tuple[float, float]:
    """(cpu seconds of the test loop, cpu seconds of the rest) of one pytest process."""
    loop_file = root / "loop.txt"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-p", "no:hypothesispytest", "-p", "no:randomly", *extra, str(root)],
        capture_output=True, text=True, cwd=root, env={**os.environ,
                                                       "PD_BENCH_LOOP": str(loop_file)})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or f"{tests} passed" not in proc.stdout:
        raise SystemExit(f"pytest {' '.join(extra)} failed:\n{proc.stdout[-2000:]}")
    total = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    loop = float(loop_file.read_text())
    return loop, total - loop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tests", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pd-bench-pytest-") as tmp:
        root = Path(tmp)
        generate(root, args.tests)
        print(f"pytest plugin overhead: {args.tests} tests, {args.rounds} rounds "
              f"(python {sys.version.split()[0]}, {os.cpu_count()} cpus, "
              f"load {os.getloadavg()[0]:.1f})")
        run(root, CONFIGS["absent"], args.tests)  # warm caches (bytecode, page cache)
        loops: dict[str, list[float]] = {k: [] for k in CONFIGS}
        rests: dict[str, list[float]] = {k: [] for k in CONFIGS}
        for _ in range(args.rounds):
            for name, extra in CONFIGS.items():
                loop, rest = run(root, extra, args.tests)
                loops[name].append(loop)
                rests[name].append(rest)
        print(f"{'':<10} {'test loop cpu (min / median)':>34} {'rest of process cpu':>28}")
        print(f"{'config':<10} {'ms':>8} {'ratio':>7} {'us/test':>8} {'median':>8} "
              f"{'ms':>8} {'+ms':>6} {'median':>8}")
        lo0, lm0 = min(loops["absent"]), statistics.median(loops["absent"])
        ro0, rm0 = min(rests["absent"]), statistics.median(rests["absent"])
        for name in CONFIGS:
            lo, lm = min(loops[name]), statistics.median(loops[name])
            ro, rm = min(rests[name]), statistics.median(rests[name])
            print(f"{name:<10} {lo * 1e3:8.0f} {lo / lo0:7.3f} "
                  f"{(lo - lo0) / args.tests * 1e6:+8.0f} {lm / lm0:8.3f} "
                  f"{ro * 1e3:8.0f} {(ro - ro0) * 1e3:+6.0f} {rm / rm0:8.3f}")
        print("ratio, us/test and +ms against 'absent' on the minimum; 'median' columns: ratio "
              "of medians")


if __name__ == "__main__":
    main()
