"""The dashboard page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)
against real guarded workloads started with `pooldoctor run --dashboard`: the chart moves, the
leaks appear in the holders table with their sites, findings open their explanation; the
standalone dashboard attributes server connections to the workload's sites.

Skipped when Chromium or Playwright is missing, except under POOLDOCTOR_REQUIRE_BROWSER=1 (CI),
where that fails. Set POOLDOCTOR_DASHBOARD_SCREENSHOTS=docs/img to refresh the documentation's
screenshots (otherwise they go to the test's temporary directory).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

WORKLOAD = '''\
import os, sys, threading, time
import sqlalchemy as sa

url, stop = sys.argv[1], sys.argv[2]
engine = sa.create_engine(url, pool_size=4, max_overflow=2, pool_timeout=5)
deadline = time.monotonic() + 120


def running():
    return not os.path.exists(stop) and time.monotonic() < deadline


def churn():
    while running():
        with engine.connect() as c:
            c.execute(sa.text("SELECT 1"))
            time.sleep(0.05)
        time.sleep(0.02)


def open_report(n):
    return [engine.connect() for _ in range(n)]  # REPORT_LINE


threading.Thread(target=churn, daemon=True).start()
leaked = engine.connect()  # LEAK_LINE
reports = open_report(2)
print("ready", flush=True)
while running():
    time.sleep(0.05)
for c in [leaked, *reports]:
    c.close()
engine.dispose()
'''


def line_of(marker: str) -> int:
    return next(i for i, text in enumerate(WORKLOAD.splitlines(), 1) if marker in text)


def need_browser() -> Any:
    reason = None
    if not os.path.exists(CHROMIUM):
        reason = (f"{CHROMIUM} is missing: apt-get update && apt-get install -y chromium")
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            reason = "playwright is not installed: pip install playwright"
    if reason:
        if os.environ.get("POOLDOCTOR_REQUIRE_BROWSER") == "1":
            pytest.fail(f"POOLDOCTOR_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return sync_playwright


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}: {proc.stderr.read()}")  # type: ignore[union-attr]
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def shots_dir(tmp_path: Path) -> Path:
    d = Path(os.environ.get("POOLDOCTOR_DASHBOARD_SCREENSHOTS") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def workload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Start ``pooldoctor run [--dashboard PORT] -- python workload.py URL``; stop it after."""
    rt = tmp_path / "rt"
    rt.mkdir(mode=0o700)
    monkeypatch.setenv("POOLDOCTOR_RUNTIME_DIR", str(rt))
    script = tmp_path / "workload.py"
    script.write_text(WORKLOAD)
    stop = tmp_path / "stop"
    procs: list[subprocess.Popen[str]] = []

    def start(url: str, *run_args: str) -> subprocess.Popen[str]:
        p = subprocess.Popen([sys.executable, "-m", "pooldoctor", "run", "-q", *run_args, "--",
                              sys.executable, str(script), url, str(stop)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=tmp_path)
        procs.append(p)
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        return p

    yield start
    stop.touch()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def launch(pw: Any) -> Any:
    return pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def test_page_shows_live_pool_chart_leaks_and_findings(workload: Any, sqlite_url: str,
                                                       tmp_path: Path) -> None:
    sync_playwright = need_browser()
    port = free_port()
    proc = workload(sqlite_url, "--dashboard", str(port), "--leak-threshold", "1")
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/api/state", proc)
    leak_site = f"workload.py:{line_of('LEAK_LINE')}"
    report_site = f"workload.py:{line_of('REPORT_LINE')}"
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base + "/")
            chart = page.locator("#pools svg.chart").first
            chart.wait_for()
            page.wait_for_function(
                "() => +document.querySelector('#pools svg.chart').dataset.points >= 2")
            first = int(chart.get_attribute("data-points") or 0)
            # the chart moves: more points after further polls
            page.wait_for_function(
                f"() => +document.querySelector('#pools svg.chart').dataset.points >= {first + 2}",
                timeout=15000)
            assert page.locator("#pools svg.chart polyline[data-series=used]").count() == 1

            # the leaks, by site: the one held longest first
            leak_row = page.locator(f"#holds tr.group[data-site$='{leak_site}']")
            leak_row.wait_for()
            rows = page.locator("#holds tr.group")
            sites = [rows.nth(i).get_attribute("data-site") or "" for i in range(rows.count())]
            assert sites.index(next(s for s in sites if s.endswith(leak_site))) < sites.index(
                next(s for s in sites if s.endswith(report_site))), sites
            report_row = page.locator(f"#holds tr.group[data-site$='{report_site}']")
            assert report_row.locator("td").nth(1).inner_text() == "2"
            leak_row.click()  # the stacks, a click away
            page.locator("#holds tr.detail pre", has_text="workload.py").first.wait_for()

            # findings as they happen (PD101 after 1 s), with the explanation a click away
            finding = page.locator("#findings tr.finding[data-code=PD101]").first
            finding.wait_for(timeout=15000)
            assert "workload.py" in finding.inner_text()
            finding.click()
            page.locator("#code-doc h2", has_text="Fix").wait_for()
            assert not page.locator("#server-section").is_visible()
            assert errors == []
            page.wait_for_function(
                "() => +document.querySelector('#pools svg.chart').dataset.points >= 8",
                timeout=20000)
            page.screenshot(path=str(shots_dir(tmp_path) / "dashboard-process.png"),
                            full_page=True)
        finally:
            browser.close()


def test_standalone_page_attributes_server_connections(workload: Any, pg_url: str,
                                                       tmp_path: Path) -> None:
    sync_playwright = need_browser()
    workload(pg_url)  # publishes its holds into the shared runtime dir
    port = free_port()
    token = "browser-test-token"
    dash = subprocess.Popen([sys.executable, "-m", "pooldoctor", "dashboard", "--port", str(port),
                             "--server", pg_url, "--token", token,
                             "--runtime-dir", os.environ["POOLDOCTOR_RUNTIME_DIR"]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    leak_site = f"workload.py:{line_of('LEAK_LINE')}"
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/api/state?token={token}", dash)
        with sync_playwright() as pw:
            browser = launch(pw)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(f"{base}/?token={token}")
                page.locator("#server-section").wait_for()
                held = page.locator("#server-conns td details summary", has_text=leak_site)
                held.first.wait_for(timeout=15000)
                page.locator(f"#holds tr.group[data-site$='{leak_site}']").wait_for()
                site_row = page.locator(f"#server-sites tr[data-site$='{leak_site}']")
                site_row.wait_for()
                assert site_row.locator("td").nth(1).inner_text() == "1"
                assert page.locator("#pools .pool").count() == 0
                page.wait_for_function(
                    "() => +document.querySelector('#server-chart').dataset.points >= 3",
                    timeout=15000)
                assert "postgres@" in page.locator("#server-url").inner_text()
                assert errors == []
                page.screenshot(path=str(shots_dir(tmp_path) / "dashboard-server.png"),
                                full_page=True)
            finally:
                browser.close()
    finally:
        dash.terminate()
        try:
            dash.wait(timeout=10)
        except subprocess.TimeoutExpired:
            dash.kill()
            dash.wait()
