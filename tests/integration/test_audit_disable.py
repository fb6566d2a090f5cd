"""``audit.disable()`` gives back the exact bare statement path.

SQLAlchemy marks a target as having events (``_has_events``) at its first listener and never
clears the mark, so after ``enable()`` + ``disable()`` every statement used to dispatch events to
nobody. Counted in Python calls of one SQLite ``SELECT 1``, in a fresh process each time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROGRAM = r"""
import sys
import sqlalchemy as sa
from pooldoctor import audit

engine = sa.create_engine("sqlite://")
conn = engine.connect()
seen = []
if sys.argv[3] == "user-listener":  # the program's own listener must keep firing
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", lambda *a: seen.append(1))


def calls():
    for _ in range(3):  # warm: compiled caches, first-statement work
        conn.exec_driver_sql("SELECT 1").fetchall()
    n = 0

    def profile(frame, event, arg):
        nonlocal n
        n += event == "call"

    sys.setprofile(profile)
    conn.exec_driver_sql("SELECT 1").fetchall()
    sys.setprofile(None)
    return n


bare = calls()
log = audit.enable(sys.argv[1], engine=engine if sys.argv[2] == "engine" else None)
on = calls()
audit.disable()
seen.clear()
after = calls()
print(bare, on, after, len(seen), log.written)
"""


def run(tmp_path: Path, target: str, listener: str = "") -> list[int]:
    script = tmp_path / "calls.py"
    script.write_text(PROGRAM)
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "audit.jsonl"), target,
                          listener or "-"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [int(x) for x in out.stdout.split()]


@pytest.mark.parametrize("target", ["every-engine", "engine"])
def test_disable_restores_the_bare_path(tmp_path: Path, target: str) -> None:
    bare, on, after, _, written = run(tmp_path, target)
    assert written >= 4  # the audit was really on
    assert on > bare  # and it costs calls while on
    assert after == bare  # off: not one call more than a process that never had it


def test_disable_keeps_the_programs_own_listeners(tmp_path: Path) -> None:
    bare, _, after, seen, _ = run(tmp_path, "every-engine", "user-listener")
    assert seen == 4  # the program's listener still fires on each statement after disable()
    assert after >= bare
