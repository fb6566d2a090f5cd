"""The server commands end to end: snapshot/top/watch/kill, errors, attribution, PD302/PD303."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from pooldoctor.server.attribution import load
from pooldoctor.server.probes import open_probe
from pooldoctor.server.watch import Thresholds, Watcher

from .test_server_probe import (
    closing_all,
    my_connect,
    my_id,
    pg_connect,
    pg_id,
    unique,
    wait_for,
)

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def cli(*args: str, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "pooldoctor", *args], capture_output=True,
                          text=True, check=False, timeout=timeout, env=full_env)


def one_error_line(r: subprocess.CompletedProcess[str], code: int) -> str:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("pooldoctor: error: "), lines[0]
    assert "Traceback" not in r.stderr + r.stdout
    return lines[0]


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


# ----------------------------------------------------------------------------- errors


def test_bad_url_is_one_line_exit_2() -> None:
    line = one_error_line(cli("snapshot", "not a url"), 2)
    assert "url" in line


def test_sqlite_is_not_a_server() -> None:
    line = one_error_line(cli("snapshot", "sqlite:///x.db"), 2)
    assert "postgresql or mysql" in line


def test_wrong_password_is_one_line_exit_3_without_the_password(mysql_url: str) -> None:
    url = sa.make_url(mysql_url).set(password="s3cr3t-Pw").render_as_string(False)
    for cmd in ("snapshot", "watch", "kill", "top"):
        extra = ["--once"] if cmd == "watch" else ["--all"] if cmd == "kill" else []
        r = cli(cmd, url, *extra)
        line = one_error_line(r, 3)
        assert "s3cr3t-Pw" not in r.stderr + r.stdout
        assert "***" in line and "Access denied" in line


def test_unknown_database_is_one_line_exit_3(pg_url: str) -> None:
    url = sa.make_url(pg_url).set(database=unique("nodb"), password="hunter2x")
    r = cli("snapshot", url.render_as_string(False))
    line = one_error_line(r, 3)
    assert "does not exist" in line and "hunter2x" not in r.stderr


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "mysql+pymysql"])
def test_unreachable_host_is_one_line_exit_3(scheme: str) -> None:
    r = cli("snapshot", f"{scheme}://u:topsecret@127.0.0.1:{closed_port()}/db", "--timeout", "2")
    line = one_error_line(r, 3)
    assert "cannot connect" in line and "topsecret" not in r.stderr


def test_kill_needs_a_filter(pg_url: str) -> None:
    line = one_error_line(cli("kill", pg_url), 2)
    assert "filter" in line


def test_bad_filter_is_a_usage_error(pg_url: str) -> None:
    line = one_error_line(cli("snapshot", pg_url, "--filter", "colour=red"), 2)
    assert "unknown filter key" in line


# ----------------------------------------------------------------------------- snapshot/top


def test_snapshot_json_and_text_list_idle_connections(pg_url: str) -> None:
    app = unique()
    with closing_all() as conns:
        idle = pg_connect(pg_url, app)
        txn = pg_connect(pg_url, app, autocommit=False)
        txn.execute("SELECT 1")
        conns += [idle, txn]
        r = cli("snapshot", pg_url, "--format", "json", "--filter", f"application={app}")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["schema"] == "pooldoctor.report/1"
        snap = doc["snapshot"]
        assert {c["id"]: c["state"] for c in snap["connections"]} == {
            pg_id(idle): "idle", pg_id(txn): "idle in transaction"}
        assert snap["shown"] == 2 and snap["total"] >= 3 and snap["limit"] > 0
        assert {g["value"] for g in snap["groups"]["application"]} >= {app}
        r = cli("snapshot", pg_url, "--filter", f"application={app}", "--filter", "state=idle")
        assert r.returncode == 0, r.stderr
        assert str(pg_id(idle)) in r.stdout and str(pg_id(txn)) not in r.stdout
        assert "connections: " in r.stdout and "by user" in r.stdout


def test_top_iterations_sorted_and_filtered(mysql_url: str) -> None:
    with closing_all() as conns:
        a, b = my_connect(mysql_url), my_connect(mysql_url)
        conns += [a, b]
        r = cli("top", mysql_url, "--iterations", "2", "--interval", "0.1", "--sort", "id",
                "--filter", f"id={my_id(a)}", "--filter", f"id={my_id(b)}")
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("connections: ") == 2
        first = r.stdout.split("connections: ")[1]
        assert first.index(f"{my_id(a)} ") < first.index(f"{my_id(b)} ")
        assert "2 of " in first


# ----------------------------------------------------------------------------- kill


def test_kill_cli_dry_run_then_yes(pg_url: str) -> None:
    app = unique()
    with closing_all() as conns:
        victim = pg_connect(pg_url, app)
        conns.append(victim)
        r = cli("kill", pg_url, "--application", app, "--state", "idle")
        assert r.returncode == 0, r.stderr
        assert "dry run: would terminate 1 " in r.stdout and str(pg_id(victim)) in r.stdout
        assert victim.execute("SELECT 1").fetchone() == (1,)  # untouched
        r = cli("kill", pg_url, "--application", app, "--idle-over", "0.001", "--yes")
        assert r.returncode == 0, r.stderr
        assert "terminated 1 of 1" in r.stdout
        with pytest.raises(psycopg.OperationalError):
            victim.execute("SELECT 1")


# ----------------------------------------------------------------------------- watch


def test_watch_once_clean_exits_0(pg_url: str) -> None:
    r = cli("watch", pg_url, "--once", "--near", "100", "--idle-in-transaction", "1d",
            "--idle", "1d")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "no findings" in r.stdout


def test_watch_once_reports_idle_in_transaction(pg_url: str, tmp_path: Path) -> None:
    app = unique()
    with closing_all() as conns, open_probe(pg_url) as probe:
        txn = pg_connect(pg_url, app, autocommit=False)
        txn.execute("SELECT 1")
        conns.append(txn)
        wait_for(lambda: (c := probe.snapshot().get(pg_id(txn))) and (c.state_s or 0) >= 0.6,
                 what="the transaction to idle 0.6 s")
        report = tmp_path / "r.json"
        r = cli("watch", pg_url, "--once", "--idle-in-transaction", "0.5", "--report",
                str(report))
        assert r.returncode == 1, (r.stdout, r.stderr)
        doc = json.loads(report.read_text())
        pd302 = [f for f in doc["findings"] if f["code"] == "PD302"]
        ids = {c["id"] for f in pd302 for c in f["details"]["connections"]}
        assert pg_id(txn) in ids
        assert "PD302" in r.stdout


@pytest.fixture(params=["postgresql", "mysql"])
def server_url(request: pytest.FixtureRequest, pg_url: str, mysql_url: str) -> str:
    return pg_url if request.param == "postgresql" else mysql_url


def _connect(url: str, app: str) -> tuple[Any, int]:
    if url.startswith("postgresql"):
        c = pg_connect(url, app)
        return c, pg_id(c)
    c = my_connect(url)
    return c, my_id(c)


def test_growth_alarm_on_a_real_leaking_loop(server_url: str) -> None:
    """PD303 for a group whose connections pile up idle; none for a steady group."""
    leak_user = unique("pd_srv_leak")[:28]
    steady_app, leak_app = unique(), unique()
    is_pg = server_url.startswith("postgresql")
    with closing_all() as conns, closing_all() as admin_list, open_probe(server_url) as probe:
        # a dedicated user makes the group ours alone, whatever else runs on the server
        admin, _ = _connect(server_url, unique())
        admin_list.append(admin)
        _exec(admin, f"CREATE ROLE {leak_user} LOGIN" if is_pg else
              f"CREATE USER '{leak_user}'@'%'")
        if not is_pg:
            _exec(admin, f"CREATE USER '{leak_user}'@'localhost'")
            _exec(admin, f"GRANT SELECT ON test.* TO '{leak_user}'@'%'")
            _exec(admin, f"GRANT SELECT ON test.* TO '{leak_user}'@'localhost'")
        try:
            for _ in range(3):
                c, _ = _connect(server_url, steady_app)
                conns.append(c)
            watcher = Watcher(Thresholds(growth_samples=4, growth_min=3))
            findings = []
            ids: set[int] = set()
            for _ in range(5):  # the leaking loop: one more connection per round, never closed
                c = (pg_connect(server_url, leak_app, user=leak_user) if is_pg
                     else my_connect(server_url, user=leak_user))
                conns.append(c)
                ids.add(pg_id(c) if is_pg else my_id(c))
                findings += watcher.observe(probe.snapshot())
            growth = [f for f in findings if f.code == "PD303"]
            ours = [f for f in growth if f.details["group"]["user"] == leak_user]
            assert ours, [f.message for f in findings]
            f = ours[-1]
            assert f.details["totals"][-1] - f.details["totals"][0] >= 3
            assert {c["id"] for c in f.details["connections"]} <= ids
            assert leak_user in f.message and "grew from" in f.message
            # the steady group (same user as the watcher) is not reported
            assert not [g for g in growth
                        if g.details["group"]["application"] == steady_app]
        finally:
            for c in conns:
                c.close()
            conns.clear()
            if is_pg:
                _exec(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             f"WHERE usename = '{leak_user}'")
                wait_for(lambda: not _rows(admin, "SELECT 1 FROM pg_stat_activity "
                                                  f"WHERE usename = '{leak_user}'"),
                         what="the leak user's sessions to end")
                _exec(admin, f"DROP ROLE {leak_user}")
            else:
                _exec(admin, f"DROP USER IF EXISTS '{leak_user}'@'%'")
                _exec(admin, f"DROP USER IF EXISTS '{leak_user}'@'localhost'")


def _exec(conn: Any, sql: str) -> None:
    if hasattr(conn, "execute"):
        conn.execute(sql)
    else:
        with conn.cursor() as cur:
            cur.execute(sql)


def _rows(conn: Any, sql: str) -> list[Any]:
    return list(conn.execute(sql).fetchall())


def test_watch_cli_growth_exit_1(pg_url: str, tmp_path: Path) -> None:
    """`watch` polling a server while a loop leaks connections: PD303 and exit code 1."""
    app = unique()
    report = tmp_path / "watch.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pooldoctor", "watch", pg_url, "--interval", "0.3",
         "--iterations", "6", "--growth-samples", "4", "--growth-min", "3",
         "--report", str(report), "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_COLOR": "1"})
    stop = threading.Event()
    with closing_all() as conns:
        def leak() -> None:
            while not stop.is_set() and len(conns) < 40:
                conns.append(pg_connect(pg_url, app))
                stop.wait(0.1)

        t = threading.Thread(target=leak, daemon=True)
        t.start()
        try:
            out, err = proc.communicate(timeout=120)
        finally:
            stop.set()
            t.join(timeout=30)
    assert proc.returncode == 1, (out, err)
    doc = json.loads(out)
    ours = [f for f in doc["findings"] if f["code"] == "PD303"
            and f["details"]["group"]["application"] == app]
    assert ours, [f["message"] for f in doc["findings"]]
    assert json.loads(report.read_text())["samples"] == 6


# ----------------------------------------------------------------------------- attribution

HOLDER = """
    import sys
    import sqlalchemy as sa
    import pooldoctor

    pooldoctor.instrument(log=False, leak_threshold=600)
    engine = sa.create_engine(sys.argv[1])
    conn = engine.connect()  # HOLD-HERE
    conn.exec_driver_sql("SELECT 1")
    print("READY", flush=True)
    sys.stdin.readline()
    conn.close()
    engine.dispose()
"""


@pytest.fixture
def holder(server_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path,
                                                               Path]]:
    prog = tmp_path / "holder_prog.py"
    prog.write_text(textwrap.dedent(HOLDER))
    rundir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(prog), server_url], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "POOLDOCTOR_RUNTIME_DIR": str(rundir)})
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
        yield proc, prog, rundir
    finally:
        if proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.write("\n")
            proc.stdin.flush()
            proc.wait(timeout=30)


def test_snapshot_shows_the_holding_site_of_a_guarded_process(
        holder: tuple[subprocess.Popen[str], Path, Path], server_url: str) -> None:
    proc, prog, rundir = holder
    line = next(n for n, t in enumerate(prog.read_text().splitlines(), 1) if "HOLD-HERE" in t)
    key = (socket.gethostname(), proc.pid)
    pub = wait_for(lambda: (p := load(str(rundir)).get(key)) and p.holds and p,
                   what="the guarded process to publish its hold")
    sid = pub.holds[0]["server_id"]
    assert isinstance(sid, int)
    r = cli("snapshot", server_url, "--format", "json", "--runtime-dir", str(rundir),
            "--filter", f"id={sid}")
    assert r.returncode == 0, r.stderr
    conns = json.loads(r.stdout)["snapshot"]["connections"]
    assert len(conns) == 1
    h = conns[0]["holder"]
    assert h["pid"] == proc.pid
    assert h["site"]["line"] == line and h["site"]["file"].endswith("holder_prog.py")
    assert h["verified"] is server_url.startswith("postgresql")  # tag visible on PostgreSQL
    if server_url.startswith("postgresql"):
        assert conns[0]["application"].startswith(f"pooldoctor:{proc.pid}@")
    r = cli("snapshot", server_url, "--runtime-dir", str(rundir), "--filter", f"id={sid}")
    assert f"holder_prog.py:{line}" in r.stdout
    # kill by holding site (dry run): exactly that connection
    r = cli("kill", server_url, "--runtime-dir", str(rundir), "--holder",
            f"*holder_prog.py:{line}", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert [c["id"] for c in json.loads(r.stdout)["connections"]] == [sid]
    # at exit the process removes its file
    assert proc.stdin is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.wait(timeout=30) == 0
    assert not (rundir / f"{proc.pid}.json").exists()


def test_watch_once_with_state_sees_growth_across_cron_runs(pg_url: str,
                                                            tmp_path: Path) -> None:
    app = unique()
    state = tmp_path / "state.json"
    with closing_all() as conns:
        codes: list[int] = []
        for _ in range(4):  # four cron runs; the leak grows by two between runs
            conns += [pg_connect(pg_url, app), pg_connect(pg_url, app)]
            r = cli("watch", pg_url, "--once", "--state", str(state), "--growth-samples", "4",
                    "--format", "json")
            codes.append(r.returncode)
            doc = json.loads(r.stdout)
        ours = [f for f in doc["findings"] if f["code"] == "PD303"
                and f["details"]["group"]["application"] == app]
        assert ours and ours[0]["details"]["totals"] == [2, 4, 6, 8]
        assert codes[-1] == 1
        assert json.loads(state.read_text())["schema"] == "pooldoctor.watch-state/1"


def test_watch_reconnects_when_its_connection_is_terminated(pg_url: str) -> None:
    from pooldoctor.cli.watch import _sample

    watcher = Watcher()
    probe = open_probe(pg_url)
    try:
        with closing_all() as conns:
            admin = pg_connect(pg_url, unique())
            conns.append(admin)
            old = probe.own_id
            admin.execute(f"SELECT pg_terminate_backend({old})")
            snap, probe = _sample(probe, pg_url, 5.0, watcher, None, False)
            assert probe.own_id != old and snap.own_id == probe.own_id
            assert snap.get(old or -1) is None
    finally:
        probe.close()


def test_top_live_in_a_terminal_answers_keys(mysql_url: str) -> None:
    import pty
    import select
    import time

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "pooldoctor", "top", mysql_url,
                             "--interval", "0.3"], stdin=slave, stdout=slave, stderr=slave,
                            env={**os.environ, "TERM": "xterm", "COLUMNS": "160",
                                 "LINES": "40"})
    os.close(slave)
    seen = b""

    def read_until(marker: bytes, timeout: float = 30.0) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while marker not in seen:
            left = deadline - time.monotonic()
            assert left > 0, seen[-2000:]
            r, _, _ = select.select([master], [], [], left)
            if r:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
    try:
        read_until(b"sort state-age")
        os.write(master, b"s")
        read_until(b"sort age")
        os.write(master, b"i")
        read_until(b"idle hidden")
        os.write(master, b"q")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


RUN_HOLDER = """
    import sys, time
    import sqlalchemy as sa

    engine = sa.create_engine(sys.argv[1])
    conn = engine.connect()  # HOLD-HERE
    conn.exec_driver_sql("SELECT 1")
    print("READY", flush=True)
    sys.stdin.readline()
    conn.close()
"""


def test_attribution_under_pooldoctor_run(pg_url: str, tmp_path: Path) -> None:
    prog = tmp_path / "run_prog.py"
    prog.write_text(textwrap.dedent(RUN_HOLDER))
    line = next(n for n, t in enumerate(prog.read_text().splitlines(), 1) if "HOLD-HERE" in t)
    rundir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "pooldoctor", "run", "-q", "--",
                             sys.executable, str(prog), pg_url], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "POOLDOCTOR_RUNTIME_DIR": str(rundir)})
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
        pub = wait_for(lambda: next((p for p in load(str(rundir)).values() if p.holds), None),
                       what="the program under `run` to publish its hold")
        sid = pub.holds[0]["server_id"]
        r = cli("snapshot", pg_url, "--runtime-dir", str(rundir), "--filter", f"id={sid}")
        assert r.returncode == 0, r.stderr
        assert f"run_prog.py:{line}" in r.stdout
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=60)
