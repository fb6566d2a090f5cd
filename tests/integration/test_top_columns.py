"""`pooldoctor top` in real terminals of 80, 120 and 200 columns (a pseudo-terminal with its
window size set, real PostgreSQL connections): id, state, ages and the holding site are never
cut, the statement takes what is left, the other columns drop on a narrow terminal.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pooldoctor.server.attribution import load

from .test_server_probe import wait_for

HOLDER = """
    import sys
    import sqlalchemy as sa
    import pooldoctor

    pooldoctor.instrument(log=False, leak_threshold=600)
    engine = sa.create_engine(sys.argv[1], connect_args={"application_name": sys.argv[2]})
    conn = engine.connect()  # HOLD-HERE
    conn.exec_driver_sql("SELECT " + ", ".join(f"{i} AS column_number_{i}"
                                               for i in range(40)))  # longer than any width
    print("READY", flush=True)  # idle in transaction from here
    sys.stdin.readline()
    conn.rollback()
    conn.close()
    engine.dispose()
"""

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def holder(pg_url: str, tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    """A guarded process holding one connection idle in transaction at a known line."""
    prog = tmp_path / "holder_prog.py"
    prog.write_text(textwrap.dedent(HOLDER))
    line = next(n for n, t in enumerate(prog.read_text().splitlines(), 1) if "HOLD-HERE" in t)
    app = f"pd-top-{uuid.uuid4().hex[:12]}-with-a-rather-long-program-name"
    rundir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(prog), pg_url, app], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "POOLDOCTOR_RUNTIME_DIR": str(rundir)})
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
        wait_for(lambda: next((p for p in load(str(rundir)).values() if p.holds), None),
                 what="the holder to publish its hold")
        yield app, rundir, f"holder_prog.py:{line}"
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=30)


def top_in_a_terminal(columns: int, args: list[str], cwd: Path) -> list[str]:
    """Run `pooldoctor top ARGS` with a pty of ``columns`` x 50 as its terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    proc = subprocess.Popen([sys.executable, "-m", "pooldoctor", "top", *args],
                            stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                            env={**env, "TERM": "xterm"})
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], deadline - time.monotonic())
            if not r:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the program ended
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(timeout=30) == 0, out.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return ANSI.sub(b"", out).decode().replace("\r", "").splitlines()


@pytest.mark.parametrize("columns", [80, 120, 200])
def test_top_keeps_what_matters_whole(holder: tuple[str, Path, str], pg_url: str,
                                      tmp_path: Path, columns: int) -> None:
    app, rundir, site = holder
    lines = top_in_a_terminal(columns, [pg_url, "--iterations", "1", "--runtime-dir",
                                        str(rundir), "--filter", f"application={app}"],
                              tmp_path)
    text = "\n".join(lines)
    assert all(len(line) <= columns for line in lines), text
    (head,) = [line for line in lines if line.lstrip().startswith("id ")]
    (row,) = [line for line in lines if site in line]
    cells = row.split()
    assert re.fullmatch(r"\d+", cells[0]), row  # the whole pid
    assert "idle in transaction" in row and f"{site} in <module>" in row
    for name in ("id", "state", "in state", "xact", "held at"):
        assert name in head, head
    ages = re.findall(r"\b\d+(?:\.\d)?s\b|\b\d+m\d\ds\b", row)
    assert len(ages) >= 2, row  # in state and xact, whole
    if columns >= 120:
        assert "connected" in head and len(ages) == 3, row
        assert "application" in head and app[:10] in row  # cut, not dropped
    if columns == 200:  # every column, and the statement takes the rest
        for name in ("user", "database", "client"):
            assert name in head, head
    if columns == 80:
        assert "database" not in head and app[:20] not in row  # dropped, not cut
    if "query" in head:
        query = row[head.index("query"):]
        assert query.startswith("SELECT") and query.rstrip().endswith("…"), row
        if columns == 200:
            assert len(row.rstrip()) == columns, row
