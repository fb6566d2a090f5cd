"""Start-up cost of the commands: what a pre-commit hook or a script calling
``pooldoctor snapshot`` pays before any work, against peers doing the same job.

Each command runs as a fresh process, all commands once per round in rotating order; the
figures are medians over the rounds with min-max, wall time and the CPU time of the child
(user + system, from ``os.wait4``). ``--callgrind`` adds each command's instruction count
(one run; steady on a shared machine). Peers are run only when installed: ``python -c pass``
(the floor), ``ruff check`` on the same file, ``psql`` and the ``mariadb`` client for the same
snapshot question.

    python bench/startup.py [--rounds 11] [--pg URL] [--mysql URL] [--callgrind] [--no-pyc]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import _ab

ONE_FILE = '''import sqlite3


def load(path):
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT 1").fetchall()
    finally:
        conn.close()
'''


def commands(tmp: str, pg: str, mysql: str) -> dict[str, list[str]]:
    bindir = os.path.dirname(sys.executable)
    pd = [sys.executable, "-m", "pooldoctor"]
    one = os.path.join(tmp, "one.py")
    with open(one, "w") as f:
        f.write(ONE_FILE)
    cmds = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "pooldoctor --help": [*pd, "--help"],
        "pooldoctor explain PD101": [*pd, "explain", "PD101"],
        "pooldoctor lint one.py": [*pd, "lint", one],
        "pooldoctor snapshot (pg)": [*pd, "snapshot", "--format", "json", pg],
        "pooldoctor snapshot (mysql)": [*pd, "snapshot", "--format", "json", mysql],
    }
    ruff = shutil.which("ruff", path=bindir) or shutil.which("ruff")
    if ruff:
        cmds["ruff check one.py"] = [ruff, "check", "--no-cache", "--isolated", one]
    from pooldoctor.urls import parse_url

    p, m = parse_url(pg), parse_url(mysql)
    if shutil.which("psql"):
        cmds["psql (pg_stat_activity)"] = [
            "psql", "-X", "-q", "-h", p.host or "127.0.0.1", "-p", str(p.port or 5432),
            "-U", p.username or "postgres", "-d", p.database or "postgres", "-c",
            "SELECT count(*) FROM pg_stat_activity"]
    client = shutil.which("mariadb") or shutil.which("mysql")
    if client:
        cmds["mariadb (processlist)"] = [
            client, "-h", m.host or "127.0.0.1", "-P", str(m.port or 3306),
            "-u", m.username or "root", "-e", "SELECT count(*) FROM information_schema.PROCESSLIST"]
    return cmds


ENV: dict[str, str] | None = None  # the children's environment (None: ours)


def run_once(cmd: list[str]) -> tuple[float, float, int]:
    """Wall seconds, child CPU seconds, exit code."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--mysql", default="mysql+pymysql://root@127.0.0.1:3306/test")
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--no-pyc", action="store_true",
                    help="keep the environment's PYTHONDONTWRITEBYTECODE (every run compiles)")
    args = ap.parse_args()
    global ENV
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_pyc:
            ENV = {**os.environ, "PYTHONDONTWRITEBYTECODE": "",  # empty: unset, for Python
                   "PYTHONPYCACHEPREFIX": os.path.join(tmp, "pycache")}
        cmds = commands(tmp, args.pg, args.mysql)
        names = list(cmds)
        wall: dict[str, list[float]] = {n: [] for n in names}
        cpu: dict[str, list[float]] = {n: [] for n in names}
        codes: dict[str, set[int]] = {n: set() for n in names}
        for name in names:  # warm-up: page cache, .pyc files
            run_once(cmds[name])
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order if r % 2 == 0 else order[::-1]:
                w, c, code = run_once(cmds[name])
                wall[name].append(w)
                cpu[name].append(c)
                codes[name].add(code)
        _ab.header("start-up of each command, medians over rounds", args.rounds)
        for name in names:
            ms = [x * 1000 for x in wall[name]]
            cs = [x * 1000 for x in cpu[name]]
            line = (f"{name:<30} wall {statistics.median(ms):7.1f} ms ({min(ms):.0f}-"
                    f"{max(ms):.0f})   cpu {statistics.median(cs):7.1f} ms ({min(cs):.0f}-"
                    f"{max(cs):.0f})   exit {sorted(codes[name])}")
            if args.callgrind and _ab.have_valgrind():
                line += f"   instructions {_ab._ir(cmds[name], ENV) / 1e6:,.0f} M"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
