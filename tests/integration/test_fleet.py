"""A fleet: the server itself tells which host, process and line holds each connection.

Guarded workers run under ``pooldoctor run --tag-sql`` with publishing off (no holds file
anywhere), so every attribution below comes from what the server shows: statement tags in
``pg_stat_activity.query`` / the process list's ``INFO``, and the connection tag. The fleet
test puts each worker in its own PID and UTS namespace (``unshare --pid --uts --fork``): the
pids collide and each has its own host name; the watcher runs in yet another namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pooldoctor import sqlcomment

from ..conftest import REQUIRE

WORKER = str(Path(__file__).with_name("fleet_worker.py"))
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1", "POOLDOCTOR_NO_PUBLISH": "1", **extra}
    env.pop("PGAPPNAME", None)
    return env


@contextmanager
def workers(url: str, prefixes: list[list[str]],
            server_url: str | None = None) -> Iterator[list[dict[str, Any]]]:
    """Start one guarded worker per prefix (e.g. an ``unshare`` command line); yield what
    each printed (pid, host, lines, server ids); stop them and end their server sessions
    (on ``server_url`` when ``url`` is a PgBouncer's)."""
    procs: list[subprocess.Popen[str]] = []
    infos: list[dict[str, Any]] = []
    try:
        for prefix in prefixes:
            procs.append(subprocess.Popen(
                [*prefix, sys.executable, "-m", "pooldoctor", "run", "--quiet", "--tag-sql",
                 "--", sys.executable, WORKER, url],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, env=_env()))
        for p in procs:
            line = p.stdout.readline() if p.stdout else ""  # the worker's one line, or EOF
            if not line:
                err = p.stderr.read() if p.stderr else ""
                pytest.fail(f"a worker ended before it was ready: {err[-2000:]}")
            infos.append(json.loads(line))
        yield infos
    finally:
        for p in procs:
            try:
                if p.stdin:
                    p.stdin.close()
                p.wait(timeout=30)
            except Exception:
                p.kill()
                p.wait(timeout=10)
        end_sessions(server_url or url, infos)


def end_sessions(url: str, infos: list[dict[str, Any]]) -> None:
    """The workers' long statements would outlive them on the server: end them (by server
    id, and on PostgreSQL also by their tag: behind PgBouncer the ids may have moved)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            for info in infos:
                for i in info["ids"].values():
                    try:
                        if engine.dialect.name == "postgresql":
                            conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(i)})")
                        else:
                            conn.exec_driver_sql(f"KILL CONNECTION {int(i)}")
                    except Exception:
                        pass
                if engine.dialect.name == "postgresql":
                    conn.execute(sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE query LIKE :tag AND pid <> pg_backend_pid()"),
                        {"tag": f"%pd_host='{info['host']}',pd_pid='{info['pid']}'%"})
    finally:
        engine.dispose()


def snapshot(url: str, tmp: Path, prefix: list[str] | None = None) -> dict[int, dict[str, Any]]:
    """``pooldoctor snapshot --format json`` from an empty runtime dir: connections by id."""
    empty = tmp / "no-holds-files"
    empty.mkdir(exist_ok=True)
    r = subprocess.run([*(prefix or []), sys.executable, "-m", "pooldoctor", "snapshot", url,
                        "--format", "json", "--runtime-dir", str(empty)],
                       capture_output=True, text=True, timeout=120, env=_env())
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    return {c["id"]: c for c in doc["snapshot"]["connections"]}


def settled(url: str, tmp: Path, infos: list[dict[str, Any]], states: list[str],
            prefix: list[str] | None = None, timeout: float = 30.0) -> dict[int, dict[str, Any]]:
    """Snapshots until every worker's long statement is running (it starts in a thread just
    as the worker says it is ready), or the deadline; then the last one."""
    deadline = time.monotonic() + timeout
    while True:
        conns = snapshot(url, tmp, prefix)
        ready = all(conns.get(i["ids"]["active"], {}).get("state") == "active"
                    and (conns[i["ids"]["active"]].get("holder") or {}).get("site")
                    for i in infos)
        if ready or time.monotonic() > deadline:
            return conns
        time.sleep(0.2)


def settled_by_tag(url: str, tmp: Path, info: dict[str, Any],
                   timeout: float = 30.0) -> dict[int, dict[str, Any]]:
    """Snapshots until a connection tagged by this worker runs its long statement (behind
    PgBouncer the server ids the worker read may not be the ones holding now)."""
    deadline = time.monotonic() + timeout
    while True:
        conns = snapshot(url, tmp)
        if any(c["state"] == "active" and (c.get("holder") or {}).get("pid") == info["pid"]
               and (c.get("holder") or {}).get("hostname") == info["host"]
               and (c.get("holder") or {}).get("site") for c in conns.values()) \
                or time.monotonic() > deadline:
            return conns
        time.sleep(0.2)


def check(conns: dict[int, dict[str, Any]], info: dict[str, Any], states: list[str]) -> None:
    for state in states:
        c = conns[info["ids"][state]]
        h = c.get("holder") or {}
        assert (h.get("pid"), h.get("hostname")) == (info["pid"], info["host"]), c
        site = h.get("site") or {}
        assert site.get("file", "").endswith("fleet_worker.py"), c
        assert site.get("line") == info["lines"][state], c
        assert h.get("held") is True and h.get("source") == "statement", c


# ----------------------------------------------------------------------------- one host


def test_prepared_statements_keep_working_with_tags(pg_url: str, guard: object) -> None:
    import pooldoctor

    engine = sa.create_engine(pg_url)
    pooldoctor.instrument(engine, tag_sql=True, log=False, exit_check=False)
    try:
        with engine.connect() as conn:
            for i in range(8):  # psycopg prepares a statement from its 5th execution
                conn.execute(sa.text("SELECT CAST(:x AS int) + 0"), {"x": i})
            seen = conn.exec_driver_sql(
                "SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()").scalar_one()
            prepared = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE "
                "'SELECT CAST($1 AS int) + 0 /*pd_host=%%'").scalar_one()
        tags = sqlcomment.parse(seen)
        assert tags["pd_site"].endswith(":test_prepared_statements_keep_working_with_tags")
        assert prepared == 1  # one string per site: prepared once, reused
    finally:
        engine.dispose()


@pytest.mark.parametrize("server", ["postgresql", "mysql"])
def test_the_server_tells_host_pid_and_line_without_holds_files(
        server: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = request.getfixturevalue("pg_url" if server == "postgresql" else "mysql_url")
    with workers(url, [[]]) as infos:
        info = infos[0]
        states = ["idle_txn", "active"] if server == "postgresql" else ["active"]
        conns = settled(url, tmp_path, infos, states)
        # PostgreSQL shows the last statement of an idle connection too; MariaDB's process
        # list only the running one (idle in transaction shows nothing there)
        check(conns, info, states)
        r = subprocess.run([sys.executable, "-m", "pooldoctor", "kill", url, "--holder",
                            f"*fleet_worker.py:{info['lines']['active']}"],
                           capture_output=True, text=True, timeout=120, env=_env())
        assert r.returncode == 0, r.stderr
        chosen = [line for line in r.stdout.splitlines() if "fleet_worker.py" in line]
        assert len(chosen) == 1 and str(info["ids"]["active"]) in chosen[0], r.stdout


# ----------------------------------------------------------------------------- the fleet


def _namespaces_reason() -> str | None:
    if not shutil.which("unshare"):
        return "unshare is not installed"
    r = subprocess.run(["unshare", "--pid", "--uts", "--fork", "true"], capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        return f"this machine refuses PID/UTS namespaces: {r.stderr.strip()[:200]}"
    return None


def in_namespace(host: str) -> list[str]:
    """A command prefix: a new PID and UTS namespace named ``host``."""
    return ["unshare", "--pid", "--uts", "--fork", "sh", "-c", f'hostname {host} && exec "$@"',
            "sh"]


@pytest.mark.parametrize("server", ["postgresql", "mysql"])
def test_a_fleet_in_namespaces(server: str, request: pytest.FixtureRequest,
                               tmp_path: Path) -> None:
    reason = _namespaces_reason()
    if reason is not None:
        if REQUIRE:
            pytest.fail(f"POOLDOCTOR_REQUIRE_SERVERS=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    url = request.getfixturevalue("pg_url" if server == "postgresql" else "mysql_url")
    hosts = [f"pd-fleet-{i}" for i in range(3)]
    with workers(url, [in_namespace(h) for h in hosts]) as infos:
        assert len({i["pid"] for i in infos}) == 1, infos  # the pids collide
        assert sorted(i["host"] for i in infos) == hosts
        states = ["idle_txn", "active"] if server == "postgresql" else ["active"]
        conns = settled(url, tmp_path, infos, states, in_namespace("pd-watcher"))
        for info in infos:
            check(conns, info, states)
