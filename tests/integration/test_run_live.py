"""The live log of `pooldoctor run` merges repeated findings (issue 19, item 8)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

PROGRAM = """
    import gc, sqlite3
    for i in range(150):
        conn = sqlite3.connect({db!r})  # DROPPED
        box = [conn]
        box.append(box)  # freed by the collector: a PD102 each time
        del conn, box
        if i % 10 == 9:
            gc.collect()
    KEPT = sqlite3.connect({db!r})  # KEPT
"""


def test_repeated_findings_are_merged_on_the_live_log(tmp_path: Path) -> None:
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent(PROGRAM.format(db=str(tmp_path / "db.sqlite"))))
    report = tmp_path / "r.json"
    out = subprocess.run([sys.executable, "-m", "pooldoctor", "run", "--report", str(report),
                          "--", sys.executable, str(prog)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    live = [line for line in out.stderr.splitlines() if "PD102" in line and "prog.py:4" in line
            and not line.startswith(("PD102 error", "    "))]
    assert 2 <= len(live) <= 4, out.stderr  # the 1st, 2nd, 10th, 100th of 150
    assert "repeats: 2 times so far" in live[1]
    assert live[-1].endswith("(repeats: 100 times so far)")
    assert sum("PD105" in line and "prog.py:10" in line for line in out.stderr.splitlines()
               if not line.startswith("    ")) == 2  # the live line and the summary's
    (f102,) = [f for f in json.loads(report.read_text())["findings"] if f["code"] == "PD102"]
    assert f102["count"] == 150
