"""`pooldoctor run --metrics-port N --audit-log FILE`: no code changes in the program."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

PROGRAM = textwrap.dedent("""
    import sys
    import httpx
    import sqlalchemy as sa

    port = int(sys.argv[1])
    e = sa.create_engine(sys.argv[2], pool_size=2, max_overflow=0)
    for i in range(4):
        with e.connect() as c:
            c.exec_driver_sql("SELECT 'private-literal', 12345")
    print(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
    e.dispose()
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_run_serves_metrics_and_writes_the_audit_log(tmp_path: Path, pg_url: str) -> None:
    prog = tmp_path / "prog.py"
    prog.write_text(PROGRAM)
    audit_path = tmp_path / "audit.jsonl"
    port = free_port()
    r = subprocess.run(
        [sys.executable, "-m", "pooldoctor", "run", "--quiet", "--metrics-port", str(port),
         "--audit-log", str(audit_path), "--", sys.executable, str(prog), str(port), pg_url],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    masked = pg_url.split("://")[0]
    checkouts = [line for line in r.stdout.splitlines()
                 if line.startswith("pooldoctor_checkouts_total{") and masked in line]
    assert len(checkouts) == 1 and checkouts[0].endswith(" 4.0"), checkouts
    evs = [json.loads(x) for x in audit_path.read_text().splitlines()]
    mine = [ev for ev in evs if ev["statement"] == "SELECT ?, ?"]
    assert len(mine) == 4
    assert all(ev["site"]["file"] == str(prog) for ev in mine)
    assert "private-literal" not in audit_path.read_text()
    assert "12345" not in audit_path.read_text()
