"""A guarded program's report, fed to `pooldoctor advise --from-report` (real servers)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import pooldoctor
from pooldoctor.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(["advise", *argv])
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


def exhaust_once(engine: sa.Engine) -> float:
    """One thread holds the only connection while another's checkout times out.

    Returns how long the holder held it (a lower bound of the pool's total hold time).
    """
    held = threading.Event()
    done = threading.Event()
    errors: list[BaseException] = []
    held_s: list[float] = []

    def holder() -> None:
        with engine.connect() as c:
            t0 = time.monotonic()
            c.exec_driver_sql("SELECT 1")
            held.set()
            done.wait(10)
            held_s.append(time.monotonic() - t0)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert held.wait(10)
        try:
            with engine.connect():
                pass
        except sa.exc.TimeoutError as e:
            errors.append(e)
    finally:
        done.set()
        t.join(10)
    assert errors, "the second checkout should have timed out"
    for _ in range(5):  # a few ordinary checkouts
        with engine.connect() as c:
            c.exec_driver_sql("SELECT 1")
    return held_s[0]


@pytest.mark.parametrize("which", ["pg", "mysql"])
def test_advise_from_a_real_report(capsys: pytest.CaptureFixture[str], guard: object,
                                   tmp_path: Path, request: pytest.FixtureRequest,
                                   which: str) -> None:
    url = request.getfixturevalue("pg_url" if which == "pg" else "mysql_url")
    engine = sa.create_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.2,
                              pool_recycle=600)
    try:
        pooldoctor.instrument(engine, log=False, exit_check=False, name=f"advise-{which}")
        held_s = exhaust_once(engine)
        report = pooldoctor.report()
    finally:
        engine.dispose()
    path = tmp_path / "report.json"
    report.write(str(path))
    (pool,) = [p for p in json.loads(path.read_text())["pools"]
               if p.get("name") == f"advise-{which}"]
    assert pool["timeouts"] == 1 and pool["checkouts"] == 6
    assert pool["hold_ms_total"] >= held_s * 1000  # the holder's hold is in the total

    code, out, err = run(capsys, url, "--from-report", str(path), "--pool", f"advise-{which}",
                         "--format", "json")
    assert code == 1, err
    data = json.loads(out)
    assert [f["code"] for f in data["findings"]] == ["PD402"]
    assert "1 timed out" in data["findings"][0]["message"]
    advice = data["advice"]
    # settings come from the live pool, figures are the measured ones
    assert advice["app"]["pool_size"] == {"value": 1, "source": "report"}
    assert advice["app"]["pool_recycle"] == {"value": 600.0, "source": "report"}
    m = advice["measured"]
    assert (m["checkouts"], m["timeouts"], m["peak_checked_out"]) == (6, 1, 1)
    assert m["hold_ms_total"] == pool["hold_ms_total"] > 0
    assert m["observed_s"] == pool["observed_s"] > 0
    assert "Little's law" in advice["recommended"]["basis"]
    assert any("saturated" in r for r in advice["recommended"]["reasons"])


ENGINES_PROGRAM = """
import os, sys
import sqlalchemy as sa

url = sys.argv[1]
engines = [sa.create_engine(url) for _ in range(4)]  # engine per call: one process
for e in engines:
    with e.connect() as c:
        c.exec_driver_sql("SELECT 1")
if sys.argv[2] == "fork":  # and a real second process, with engines of its own
    pid = os.fork()
    if pid == 0:
        for e in engines:
            e.dispose(close=False)
            with e.connect() as c:
                c.exec_driver_sql("SELECT 1")
        sys.exit(0)  # exit handlers run: the child's guard writes its pools
    os.waitpid(pid, 0)
for e in engines:
    e.dispose()
"""


@pytest.mark.parametrize(("mode", "processes"), [("one", 1), ("fork", 2)])
def test_engines_of_one_process_are_one_process(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path, pg_url: str, mode: str,
                                                processes: int) -> None:
    import subprocess
    import sys

    program = tmp_path / "engines.py"
    program.write_text(ENGINES_PROGRAM)
    report = tmp_path / "r.json"
    p = subprocess.run([sys.executable, "-m", "pooldoctor", "run", "--report", str(report),
                        "--", sys.executable, str(program), pg_url, mode],
                       capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    (pool,) = json.loads(report.read_text())["pools"]
    assert pool["processes"] == processes and len(pool["pids"]) == processes
    if processes == 1:
        assert pool["checkouts"] == 4

    code, out, err = run(capsys, pg_url, "--from-report", str(report), "--format", "json")
    assert code in (0, 1), err
    workers = json.loads(out)["advice"]["app"].get("workers")
    if processes == 1:
        assert workers is None or workers["value"] == 1, workers
    else:
        assert workers == {"value": 2, "source": "report"}
