#!/usr/bin/env python3
"""Run SQLAlchemy's own tests against the installed SQLAlchemy, bare and with the guard on.

    python scripts/sqla_compat.py                     # the venv running this script
    python scripts/sqla_compat.py --python /tmp/v20/bin/python

Downloads the source distribution of the *installed* SQLAlchemy version from the package
index (``pip download --no-deps --no-binary :all:``), extracts it, and runs the chosen test
files from its folder twice with ``PYTHONNOUSERSITE=1`` (so its conftest does not put the
sdist's ``lib/`` on ``sys.path``): once bare, once with ``-p sqla_compat_plugin``, which installs
``pooldoctor.instrument()`` globally. Compares the outcome of every test; exits 1 when any
test's outcome differs, 0 when all match. pooldoctor's own pytest plugin is disabled in both
runs (``-p no:pooldoctor``) so that only the guard differs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_TESTS = (
    "test/engine/test_pool.py",
    "test/engine/test_transaction.py",
    "test/engine/test_reconnect.py",
    "test/engine/test_execute.py",
    "test/engine/test_logging.py",
    "test/engine/test_deprecations.py",
    "test/engine/test_ddlevents.py",
    "test/engine/test_parseconnect.py",
    "test/orm/test_transaction.py",
    "test/orm/test_session.py",
    "test/orm/test_scoping.py",
    "test/orm/test_events.py",
)

# Tests whose outcome differs for a reason that is the guard's purpose, not a bug. Each is
# explained in docs/reliability.md; any other difference makes the script fail.
EXPLAINED = {
    "test.engine.test_reconnect.MockReconnectTest::test_conn_reusable":
        "asserts the exact driver connect() arguments; the guard adds application_name="
        "'pooldoctor:<pid>:<prog>' (server attribution; off with POOLDOCTOR_NO_TAG=1)",
}


def installed_sqlalchemy(python: str) -> tuple[str, str]:
    out = subprocess.run(
        [python, "-c", "import sqlalchemy as s; print(s.__version__); print(s.__file__)"],
        check=True, capture_output=True, text=True, env={**os.environ, "PYTHONNOUSERSITE": "1"},
    ).stdout.split("\n")
    return out[0].strip(), out[1].strip()


def fetch_sdist(python: str, version: str, workdir: Path) -> Path:
    """The extracted source folder of SQLAlchemy ``version`` (downloaded once)."""
    src = workdir / f"sqlalchemy-{version}"
    if (src / "test" / "conftest.py").exists():
        return src
    dl = workdir / "dl"
    dl.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                    f"sqlalchemy=={version}", "-d", str(dl)], check=True)
    archives = sorted(dl.glob(f"[sS][qQ][lL][aA]lchemy-{version}.tar.gz"))
    if not archives:
        sys.exit(f"sqla_compat: no sdist for sqlalchemy {version} in {dl}")
    with tarfile.open(archives[0]) as tf:
        tf.extractall(workdir, filter="data")
    if not (src / "test" / "conftest.py").exists():
        sys.exit(f"sqla_compat: {src} has no test/conftest.py")
    return src


def outcomes(junit: Path) -> dict[str, str]:
    """``{test id: passed|failed|error|skipped}`` from a JUnit XML file."""
    out: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        tid = f"{case.get('classname')}::{case.get('name')}"
        kind = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                kind = {"failure": "failed"}.get(child.tag, child.tag)
                break
        out[tid] = kind
    return out


def run(python: str, src: Path, tests: list[str], guarded: bool, workdir: Path,
        extra: list[str]) -> tuple[dict[str, str], dict[str, object], float, str]:
    tag = "guarded" if guarded else "bare"
    junit = workdir / f"junit-{tag}.xml"
    stats_path = workdir / f"stats-{tag}.json"
    stats_path.unlink(missing_ok=True)
    cmd = [python, "-m", "pytest", *tests, "-p", "no:cacheprovider", "-p", "no:pooldoctor",
           "-q", "--no-header", f"--junitxml={junit}", *extra]
    env = {**os.environ, "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    if guarded:
        cmd += ["-p", "sqla_compat_plugin"]
        env["PYTHONPATH"] = str(HERE)
        env["POOLDOCTOR_COMPAT_STATS"] = str(stats_path)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=src, env=env, capture_output=True, text=True)
    took = time.monotonic() - t0
    tail = [ln for ln in proc.stdout.splitlines() if ln.strip()][-1:] or ["(no output)"]
    if not junit.exists():
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        sys.exit(f"sqla_compat: the {tag} run wrote no results (exit {proc.returncode})")
    stats: dict[str, object] = {}
    if guarded:
        try:
            stats = json.loads(stats_path.read_text())
        except (OSError, ValueError):
            stats = {"error": "the plugin wrote no statistics"}
    shown = " ".join(("PYTHONNOUSERSITE=1", *(["PYTHONPATH=" + str(HERE)] if guarded else []),
                      *cmd[:1], *cmd[1:]))
    print(f"[{tag}] cd {src} && {shown}")
    print(f"[{tag}] {tail[0].strip('= ')} (exit {proc.returncode}, {took:.0f} s)")
    return outcomes(junit), stats, took, tail[0]


def counts(res: dict[str, str]) -> dict[str, int]:
    c: dict[str, int] = {}
    for v in res.values():
        c[v] = c.get(v, 0) + 1
    return dict(sorted(c.items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", default=sys.executable,
                    help="the interpreter whose SQLAlchemy and pooldoctor are tested")
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(),
                                                      "pooldoctor-sqla-compat"))
    ap.add_argument("--tests", nargs="+", default=list(DEFAULT_TESTS),
                    help="test files, relative to the sdist folder")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    a = ap.parse_args(argv)

    version, location = installed_sqlalchemy(a.python)
    workdir = Path(a.workdir) / version
    workdir.mkdir(parents=True, exist_ok=True)
    src = fetch_sdist(a.python, version, workdir)
    print(f"SQLAlchemy {version} installed at {location}; tests from {src}")

    bare, _, _, _ = run(a.python, src, a.tests, False, workdir, a.pytest_args)
    guarded, stats, _, _ = run(a.python, src, a.tests, True, workdir, a.pytest_args)

    print(f"bare:    {counts(bare)}")
    print(f"guarded: {counts(guarded)}")
    brief = {k: v for k, v in stats.items() if k != "sites"}
    print(f"guard:   {json.dumps(brief, sort_keys=True)}")
    print(f"         (sites of the findings: {workdir / 'stats-guarded.json'})")
    diffs = sorted(t for t in bare.keys() | guarded.keys() if bare.get(t) != guarded.get(t))
    unexplained = [t for t in diffs if t not in EXPLAINED]
    for t in diffs:
        why = f" -- explained: {EXPLAINED[t]}" if t in EXPLAINED else ""
        print(f"DIFF {t}: bare={bare.get(t, 'absent')} guarded={guarded.get(t, 'absent')}{why}")
    exercised = isinstance(stats.get("checkouts"), int) and int(str(stats["checkouts"])) > 0
    if not exercised:
        print("sqla_compat: the guard saw no checkout: it was not installed")
    ok = not unexplained and exercised
    print(f"RESULT: {len(bare)} tests, {len(diffs)} differences, {len(unexplained)} unexplained"
          + (" -- OK" if ok else " -- FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
