"""`pooldoctor run --dashboard PORT`: the guarded program serves its own dashboard (no browser)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("uvicorn")
import httpx

SCRIPT = '''\
import os, sys, time
import sqlalchemy as sa

engine = sa.create_engine(sys.argv[1], pool_size=2, max_overflow=0)
leaked = engine.connect()  # LEAK
print("ready", flush=True)
deadline = time.monotonic() + 60
while not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:
    time.sleep(0.05)
leaked.close()
'''
LEAK_LINE = next(i for i, t in enumerate(SCRIPT.splitlines(), 1) if "# LEAK" in t)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(tmp_path: Path, url: str, port: int) -> subprocess.Popen[str]:
    script = tmp_path / "leaky.py"
    script.write_text(SCRIPT)
    p = subprocess.Popen([sys.executable, "-m", "pooldoctor", "run", "-q", "--dashboard",
                          str(port), "--", sys.executable, str(script), url,
                          str(tmp_path / "stop")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=tmp_path, env=_env(tmp_path))
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


def _env(tmp_path: Path) -> dict[str, str]:
    import os

    rt = tmp_path / "rt"
    rt.mkdir(mode=0o700, exist_ok=True)
    return {**os.environ, "POOLDOCTOR_RUNTIME_DIR": str(rt)}


def finish(tmp_path: Path, p: subprocess.Popen[str]) -> tuple[int, str]:
    (tmp_path / "stop").touch()
    try:
        _, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
    return p.returncode, err


def get(url: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=2).json()
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_run_serves_the_programs_pools_and_holds(tmp_path: Path, sqlite_url: str) -> None:
    port = free_port()
    p = start(tmp_path, sqlite_url, port)
    try:
        state = get(f"http://127.0.0.1:{port}/api/state")
        assert state["mode"] == "process" and state["pid"] != 0
        [pool] = state["pools"]
        assert (pool["used"], pool["size"], pool["max"]) == (1, 2, 2)
        [g] = state["holds"]["groups"]
        assert g["site"]["file"].endswith("leaky.py") and g["site"]["line"] == LEAK_LINE
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
    finally:
        code, err = finish(tmp_path, p)
    assert code == 0, err
    assert "dashboard" not in err


def test_run_skips_the_dashboard_quietly_when_the_port_is_taken(tmp_path: Path,
                                                                sqlite_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        p = start(tmp_path, sqlite_url, port)
        code, err = finish(tmp_path, p)
    assert code == 0, err
    assert "Traceback" not in err and "dashboard" not in err
