"""No password ever leaves pooldoctor: every command and every finding path, run with URLs
that carry a recognisable password, on the real servers.

PostgreSQL here trusts local connections, so any password connects; on MariaDB a throwaway
user is created with the password (and dropped afterwards), plus a wrong-password variant.
Each test collects everything pooldoctor wrote (stdout, stderr, exit messages, report files,
JSON/SARIF, log records, Prometheus text, OpenTelemetry attributes, audit lines, published
holds) and asserts that no part of the password is in it.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.conftest import MYSQL_URL, need_server

PASSWORD = "pd-S3cret-xyzzy"
WRONG = "pd-S3cret-wrong"
MARK = "S3cret"  # in both: any part of either password that leaks is caught


def with_password(url: str, password: str = PASSWORD, user: str | None = None) -> str:
    u = make_url(url).set(password=password)
    if user is not None:
        u = u.set(username=user)
    return u.render_as_string(hide_password=False)


def assert_clean(*texts: Any) -> None:
    """None of ``texts`` (strings, bytes, log records, or anything repr()-able) holds MARK."""
    for t in texts:
        if isinstance(t, logging.LogRecord):
            t = f"{t.getMessage()} {t.args!r} {t.exc_text or ''} {vars(t)!r}"
        elif isinstance(t, bytes):
            t = t.decode("utf-8", "replace")
        elif not isinstance(t, str):
            t = repr(t)
        assert MARK not in t, f"password leaked: ...{t[max(0, t.find(MARK) - 200):][:400]}..."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def closed_port() -> int:
    """A local port nothing listens on (bound then released: connecting is refused)."""
    return free_port()


class Cli:
    """Run ``pooldoctor ARGS`` in this process as the console script does; keep the output."""

    def __init__(self, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture):
        self.capsys = capsys
        self.caplog = caplog

    def __call__(self, *args: str) -> tuple[int, str, str]:
        from pooldoctor.cli.main import main

        self.capsys.readouterr()
        try:
            main(list(args))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        else:  # pragma: no cover - main() always exits
            code = 0
        out, err = self.capsys.readouterr()
        assert_clean(out, err, *self.caplog.records)
        assert "Traceback" not in err
        return code, out, err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Cli:
    caplog.set_level(logging.DEBUG)
    return Cli(capsys, caplog)


@pytest.fixture
def pg_secret(pg_url: str) -> str:
    return with_password(pg_url)


@contextlib.contextmanager
def temporary_mysql_user(prefix: str, password: str, *grants: str) -> Iterator[str]:
    """A MariaDB user with ``password`` and ``grants`` (``"SELECT ON test.*"``...), dropped
    afterwards; yields its URL."""
    root = need_server(MYSQL_URL)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(root, poolclass=sa.pool.NullPool)
    with engine.connect() as c:
        c.exec_driver_sql(f"CREATE USER '{name}'@'%%' IDENTIFIED BY '{password}'")
        for grant in grants:
            what, _, on = grant.partition(" ON ")
            c.exec_driver_sql(f"GRANT {what} ON {on} TO '{name}'@'%%'")
    try:
        yield with_password(root, password, user=name)
    finally:
        with engine.connect() as c:
            c.exec_driver_sql(f"DROP USER IF EXISTS '{name}'@'%%'")
        engine.dispose()


@pytest.fixture(scope="module")
def mysql_user() -> Iterator[str]:
    """A MariaDB user whose password is PASSWORD (PROCESS for the server watch), dropped after."""
    with temporary_mysql_user("pd_sec", PASSWORD, "ALL ON test.*", "PROCESS ON *.*") as url:
        yield url


@pytest.fixture(params=["postgresql", "mysql"])
def secret_url(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        return with_password(request.getfixturevalue("pg_url"))
    url: str = request.getfixturevalue("mysql_user")
    return url


# ----------------------------------------------------------------------------- server commands


def test_server_commands_never_show_the_password(cli: Cli, secret_url: str,
                                                 tmp_path: Path) -> None:
    masked = make_url(secret_url).render_as_string(hide_password=True)
    code, out, _ = cli("snapshot", secret_url)
    assert code == 0 and masked in out  # the URL is shown, masked
    code, out, _ = cli("snapshot", secret_url, "--format", "json")
    assert code == 0 and json.loads(out)["snapshot"]
    code, out, _ = cli("top", secret_url, "--iterations", "1")
    assert code == 0 and masked in out
    report, state = tmp_path / "watch.json", tmp_path / "state.json"
    code, out, _ = cli("watch", secret_url, "--once", "--report", str(report), "--state",
                       str(state), "--format", "json")
    assert code in (0, 1)  # other engineers' connections may be idle in transaction
    assert_clean(report.read_text(), state.read_text())
    for fmt in ("text", "json"):
        code, out, _ = cli("kill", secret_url, "--user", "nobody-pd-secrets", "--format", fmt)
        assert code == 0
    code, out, _ = cli("advise", secret_url, "--workers", "2")
    assert code in (0, 1) and masked in out
    code, out, _ = cli("advise", secret_url, "--format", "json")
    assert code in (0, 1) and json.loads(out)["pools"][0]["url"] == masked


def test_connect_errors_never_show_the_password(cli: Cli, pg_url: str,
                                                mysql_user: str) -> None:
    port = closed_port()
    cases = [
        # (url, exit code, a piece of the expected message)
        (with_password(mysql_user, WRONG), 3, "Access denied"),
        (with_password(pg_url).replace(":5432/", f":{port}/"), 3, "cannot connect"),
        (mysql_user.replace(":3306/", f":{port}/"), 3, "cannot connect"),
        (with_password(pg_url).replace("/test", "/no_such_db_pd_secrets"), 3, "cannot connect"),
        (f"postgresql+nodriver://u:{PASSWORD}@127.0.0.1/db", 2, "unknown database or driver"),
        (f"nosuchdb://u:{PASSWORD}@127.0.0.1/db", 2, ""),
        (f"postgresql://u:{PASSWORD}@127.0.0.1:notaport/db", 2, "bad database url"),
        (f"postgresql+psycopg://u:{PASSWORD}@127.0.0.1:99999/db", 2, "out of range"),
        (f"u:{PASSWORD}@127.0.0.1/db", 2, "bad database url"),
        (f"://u:{PASSWORD}@127.0.0.1/db", 2, "bad database url"),
        (f"postgresql://u:p@{PASSWORD}@127.0.0.1/db", 2, "%40"),  # a raw "@" in it
    ]
    for url, want, piece in cases:
        for command in (["snapshot", url, "--timeout", "2"], ["advise", url]):
            code, out, err = cli(*command)
            assert (code, out) == (want, ""), (command, code, err)
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("pooldoctor: error: "), err
            assert piece in err, err


def test_pytest_server_option_masks_a_bad_url(tmp_path: Path, pg_url: str) -> None:
    test = tmp_path / "test_ok.py"
    test.write_text("def test_ok():\n    pass\n")
    url = with_password(pg_url).replace(":5432/", f":{closed_port()}/")
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pooldoctor",
                        "--pooldoctor-server", url, str(test)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert p.returncode != 0
    assert "cannot connect" in p.stdout + p.stderr
    assert_clean(p.stdout, p.stderr)


# ----------------------------------------------------------------------------- pooldoctor run

PROGRAM = '''
"""A program that makes every runtime finding (PD101-PD109) on a URL carrying a password."""
import gc, json, os, socket, sys, threading, time, urllib.request

import psycopg
import sqlalchemy as sa

from pooldoctor.runtime.publish import file_name

URL, PW = os.environ["PD_TEST_URL"], os.environ["PD_TEST_PW"]
out = {}
e1 = sa.create_engine(URL, pool_size=2, max_overflow=0, pool_timeout=0.3)
with e1.connect() as c:  # e1 keeps an idle connection (PD104 counts engines holding some)
    c.exec_driver_sql("SELECT 1")
e2 = sa.create_engine(URL, pool_size=1, max_overflow=0)  # PD104: two engines for one URL

with e2.connect() as c:  # PD106: a pooled connection used across fork()
    c.exec_driver_sql("SELECT 1")
pid = os.fork()
if pid == 0:
    with e2.connect() as c:
        c.exec_driver_sql("SELECT 1")
    os._exit(0)
os.waitpid(pid, 0)


def drop():  # PD102: dropped without close
    c = e1.connect()
    c.exec_driver_sql("SELECT 1")


drop()
gc.collect()
held = [e1.connect() for _ in range(2)]  # PD108, PD101, PD105
for c in held:
    c.exec_driver_sql(f"SELECT '{PW}' AS pw, 42")  # audit: the password as a literal
try:
    held[0].exec_driver_sql(f"SELECT '{PW}'::int")  # audit: a failure that quotes it
except Exception as ex:
    print("the program saw:", type(ex).__name__, file=sys.stderr)
held[0].rollback()
held[0].exec_driver_sql("SELECT 1")  # PD107: a transaction left open
try:
    e1.connect()  # PD103: the pool is exhausted
except Exception as ex:
    out["timeout"] = str(ex)
threading.Timer(0.2, held.pop().close).start()
held.append(e1.connect())  # PD109: waited for a connection
raw = psycopg.connect(f"host=127.0.0.1 user=postgres password={PW} dbname=test")  # raw PD105

path = os.path.join(os.environ["POOLDOCTOR_RUNTIME_DIR"],
                    file_name(os.getpid(), socket.gethostname()))
deadline = time.monotonic() + 15
while time.monotonic() < deadline:  # the published holds (written by the watchdog)
    try:
        with open(path) as fh:
            out["published"] = fh.read()
        if out["published"].count('"site"') >= 3:
            break
    except OSError:
        pass
    time.sleep(0.05)
deadline = time.monotonic() + 15
while time.monotonic() < deadline:  # the Prometheus endpoint of --metrics-port
    try:
        port = os.environ["PD_TEST_METRICS_PORT"]
        out["scrape"] = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
        break
    except OSError:
        time.sleep(0.05)
out["dashboard"] = {}
for path in ("/api/state", "/api/pools", "/api/holds", "/api/findings", "/"):
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the live dashboard of --dashboard
        try:
            port = os.environ["PD_TEST_DASHBOARD_PORT"]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as r:
                out["dashboard"][path] = r.read().decode()
            break
        except OSError:
            time.sleep(0.05)
time.sleep(0.5)  # past the PD101 / PD107 thresholds (0.3 s)
print(json.dumps(out))
'''

RUNTIME_CODES = {"PD101", "PD102", "PD103", "PD104", "PD105", "PD106", "PD107", "PD108",
                 "PD109"}


def test_run_every_runtime_finding_path(pg_secret: str, tmp_path: Path) -> None:
    prog = tmp_path / "prog.py"
    prog.write_text(PROGRAM)
    report, audit, rt = tmp_path / "report.json", tmp_path / "audit.jsonl", tmp_path / "rt"
    port, dash = free_port(), free_port()
    env = dict(os.environ, PD_TEST_URL=pg_secret, PD_TEST_PW=PASSWORD,
               PD_TEST_METRICS_PORT=str(port), PD_TEST_DASHBOARD_PORT=str(dash),
               POOLDOCTOR_RUNTIME_DIR=str(rt))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    p = subprocess.run(
        [sys.executable, "-m", "pooldoctor", "run", "--leak-threshold", "0.3",
         "--transaction-threshold", "0.3", "--wait-threshold", "0.05", "--many-threshold", "2",
         "--engine-threshold", "2", "--metrics-port", str(port), "--dashboard", str(dash),
         "--report", str(report),
         "--audit-log", str(audit), "--", sys.executable, str(prog)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    data = json.loads(report.read_text())
    assert {f["code"] for f in data["findings"]} == RUNTIME_CODES, p.stderr[-3000:]
    lines = audit.read_text().splitlines()
    assert any('"outcome":"error"' in ln.replace(" ", "") for ln in lines)
    assert any("SELECT ? AS pw, ?" in ln for ln in lines)
    assert "exhausted" in out["timeout"] and ":***@" in out["timeout"]  # PD103's TimeoutError
    assert '"holds"' in out["published"] and "pooldoctor_checkouts_total" in out["scrape"]
    assert len(out["dashboard"]) == 5 and ":***@" in out["dashboard"]["/api/pools"]
    assert ":***@" in p.stderr  # the summary names the pool, masked
    assert_clean(p.stdout, p.stderr, report.read_text(), audit.read_text(), out)


# ----------------------------------------------------------------------------- in-process guard


def test_in_process_guard_metrics_logs_and_errors(guard: Any, pg_secret: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from prometheus_client import CollectorRegistry, generate_latest

    import pooldoctor
    from pooldoctor import metrics
    from pooldoctor.metrics import otel, prometheus

    caplog.set_level(logging.DEBUG)
    seen: list[Any] = []
    unguarded = sa.create_engine(pg_secret)
    with pytest.raises(ValueError) as not_guarded:
        pooldoctor.stats(unguarded)
    seen.append(str(not_guarded.value))
    pooldoctor.instrument(leak_threshold=0.2, wait_threshold=0.01, engine_threshold=2,
                          many_threshold=2, on_finding=seen.append)
    metrics.enable()
    registry = CollectorRegistry()
    prometheus.register(registry)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    otel.instrument(provider)
    engines = [sa.create_engine(pg_secret, pool_size=1, max_overflow=0, pool_timeout=0.2)]
    try:
        held = engines[0].connect()
        engines.append(sa.create_engine(pg_secret, pool_size=1, max_overflow=0,
                                        pool_timeout=0.2))  # PD104
        held.exec_driver_sql("SELECT 1")
        with pytest.raises(sa.exc.TimeoutError) as exhausted:  # PD103
            engines[0].connect()
        seen.append(str(exhausted.value))
        assert ":***@" in str(exhausted.value)
        released = threading.Event()

        def release() -> None:
            held.close()
            released.set()

        threading.Timer(0.1, release).start()
        again = engines[0].connect()  # PD109
        assert released.wait(10)
        seen += [pooldoctor.holds(), pooldoctor.stats(), pooldoctor.report(include_held=True)]
        seen.append(pooldoctor.report(include_held=True).to_json())
        seen.append(pooldoctor.report(include_held=True).render_text(color=False))
        seen.append(generate_latest(registry))
        data = reader.get_metrics_data()
        assert data is not None
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    seen += [dict(dp.attributes or {}) for dp in m.data.data_points]
        again.close()
        codes = {f.code for f in pooldoctor.report().findings}
        assert {"PD103", "PD104", "PD109"} <= codes
        assert any(":***@" in str(s) for s in seen)
    finally:
        otel.uninstrument(provider)
        provider.shutdown()
        prometheus.unregister(registry)
        metrics.disable()
        for e in [*engines, unguarded]:
            e.dispose()
    assert any(r.name == "pooldoctor" for r in caplog.records)  # the findings were logged
    assert_clean(*seen, *caplog.records, *(f.to_dict() for f in seen
                                           if isinstance(f, pooldoctor.Finding)))


def test_gc_and_exit_findings_in_process(guard: Any, pg_secret: str,
                                         caplog: pytest.LogCaptureFixture) -> None:
    import pooldoctor

    caplog.set_level(logging.DEBUG)
    pooldoctor.instrument(log=True, exit_check=False)
    engine = sa.create_engine(pg_secret)
    try:
        def drop() -> None:
            engine.connect().exec_driver_sql("SELECT 1")

        drop()
        gc.collect()
        kept = engine.connect()
        report = pooldoctor.report(include_held=True)
        assert {"PD102", "PD105"} <= set(report.codes())
        assert_clean(report.to_json(), report.render_text(color=False, stacks=True),
                     *caplog.records)
        kept.close()
    finally:
        engine.dispose()


def test_engine_url_plugin_with_a_password(guard: Any, pg_secret: str,
                                           caplog: pytest.LogCaptureFixture) -> None:
    import pooldoctor

    caplog.set_level(logging.DEBUG)
    engine = sa.create_engine(f"{pg_secret}?plugin=pooldoctor&pooldoctor_leak_threshold=5")
    try:
        kept = engine.connect()
        report = pooldoctor.report(include_held=True)
        assert report.codes() == ["PD105"] and ":***@" in report.to_json()
        assert_clean(report.to_json(), report.render_text(color=False), pooldoctor.holds(),
                     pooldoctor.stats(engine), *caplog.records)
        kept.close()
        with pytest.raises(ValueError) as bad:
            sa.create_engine(f"{pg_secret}?plugin=pooldoctor&pooldoctor_leak_threshold=x")
        assert_clean(str(bad.value))
    finally:
        engine.dispose()


def test_internal_errors_and_log_lines_are_masked(guard: Any,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """The `pooldoctor` logger masks what any hook logs, tracebacks of internal errors too."""
    from pooldoctor.guard import GUARD
    from pooldoctor.sinks import logger

    caplog.set_level(logging.DEBUG)
    where = f"secrets-test-{uuid.uuid4().hex[:6]}"
    try:
        raise RuntimeError(f"cannot use postgresql://app:{PASSWORD}@db/app (password={WRONG})")
    except RuntimeError:
        GUARD.internal_error(where)
    logger.warning("pool %s said %r", f"mysql://root:{PASSWORD}@h/x", {"password": PASSWORD})
    assert where in caplog.text and "RuntimeError" in caplog.text and ":***@" in caplog.text
    assert_clean(caplog.text, *(r.getMessage() for r in caplog.records))


# ----------------------------------------------------------------------------- audit log


def test_audit_log_file_and_logger_remove_the_password(secret_url: str, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    from pooldoctor import audit

    caplog.set_level(logging.DEBUG)
    engine = sa.create_engine(secret_url)
    table = f"pd_secrets_{uuid.uuid4().hex[:8]}"
    path = tmp_path / "audit.jsonl"
    try:
        for target in (str(path), None):
            audit.enable(target, engine=engine, params=False)
            with engine.connect() as c:
                c.exec_driver_sql(f"CREATE TABLE {table} (n INTEGER, pw VARCHAR(40))")
                c.exec_driver_sql(f"INSERT INTO {table} VALUES (1, '{PASSWORD}')")
                c.exec_driver_sql(f"SELECT * FROM {table} WHERE pw = '{PASSWORD}'")
                c.exec_driver_sql(f"SELECT * FROM {table} WHERE pw = %(pw)s", {"pw": PASSWORD})
                c.commit()
                with pytest.raises(sa.exc.DBAPIError):  # the error message quotes the value
                    c.exec_driver_sql(f"INSERT INTO {table} (n) VALUES ('{PASSWORD}')")
                c.rollback()
                c.exec_driver_sql(f"DROP TABLE {table}")
                c.commit()
            audit.disable()
        lines = path.read_text().splitlines()
        logged = [r for r in caplog.records if r.name.startswith("pooldoctor.audit")]
        assert len(lines) >= 6 and len(logged) >= 6
        assert sum('"outcome": "error"' in ln or '"outcome":"error"' in ln for ln in lines) == 1
        assert_clean(*lines, *logged)
    finally:
        audit.disable()
        with engine.connect() as c:
            c.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            c.commit()
        engine.dispose()


# ----------------------------------------------------------------------------- pytest plugin

LEAKY_TEST = '''
import os
import sqlalchemy as sa

engine = sa.create_engine(os.environ["PD_TEST_URL"])


def test_leaks():
    conn = engine.connect()
    conn.exec_driver_sql("SELECT 1")
    test_leaks.kept = conn
'''


def test_pytest_plugin_report_and_output(pg_secret: str, pg_url: str, tmp_path: Path) -> None:
    (tmp_path / "test_leaky.py").write_text(LEAKY_TEST)
    report = tmp_path / "pd.json"
    env = dict(os.environ, PD_TEST_URL=pg_secret)
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pooldoctor",
                        "--pooldoctor-report", str(report), "--pooldoctor-server",
                        with_password(pg_url), "test_leaky.py"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert p.returncode == 1, p.stdout[-3000:]
    assert "PD105" in p.stdout and "1 error" in p.stdout
    data = json.loads(report.read_text())
    assert "PD105" in {f["code"] for f in data["findings"]}
    assert_clean(p.stdout, p.stderr, report.read_text())


def test_dashboard_with_a_server_url(pg_secret: str, tmp_path: Path) -> None:
    import httpx

    env = dict(os.environ, POOLDOCTOR_RUNTIME_DIR=str(tmp_path))
    p = subprocess.Popen([sys.executable, "-m", "pooldoctor", "dashboard", "--port", "0",
                          "--server", pg_secret, "--interval", "0.2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert p.stderr is not None
        first = ""
        for _ in range(50):  # the line that says where it listens (warnings may come first)
            first = p.stderr.readline()
            if "dashboard on " in first or not first:
                break
        assert "dashboard on http://127.0.0.1:" in first, first
        base = first.split("dashboard on ")[1].split("/ ")[0]
        pages = {path: httpx.get(base + path, timeout=10).text
                 for path in ("/", "/api/state", "/api/server", "/api/pools", "/api/holds",
                              "/api/findings", "/api/codes/PD101")}
        assert ":***@" in pages["/api/server"] or ":***@" in pages["/api/state"]
    finally:
        p.terminate()
        out, err = p.communicate(timeout=30)
    assert_clean(first, out, err, pages)


# ----------------------------------------------------------------------------- lint and advise

SOURCE = f'''
import psycopg
import sqlalchemy as sa

engine = sa.create_engine("postgresql+psycopg://app:{PASSWORD}@db/app", pool_size=5,
                          pool_recycle=1800)
BACKUP = "mysql+pymysql://root:{PASSWORD}@10.0.0.2/app?charset=utf8mb4"


def raw():
    return psycopg.connect(host="db", password="{PASSWORD}")
'''


def test_lint_reports_pd209_without_printing_it(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "settings.py"
    src.write_text(SOURCE)
    code, out, _ = cli("lint", str(src), "--select", "PD209")
    assert code == 1
    assert [ln.split(": ")[1].split()[0] for ln in out.splitlines()] == ["PD209"] * 3, out
    assert ":***@" in out
    for fmt in ("json", "sarif"):
        code, out, _ = cli("lint", str(src), "--format", fmt)
        assert code == 1 and "PD209" in out and json.loads(out)


def test_advise_from_source_and_report_with_a_password(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "settings.py"
    src.write_text(SOURCE)
    report = tmp_path / "edited.json"  # a report edited by hand, the URL unmasked
    url = f"postgresql+psycopg://app:{PASSWORD}@db/app"
    report.write_text(json.dumps({
        "schema": "pooldoctor.report/1", "tool": {"name": "pooldoctor", "version": "0"},
        "findings": [{"code": "PD103", "name": "pool-exhausted", "severity": "error",
                      "message": f"pool '{url}' exhausted", "site": None, "stack": [],
                      "count": 1, "details": {"url": url}}],
        "pools": [{"url": url, "pool_class": "QueuePool", "size": 5, "max_overflow": 10,
                   "checkouts": 1200, "timeouts": 3, "peak_checked_out": 15}]}))
    for fmt in ("text", "json"):
        code, out, _ = cli("advise", "--from-source", str(src), "--max-connections", "100",
                           "--format", fmt)
        assert code in (0, 1) and out
        code, out, _ = cli("advise", "--from-report", str(report), "--format", fmt)
        assert code == 1 and (fmt == "text" or ":***@" in out)


def test_conninfo_and_dict_passwords_are_masked() -> None:
    """Driver errors and printed settings pass through mask_text: conninfo and dicts too."""
    import psycopg

    from pooldoctor.urls import mask_text

    with pytest.raises(psycopg.OperationalError) as e:
        psycopg.connect(f"host=127.0.0.1 port={closed_port()} user=u password={PASSWORD} "
                        "connect_timeout=2")
    assert_clean(mask_text(str(e.value)), mask_text(f"dsn: host=h password={PASSWORD} x"),
                 mask_text(f"{{'password': '{PASSWORD}'}}"),
                 mask_text(textwrap.dedent(f"""password = "{PASSWORD}" """)))
