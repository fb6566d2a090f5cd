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
    # the URL, once (the program is one process), like `pooldoctor dashboard` prints it
    assert err.count(f"pooldoctor: dashboard on http://127.0.0.1:{port}/ (pid ") == 1, err


def _run_marker(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`pooldoctor run OPTIONS -- python -c <touch a marker>`: did the program run?"""
    marker = tmp_path / "ran"
    return subprocess.run([sys.executable, "-m", "pooldoctor", "run", *options, "--",
                           sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env=_env(tmp_path))


@pytest.mark.parametrize("option", ["--dashboard", "--metrics-port"])
def test_run_refuses_a_taken_port_before_the_program_starts(tmp_path: Path,
                                                             option: str) -> None:
    if option == "--metrics-port":
        pytest.importorskip("prometheus_client")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = _run_marker(tmp_path, option, str(port))
    assert r.returncode == 3, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"pooldoctor: error: {option} {port}: cannot listen on 127.0.0.1:{port}: "
        "address already in use"]
    assert not (tmp_path / "ran").exists()  # it did not run blind


def test_run_dashboard_and_metrics_on_one_port_is_a_usage_error(tmp_path: Path) -> None:
    port = free_port()
    r = _run_marker(tmp_path, "--dashboard", str(port), "--metrics-port", str(port))
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"pooldoctor: error: --dashboard and --metrics-port cannot both use port {port}"]
    assert not (tmp_path / "ran").exists()
