"""After fork() the child's pool figures count what the child did, not the parent's past."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path


def run_with_report(tmp_path: Path, body: str) -> dict:  # type: ignore[type-arg]
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent(body))
    report = tmp_path / "r.json"
    out = subprocess.run([sys.executable, "-m", "pooldoctor.cli", "run", "-q", "--report",
                          str(report), "--", str(prog)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    data: dict = json.loads(report.read_text())  # type: ignore[type-arg]
    return data


def test_parent_and_child_each_report_only_their_own_checkouts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fork.db'}"
    data = run_with_report(tmp_path, f"""
        import json, os, sys, sqlalchemy as sa
        from pooldoctor.runtime import sqlalchemy as guard_sa
        engine = sa.create_engine({url!r})
        held = engine.connect()  # held across fork(): the child must not count it
        for _ in range(3):
            with engine.connect() as c:
                c.exec_driver_sql("SELECT 1")
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            engine.dispose(close=False)  # the child's own connections
            with engine.connect() as c:
                c.exec_driver_sql("SELECT 1")
            os.write(w, json.dumps(guard_sa.pool_infos()).encode())
            sys.exit(0)  # the child's exit check writes its figures to the report
        os.close(w)
        os.waitpid(pid, 0)
        with os.fdopen(r) as f:
            child = json.load(f)
        mine = guard_sa.pool_infos()
        with open({str(tmp_path / 'figures.json')!r}, "w") as f:
            json.dump({{"child": child, "parent": mine}}, f)
        held.close()
    """)
    figures = json.loads((tmp_path / "figures.json").read_text())
    (child,) = [p for p in figures["child"] if p["url"] and "fork.db" in p["url"]]
    (parent,) = [p for p in figures["parent"] if p["url"] and "fork.db" in p["url"]]
    # the child: one checkout, one connection of its own, none held by the parent's thread
    assert child["checkouts"] == 1
    assert child["connects"] == 1
    assert child["peak_checked_out"] == 1
    assert child["checked_out"] == 0
    assert child["observed_s"] <= parent["observed_s"]
    # the parent is untouched by the child's work
    assert parent["checkouts"] == 4
    assert parent["peak_checked_out"] == 2
    assert parent["checked_out"] == 1
    assert parent["connects"] == 2
    # the report run merges both processes: each checkout counted once
    (merged,) = [p for p in data["pools"] if p["url"] and "fork.db" in p["url"]]
    assert merged["processes"] == 2
    assert merged["checkouts"] == 5
    assert merged["connects"] == 3
    assert not [f for f in data["findings"] if f["code"] != "PD106"]
