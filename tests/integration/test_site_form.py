"""The site of a finding reads the same in its message and on its ``at`` line, relative to
the working directory of whoever reads the report, even when the program changed or removed
its own working directory (`pooldoctor run`, SQLite, a real subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROGRAM = """
import os, sys, tempfile
import sqlalchemy as sa

engine = sa.create_engine("sqlite:///" + os.path.abspath("db.sqlite"))
if sys.argv[1] == "root":
    os.chdir("/")  # as daemons do
else:
    gone = tempfile.mkdtemp()
    os.chdir(gone)
    os.rmdir(gone)  # the working directory no longer exists
kept = engine.connect()  # LEAK
"""


@pytest.mark.parametrize("where", ["root", "gone"])
def test_message_and_at_line_agree(tmp_path: Path, where: str) -> None:
    (tmp_path / "app.py").write_text(PROGRAM)
    line = next(n for n, t in enumerate(PROGRAM.splitlines(), 1) if "# LEAK" in t)
    env = {k: v for k, v in os.environ.items() if k != "POOLDOCTOR_CWD"}
    env["NO_COLOR"] = "1"
    r = subprocess.run([sys.executable, "-m", "pooldoctor", "run", "--", sys.executable,
                        "app.py", where], capture_output=True, text=True, cwd=tmp_path,
                       timeout=120, check=False, env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    i = next(i for i, t in enumerate(lines) if t.startswith("PD105 error "))
    assert lines[i].endswith(f" at app.py:{line} in <module>"), r.stderr
    assert lines[i + 1] == f"    at app.py:{line} in <module>", r.stderr
    live = [t for t in lines if t.startswith("PD105 connection")]  # the program's own line
    assert live and all(t.endswith(f" at app.py:{line} in <module>") for t in live), r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr
