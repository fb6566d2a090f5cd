"""Re-entrant checkouts under SingletonThreadPool (issue 19, item 4): the connection left open
is blamed on its own line, not on the properly closed first checkout; with the C hot path and
with its Python twin alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = """
    import json, sys
    import sqlalchemy as sa
    from sqlalchemy.pool import SingletonThreadPool
    import pooldoctor
    from pooldoctor.runtime import hotpath

    pooldoctor.instrument(log=False, exit_check=False)
    engine = sa.create_engine("sqlite://", poolclass=SingletonThreadPool)
    KEEP = []
    out = {"speedups": hotpath.SPEEDUPS}

    def sites():
        return [h["site"]["line"] for h in pooldoctor.holds()]

    # setUp's connection, properly closed; the test body's left open
    setup = engine.connect()  # SETUP
    body = engine.connect()  # BODY
    setup.close()
    out["unclosed_body"] = sites()
    body.close()
    out["all_closed"] = sites()

    # nested, closed inner first: the outer one is the one left
    outer = engine.connect()  # OUTER
    with engine.connect() as inner:  # INNER
        inner.exec_driver_sql("select 1")
    out["outer_left"] = sites()
    outer.close()

    # three levels, the middle one left open
    a = engine.connect()  # A
    b = engine.connect()  # B
    c = engine.connect()  # C
    a.close()
    c.close()
    out["middle_left"] = sites()
    b.close()

    # raw pool checkouts (no Connection): last in, first out
    r1 = engine.pool.connect()  # RAW1
    r2 = engine.pool.connect()  # RAW2
    r2.close()
    out["raw_first_left"] = sites()
    r1.close()
    out["end"] = sites()
    print(json.dumps(out))
"""


def line(marker: str) -> int:
    for i, text in enumerate(textwrap.dedent(SCRIPT).splitlines(), 1):
        if text.rstrip().endswith(f"# {marker}"):
            return i
    raise AssertionError(marker)


@pytest.mark.parametrize("speedups", [True, False], ids=["c", "python"])
def test_reentrant_checkouts_name_the_open_one(tmp_path: Path, speedups: bool) -> None:
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent(SCRIPT))
    env = dict(os.environ)
    env.pop("POOLDOCTOR_NO_SPEEDUPS", None)
    if not speedups:
        env["POOLDOCTOR_NO_SPEEDUPS"] = "1"
    proc = subprocess.run([sys.executable, str(prog)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    if speedups and not out["speedups"]:
        pytest.skip("pooldoctor._speedups is not built")
    assert out["speedups"] is speedups
    assert out["unclosed_body"] == [line("BODY")]
    assert out["all_closed"] == []
    assert out["outer_left"] == [line("OUTER")]
    assert out["middle_left"] == [line("B")]
    assert out["raw_first_left"] == [line("RAW1")]
    assert out["end"] == []
