"""Every network step of every server command honours ``--timeout``: a port where something
that is not a database listens (silent, garbage, an HTTP server), or a real server behind a
proxy that goes silent at a chosen statement, gives one clear line and exit 3.

Each command runs in a subprocess with a generous deadline: "finished within 3x the timeout
plus start-up" is a hang check, not a speed assertion.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ..net_faults import Listener, StallingProxy, free_port, wait_listening

TIMEOUT = 2.0
DRIVER_MODULES = {"mysqlconnector": "mysql.connector", "mysqldb": "MySQLdb"}
START_UP = 15.0  # interpreter, imports and a loaded machine; far below "forever"

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

# command name -> extra arguments (each touches the server once)
COMMANDS = {
    "snapshot": ["snapshot"],
    "top": ["top", "--iterations", "1"],
    "watch": ["watch", "--once"],
    "kill": ["kill", "--all"],
    "advise": ["advise"],
}


def run(args: list[str], url: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``pooldoctor ARGS URL --timeout T``; the URL is placed after the command name."""
    cmd = [sys.executable, "-m", "pooldoctor", args[0], url, *args[1:],
           "--timeout", str(TIMEOUT)]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, check=False,
                       timeout=3 * TIMEOUT + START_UP + 30,  # the test fails, never hangs
                       env={**os.environ, "NO_COLOR": "1"})
    return r, time.monotonic() - t0


def assert_gave_up(r: subprocess.CompletedProcess[str], took: float) -> str:
    assert took < 3 * TIMEOUT + START_UP, f"took {took:.1f} s: {r.stderr}"
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pooldoctor: error: "), r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    return lines[0]


def with_port(url: str, port: int, **query: str) -> str:
    u = sa.make_url(url).set(host="127.0.0.1", port=port)
    if query:
        u = u.update_query_dict(query)
    return u.render_as_string(hide_password=False)


@pytest.fixture
def http_server() -> Iterator[int]:
    """``python3 -m http.server`` on a free port (the issue's reproduction)."""
    with free_port() as port:
        p = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                              "127.0.0.1"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        if not wait_listening(port, p):
            pytest.fail("http.server did not start")
        yield port
    finally:
        p.kill()
        p.wait(10)


# ----------------------------------------------------------------- not a database at all


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_mysql_url_on_an_http_server(command: str, http_server: int) -> None:
    r, took = run(COMMANDS[command], f"mysql+pymysql://root@127.0.0.1:{http_server}/test")
    line = assert_gave_up(r, took)
    assert f"127.0.0.1:{http_server}" in line and "no answer within 2 s" in line


@pytest.mark.parametrize("backend", ["mysql+pymysql", "postgresql+psycopg",
                                     "postgresql+psycopg2"])
@pytest.mark.parametrize("greeting", [None, b"HTTP/1.0 400 Bad Request\r\n\r\n\x00\xff"],
                         ids=["silent", "garbage"])
def test_listener_that_is_not_a_server(backend: str, greeting: bytes | None) -> None:
    with Listener(greeting) as listener:
        r, took = run(COMMANDS["snapshot"], f"{backend}://root@127.0.0.1:{listener.port}/test")
    line = assert_gave_up(r, took)
    assert f"cannot connect to {backend}://root@127.0.0.1:{listener.port}/test" in line


@pytest.mark.parametrize("greeting", [None, b"HTTP/1.0 400 Bad Request\r\n\r\n\x00\xff"],
                         ids=["silent", "garbage"])
@pytest.mark.parametrize("command", ["snapshot", "watch"])
@pytest.mark.parametrize("driver", ["mysqlconnector", "mysqldb"])
def test_other_mysql_drivers_on_a_listener_that_is_not_a_server(
        greeting: bytes | None, command: str, driver: str) -> None:
    pytest.importorskip(DRIVER_MODULES[driver])
    with Listener(greeting) as listener:
        url = f"mysql+{driver}://root@127.0.0.1:{listener.port}/test"
        r, took = run(COMMANDS[command], url)
        assert listener.accepted.is_set()
    line = assert_gave_up(r, took)
    assert f"cannot connect to {url}: " in line
    if greeting is None:
        assert line.endswith("no answer within 2 s (--timeout)")


def test_dashboard_server_on_a_silent_listener() -> None:
    with Listener() as listener:
        url = f"mysql+pymysql://root@127.0.0.1:{listener.port}/test"
        cmd = [sys.executable, "-m", "pooldoctor", "dashboard", "--port", "0", "--server", url,
               "--timeout", str(TIMEOUT)]
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True, check=False,
                           timeout=3 * TIMEOUT + START_UP + 30)
        took = time.monotonic() - t0
    assert_gave_up(r, took)


# ------------------------------------------------- a real server that goes silent mid-way

# (url fixture, statement text that starts the stall): the first query on a new connection
# (the server's version), the watch's own query, and a query of `advise`
STALLS = [
    ("pg_url", b"server_version", list(COMMANDS)),
    ("pg_url", b"pg_stat_activity", ["snapshot", "top", "watch", "kill"]),
    ("pg_url", b"pg_settings", ["advise"]),
    ("mysql_url", b"VERSION()", list(COMMANDS)),
    ("mysql_url", b"PROCESSLIST", ["snapshot", "top", "watch", "kill"]),
    ("mysql_url", b"wait_timeout", ["advise"]),
]


@pytest.mark.parametrize(("server", "trigger", "command"), [
    (server, trigger, command) for server, trigger, commands in STALLS for command in commands],
    ids=lambda v: v.decode() if isinstance(v, bytes) else str(v))
def test_server_goes_silent(server: str, trigger: bytes, command: str,
                            request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(server)
    u = sa.make_url(url)
    extra = {"sslmode": "disable"} if u.get_backend_name() == "postgresql" else {}
    with StallingProxy(u.host or "127.0.0.1", u.port or 0, trigger) as proxy:
        r, took = run(COMMANDS[command], with_port(url, proxy.port, **extra))
        assert proxy.stalled.is_set(), f"{trigger!r} never sent: {r.stderr}"
    line = assert_gave_up(r, took)
    assert "no answer" in line and "within 2 s" in line


@pytest.mark.parametrize("trigger", [b"VERSION()", b"PROCESSLIST"], ids=bytes.decode)
@pytest.mark.parametrize("command", ["snapshot", "top", "watch", "kill"])
@pytest.mark.parametrize("driver", ["mysqlconnector", "mysqldb"])
def test_other_mysql_drivers_server_goes_silent(trigger: bytes, command: str, driver: str,
                                                mysql_url: str) -> None:
    """mysql-connector (pure Python) and mysqlclient are driven directly: their timeouts and
    the deadline on their socket bound the queries too, not only the connect."""
    pytest.importorskip(DRIVER_MODULES[driver])
    u = sa.make_url(mysql_url)
    with StallingProxy(u.host or "127.0.0.1", u.port or 0, trigger) as proxy:
        url = with_port(mysql_url, proxy.port).replace(u.drivername, f"mysql+{driver}", 1)
        r, took = run(COMMANDS[command], url)
        assert proxy.stalled.is_set(), f"{trigger!r} never sent: {r.stderr}"
    line = assert_gave_up(r, took)
    assert f"mysql+{driver}://root@127.0.0.1:{proxy.port}" in line
    assert "no answer" in line and "within 2 s" in line


# ---------------------------------------------------------------- the pytest server check


def test_pytest_server_check_on_a_silent_server(pg_url: str, tmp_path: Path) -> None:
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    u = sa.make_url(pg_url)
    with StallingProxy(u.host or "127.0.0.1", u.port or 0, b"pg_stat_activity") as proxy:
        url = with_port(pg_url, proxy.port, sslmode="disable")
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                            "--pooldoctor", f"--pooldoctor-server={url}", str(tmp_path)],
                           capture_output=True, text=True, check=False, cwd=tmp_path,
                           timeout=60)
        took = time.monotonic() - t0
        assert proxy.stalled.is_set(), r.stdout + r.stderr
    assert took < 3 * 5.0 + START_UP, r.stdout + r.stderr  # the check's own 5 s timeout
    assert "no answer from" in r.stdout + r.stderr, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
