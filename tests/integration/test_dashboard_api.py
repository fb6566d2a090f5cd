"""The dashboard's JSON API over a real guarded workload (SQLite, PostgreSQL, MariaDB), through
Starlette's TestClient; token and host enforcement; the standalone server view."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

pytest.importorskip("starlette")
from starlette.testclient import TestClient

import pooldoctor
from pooldoctor.dashboard import create_app
from pooldoctor.dashboard.data import Dashboard
from pooldoctor.runtime.sqlalchemy import stats_for
from pooldoctor.urls import mask_url

BASE = "http://127.0.0.1"


def here() -> int:
    return sys._getframe(1).f_lineno


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


@pytest.fixture
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A private runtime dir, so holds published by other test runs never show here."""
    d = tmp_path / "rt"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("POOLDOCTOR_RUNTIME_DIR", str(d))
    return str(d)


@pytest.fixture
def local(guard: Any, runtime_dir: str) -> Iterator[tuple[TestClient, Dashboard]]:
    pooldoctor.instrument(leak_threshold=60, log=False, drivers=False)
    dash = Dashboard(local=True, interval=0.05, runtime_dir=runtime_dir)
    with TestClient(create_app(dash), base_url=BASE) as client:
        yield client, dash
    dash.close()


def group_at(holds: dict[str, Any], file: str, line: int) -> dict[str, Any] | None:
    for g in holds["groups"]:
        s = g["site"] or {}
        if s.get("file") == file and s.get("line") == line:
            return g
    return None


def pool_row(pools: list[dict[str, Any]], engine: sa.Engine) -> dict[str, Any]:
    info = stats_for(engine)
    assert info is not None
    rows = [p for p in pools if p["key"] == f"{info.label}#{id(info):x}"]
    assert len(rows) == 1, pools
    assert rows[0]["url"] == mask_url(engine.url)
    return rows[0]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
def test_leak_appears_with_its_site_and_pool_figures_match(
        backend: str, request: pytest.FixtureRequest,
        local: tuple[TestClient, Dashboard]) -> None:
    client, _ = local
    url = request.getfixturevalue({"sqlite": "sqlite_url", "postgresql": "pg_url",
                                   "mysql": "mysql_url"}[backend])
    engine = sa.create_engine(url, pool_size=3, max_overflow=2, pool_timeout=5)
    try:
        for _ in range(3):
            with engine.connect() as c:
                c.execute(sa.text("SELECT 1"))
        leaked = engine.connect(); line = here()  # noqa: E702
        held_ok = engine.connect()
        try:
            holds = client.get("/api/holds").json()
            g = group_at(holds, __file__, line)
            assert g is not None, holds
            assert g["count"] == 1 and g["holds"][0]["stack"], g
            assert g["site"]["function"] == "test_leak_appears_with_its_site_and_pool_figures_match"
            assert g["holds"][0]["kind"] == "checkout"

            row = pool_row(client.get("/api/pools").json(), engine)
            pool = engine.pool
            assert isinstance(pool, sa.pool.QueuePool)
            assert (row["used"], row["idle"]) == (pool.checkedout(), pool.checkedin()) == (2, 0)
            assert (row["size"], row["max"], row["overflow"], row["waiting"]) == (3, 5, 0, 0)
            stats = pooldoctor.stats(engine)
            assert row["checkouts"] == stats["requests_num"] == 5
            assert row["hold_s"]["count"] == stats["returns_num"] == 3
            assert row["wait_s"]["count"] == 5 and sum(row["wait_s"]["counts"]) == 5
            assert row["timeouts"] == 0
            assert "password" not in str(row) and row["label"]
        finally:
            held_ok.close()
            leaked.close()
        holds = client.get("/api/holds").json()
        assert group_at(holds, __file__, line) is None  # returned: gone from the table
        row = pool_row(client.get("/api/pools").json(), engine)
        assert (row["used"], row["idle"]) == (0, 2)
    finally:
        engine.dispose()


def test_nothing_held_reports_no_group(local: tuple[TestClient, Dashboard],
                                       sqlite_url: str) -> None:
    """Connections used in `with` blocks never show as holds, and no findings appear."""
    client, _ = local
    engine = sa.create_engine(sqlite_url)
    try:
        for _ in range(5):
            with engine.connect() as c:
                c.execute(sa.text("SELECT 1"))
        state = client.get("/api/state").json()
        assert state["holds"]["total"] == 0 and state["holds"]["groups"] == []
        assert state["findings"] == []
        assert state["mode"] == "process" and state["server"] is None
    finally:
        engine.dispose()


def test_chart_history_grows_and_follows_the_pool(local: tuple[TestClient, Dashboard],
                                                  sqlite_url: str) -> None:
    client, _ = local
    engine = sa.create_engine(sqlite_url, pool_size=4, max_overflow=0)
    try:
        def history(ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
            h = pool_row(client.get("/api/pools").json(), engine)["history"]
            return h if ok(h) else None

        with engine.connect():
            first = len(pool_row(client.get("/api/pools").json(), engine)["history"]["t"])
            hist = wait_for(lambda: history(lambda h: len(h["t"]) >= first + 3))
            assert hist, "the history did not grow"
            assert hist["used"][-1] == 1
            assert hist["t"] == sorted(hist["t"])
        hist = wait_for(lambda: history(lambda h: h["used"][-1] == 0))
        assert hist and hist["idle"][-1] == 1
    finally:
        engine.dispose()


def test_finding_and_its_page(guard: Any, runtime_dir: str, sqlite_url: str) -> None:
    pooldoctor.instrument(leak_threshold=0.2, log=False, drivers=False)
    dash = Dashboard(local=True, interval=0.05)
    engine = sa.create_engine(sqlite_url)
    try:
        with TestClient(create_app(dash), base_url=BASE) as client:
            conn = engine.connect(); line = here()  # noqa: E702
            found = wait_for(lambda: [f for f in client.get("/api/findings").json()
                                      if f["code"] == "PD101"])
            conn.close()
            assert found, "PD101 did not appear"
            f = found[0]
            assert f["site"]["line"] == line and f["site"]["file"] == __file__
            assert f["hint"] and f["title"] and f["severity"] == "warning"
            page = client.get("/api/codes/PD101").json()
            assert page["code"] == "PD101" and "## Fix" in page["markdown"]
            assert client.get("/api/codes/PD999").status_code == 404
    finally:
        engine.dispose()
        dash.close()


def test_page_and_assets_are_served(local: tuple[TestClient, Dashboard]) -> None:
    client, _ = local
    r = client.get("/")
    assert r.status_code == 200 and "/static/app.js" in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "/api/state" in js.text
    assert client.get("/static/style.css").status_code == 200
    assert "http://" not in r.text.replace("http://www.w3.org", "")  # nothing from a CDN


# ---------------------------------------------------------------------- access


def test_token_is_enforced(runtime_dir: str) -> None:
    dash = Dashboard(local=False, runtime_dir=runtime_dir)
    token = "t0ken-for-tests"
    app = create_app(dash, token=token, loopback=False)
    with TestClient(app, base_url="http://dash.example") as client:
        for path in ("/", "/api/state", "/api/holds", "/static/app.js", "/api/codes/PD101"):
            assert client.get(path).status_code == 401, path
        assert client.get("/api/state", headers={"Authorization": "Bearer wrong-token"}
                          ).status_code == 401
        assert client.get("/api/state?token=wrong-token").status_code == 401
        assert client.get("/api/state", headers={"Authorization": f"Bearer {token}"}
                          ).status_code == 200
        r = client.get(f"/?token={token}")
        assert r.status_code == 200 and "HttpOnly" in r.headers["set-cookie"]
        # the cookie now carries the page's own requests
        assert client.get("/static/app.js").status_code == 200
        assert client.get("/api/state").json()["mode"] == "standalone"
    with TestClient(app, base_url="http://dash.example") as fresh:
        assert fresh.get("/api/state").status_code == 401


def test_loopback_rejects_foreign_host_headers(runtime_dir: str) -> None:
    """DNS rebinding: a page of another site must not read a loopback dashboard."""
    app = create_app(Dashboard(local=False, runtime_dir=runtime_dir))
    with TestClient(app, base_url="http://attacker.example") as client:
        assert client.get("/api/state").status_code == 403
    for base in ("http://127.0.0.1:8765", "http://localhost", "http://[::1]:8765"):
        with TestClient(app, base_url=base) as client:
            assert client.get("/api/state").status_code == 200, base


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pooldoctor", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("args, needle", [
    (("--host", "0.0.0.0"), "without --token"),
    (("--host", "192.0.2.1", "--port", "1"), "without --token"),
    (("--host", "0.0.0.0", "--token", "short"), "at least 8"),
])
def test_cli_refuses_open_binding_without_token(args: tuple[str, ...], needle: str) -> None:
    env_token = os.environ.pop("POOLDOCTOR_DASHBOARD_TOKEN", None)
    try:
        r = run_cli("dashboard", *args)
    finally:
        if env_token is not None:
            os.environ["POOLDOCTOR_DASHBOARD_TOKEN"] = env_token
    assert r.returncode == 2, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pooldoctor: error: ") and needle in lines[0]
    assert "Traceback" not in r.stderr


def test_cli_unreachable_server_is_one_masked_line() -> None:
    r = run_cli("dashboard", "--port", "0", "--timeout", "2",
                "--server", "postgresql+psycopg://u:hunter2secret@127.0.0.1:1/db")
    assert r.returncode == 3, r
    assert "hunter2secret" not in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------- server view


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_server_view_attributes_a_leak_to_its_site(
        backend: str, request: pytest.FixtureRequest, guard: Any, runtime_dir: str) -> None:
    url = request.getfixturevalue("pg_url" if backend == "postgresql" else "mysql_url")
    pooldoctor.instrument(leak_threshold=60, log=False, drivers=False)
    engine = sa.create_engine(url, pool_size=2, max_overflow=0)
    dash = Dashboard(local=False, server_url=url, runtime_dir=runtime_dir, interval=0.05)
    try:
        conn = engine.connect(); line = here()  # noqa: E702
        sid = conn.connection.dbapi_connection
        sid = sid.info.backend_pid if backend == "postgresql" else sid.thread_id()
        with TestClient(create_app(dash), base_url=BASE) as client:
            def attributed() -> dict[str, Any] | None:
                s = client.get("/api/server").json()
                c = next((c for c in s.get("connections", []) if c["id"] == sid), None)
                return s if c and (c.get("holder") or {}).get("site") else None

            s = wait_for(attributed)
            assert s, "the leaked connection was not attributed"
            c = next(c for c in s["connections"] if c["id"] == sid)
            assert c["holder"]["site"]["line"] == line
            assert c["holder"]["pid"] == os.getpid()
            assert s["limit"] > 0 and s["total"] >= 2 and s["error"] is None
            assert sum(s["states"].values()) == s["total"]
            assert s["attributed"] >= 1 and len(s["history"]["t"]) >= 1
            assert any(g["total"] >= 1 for g in s["applications"])
            for g in s["applications"]:
                assert g["active"] + g["idle"] + g["in_transaction"] <= g["total"]
            site = next(g for g in s["sites"] if g["site"]["line"] == line)
            assert sid in site["ids"] and site["pids"] == [os.getpid()]
            # standalone: the published hold also shows in the holds table, with its pid
            g = group_at(client.get("/api/holds").json(), __file__, line)
            assert g is not None and g["holds"][0]["pid"] == os.getpid()
            assert client.get("/api/pools").json() == []
        conn.close()
    finally:
        dash.close()
        engine.dispose()


def test_server_view_reports_an_unreachable_server(runtime_dir: str) -> None:
    dash = Dashboard(local=False, server_url="postgresql+psycopg://u:pw-secret-9@127.0.0.1:1/x",
                     runtime_dir=runtime_dir, timeout=1)
    try:
        with TestClient(create_app(dash), base_url=BASE) as client:
            s = client.get("/api/server").json()
            assert s["error"] and "pw-secret-9" not in str(s)
            assert client.get("/api/state").status_code == 200
    finally:
        dash.close()


def test_wait_histogram_includes_checkouts_that_timed_out(
        local: tuple[TestClient, Dashboard], sqlite_url: str) -> None:
    client, _ = local
    engine = sa.create_engine(sqlite_url, poolclass=sa.pool.QueuePool, pool_size=1,
                              max_overflow=0, pool_timeout=0.3)
    try:
        held = engine.connect()
        try:
            with pytest.raises(sa.exc.TimeoutError):
                engine.connect()
        finally:
            held.close()
        row = pool_row(client.get("/api/pools").json(), engine)
        wait = row["wait_s"]
        assert row["timeouts"] == 1 and wait["timed_out"] == 1
        assert wait["count"] == sum(wait["counts"]) == 2  # the one that got its connection, too
        # the longest wait (the timed-out one) is in the sum; both are rounded, to µs
        assert wait["sum"] >= 0.3 and wait["sum"] * 1000 >= row["max_wait_ms"] - 0.002 > 0
    finally:
        engine.dispose()
