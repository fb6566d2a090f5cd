"""Fresh-process A/B measurement shared by the benchmarks.

Every side of a comparison runs in a process of its own (state left by one side, such as an
event listener's mark or a class that was swapped, cannot slow or speed the other), the order
of the sides rotates from one round to the next, each process warms up before it is timed, and
the headline is the median of the per-round ratios with its spread (min-max of the rounds).
Times are taken in the worker: wall time and the CPU time of the whole process
(``time.process_time``: the watchdog thread the guard starts is counted).

``instructions()`` runs a worker under callgrind twice (n and 2n operations) and returns the
instructions per operation (the difference, so that start-up and warm-up cancel): on a shared
machine this is the steady figure.
"""

from __future__ import annotations

import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

Timing = dict[str, float]


def timed_loop(op: Callable[[], Any], n: int, warm: int | None = None) -> Timing:
    """Warm up, then time ``n`` calls of ``op``: seconds per call, wall and process CPU."""
    if warm is None:  # callgrind runs fix it, so that n and 2n differ by n operations only
        warm = int(os.environ.get("BENCH_WARM", 0)) or max(n // 10, 20)
    for _ in range(warm):
        op()
    if os.environ.get("BENCH_WARM"):  # a callgrind run: no full collection at a random point
        gc.collect()  # (one is tens of millions of instructions, more than n operations)
        if not os.environ.get("BENCH_GC"):  # BENCH_GC=1: the young collections are counted
            gc.disable()
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        op()
    return {"wall": (time.perf_counter() - w0) / n, "cpu": (time.process_time() - c0) / n}


def emit(result: Timing) -> None:
    """A worker's last line: its result as JSON."""
    print(json.dumps(result), flush=True)


def run_worker(cmd: Sequence[str], env: dict[str, str] | None = None,
               timeout: float = 600) -> Timing:
    out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, **(env or {})})
    if out.returncode != 0:
        raise RuntimeError(f"worker {' '.join(cmd)} failed: {out.stderr.strip()[-600:]}")
    result: Timing = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def ab(sides: dict[str, tuple[list[str], dict[str, str]]], rounds: int
       ) -> dict[str, list[Timing]]:
    """Run every side once per round, in an order that rotates; returns the timings by side."""
    names = list(sides)
    results: dict[str, list[Timing]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        if r % 2:
            order.reverse()
        for name in order:
            cmd, env = sides[name]
            results[name].append(run_worker(cmd, env))
    return results


def spread(values: Sequence[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}"


def report(label: str, results: dict[str, list[Timing]], base: str = "bare",
           clocks: Sequence[str] = ("cpu", "wall")) -> dict[str, dict[str, float]]:
    """Print one line per side and clock: median time, median ratio to ``base`` (same round)
    and the spread of the ratios; returns the medians."""
    out: dict[str, dict[str, float]] = {}
    print(label, flush=True)
    for clock in clocks:
        b = [t[clock] for t in results[base]]
        mb = statistics.median(b)
        print(f"  {clock:<4} {base:<14} {mb * 1e6:10.2f} us", flush=True)
        for name, ts in results.items():
            if name == base:
                continue
            g = [t[clock] for t in ts]
            ratios = [gi / bi for gi, bi in zip(g, b)]
            mr = statistics.median(ratios)
            out.setdefault(name, {})[clock] = mr
            print(f"  {clock:<4} {name:<14} {statistics.median(g) * 1e6:10.2f} us   ratio "
                  f"{mr:5.3f} ({spread(ratios)})   {(statistics.median(g) - mb) * 1e6:+.2f} us",
                  flush=True)
    return out


def have_valgrind() -> bool:
    try:
        subprocess.run(["valgrind", "--version"], capture_output=True, timeout=30, check=True)
        return True
    except (OSError, subprocess.SubprocessError):
        return False


def _ir(cmd: Sequence[str], env: dict[str, str] | None, main_thread: bool = False) -> int:
    """Instructions callgrind counts for ``cmd``: all threads, or the main thread only."""
    with tempfile.TemporaryDirectory() as tmp:
        out_file = os.path.join(tmp, "cg.out")
        run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
                              "--separate-threads=yes", *cmd], capture_output=True, text=True,
                             timeout=3600, env={**os.environ, **(env or {})})
        if run.returncode != 0:
            raise RuntimeError(f"callgrind failed: {run.stderr.strip()[-600:]}")
        total = 0
        for name in sorted(os.listdir(tmp)):
            if not re.search(r"-\d+$", name) or (main_thread and not name.endswith("-01")):
                continue  # one file per thread: name-01 is the main thread
            with open(os.path.join(tmp, name)) as f:
                m = re.search(r"^(?:summary|totals):\s*(\d+)", f.read(), re.M)
            if m is None:
                raise RuntimeError(f"no instruction total in the callgrind output {name}")
            total += int(m.group(1))
        return total


def instructions(cmd_for: Callable[[int], list[str]], n: int,
                 env: dict[str, str] | None = None) -> float:
    """Instructions per operation of the thread that runs them: callgrind counts of
    ``cmd_for(2n)`` minus ``cmd_for(n)``, main thread only. Threads that wake on a timer (the
    guard's watchdog) are left out: under callgrind a run lasts ~50x longer, so they would
    weigh ~50x more per operation than they do; process CPU time counts them as users pay."""
    env = {**(env or {}), "BENCH_WARM": "200"}
    return (_ir(cmd_for(2 * n), env, True) - _ir(cmd_for(n), env, True)) / n


def header(what: str, rounds: int) -> None:
    import platform

    try:
        import sqlalchemy

        sa = f", SQLAlchemy {sqlalchemy.__version__}"
    except ImportError:
        sa = ""
    print(f"python {platform.python_version()}{sa}; {what}; {rounds} rounds, a fresh process "
          f"per side and round, order rotating; medians (min-max of the per-round ratios); "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)


PY = sys.executable
