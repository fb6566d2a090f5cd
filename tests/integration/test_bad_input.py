"""Bad input everywhere: one clear line on stderr, the right exit code, no traceback, nothing
written that shouldn't be.

Each case runs ``pooldoctor ARGS`` in this process through the console entry point
(``pooldoctor.cli.main.main``); a few also run as a real subprocess. Servers are the real
ones; a throwaway unprivileged PostgreSQL role and MariaDB user are created and dropped.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.conftest import MYSQL_URL, PG_URL, need_server
from tests.integration.test_secrets import Cli, closed_port, temporary_mysql_user, with_password

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Cli:
    caplog.set_level(logging.DEBUG)
    return Cli(capsys, caplog)


@dataclass
class Case:
    args: list[str]
    code: int
    piece: str  # a part of the one error line (or of stderr for exit 0/1)
    needs: str = ""  # "pg" / "mysql": the case uses that server


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("bad_input")
    (d / "empty").mkdir()
    (d / "nul.py").write_bytes(b"import os\x00\nx = 1\n")
    (d / "binary.py").write_bytes(os.urandom(3 * 1024 * 1024))  # a few MB of noise
    (d / "latin1.py").write_bytes("NAME = 'caf\xe9'\n".encode("latin-1"))
    (d / "broken.py").write_text("def connect(:\n    pass\n")  # a database word: parsed
    (d / "big.py").write_text("".join(f"VALUE_{i} = {i}  # a long line of padding, padding\n"
                                      for i in range(60_000)))  # ~3 MB of valid Python
    (d / "notreport.json").write_text('{"a": 1}')
    (d / "bad.toml").write_text('[tool.pooldoctor.lint]\nselect = "PD2\n')
    (d / "ok.py").write_text("x = 1\n")
    (d / "notexec.sh").write_text("#!/bin/sh\ntrue\n")
    return {p.name: str(p) for p in d.iterdir()} | {"dir": str(d)}


def cases(f: dict[str, str]) -> list[Case]:
    pg, nodir = PG_URL, os.path.join(f["dir"], "no-such-folder")
    closed = PG_URL.replace(":5432/", f":{closed_port()}/")
    return [
        # top level
        Case(["no-such-command"], EXIT_USAGE, "No such command"),
        # lint: files that cannot be read are reported, not findings (exit 0)
        Case(["lint", f["empty"]], EXIT_OK, "no findings (0 files checked)"),
        Case(["lint", f["nul.py"]], EXIT_OK, "cannot parse: binary file"),
        Case(["lint", f["binary.py"]], EXIT_OK, "cannot parse"),
        Case(["lint", f["latin1.py"]], EXIT_OK, "cannot parse"),
        Case(["lint", f["broken.py"]], EXIT_OK, "cannot parse: line 1"),
        Case(["lint", f["big.py"]], EXIT_OK, "no findings (1 file checked)"),
        Case(["lint", os.path.join(f["dir"], "missing.py")], EXIT_USAGE, "does not exist"),
        Case(["lint", f["ok.py"], "--select", "PD999"], EXIT_USAGE, "unknown lint code 'PD999'"),
        Case(["lint", f["ok.py"], "--select", "PD101"], EXIT_USAGE, "unknown lint code 'PD101'"),
        Case(["lint", f["ok.py"], "--ignore", "XYZ"], EXIT_USAGE, "unknown lint code 'XYZ'"),
        Case(["lint", f["ok.py"], "--select", ","], EXIT_USAGE, "--select names no code"),
        Case(["lint", f["ok.py"], "--format", "xml"], EXIT_USAGE, "'--format'"),
        Case(["lint", f["ok.py"], "--config", f["binary.py"]], EXIT_USAGE, "not UTF-8"),
        Case(["lint", f["ok.py"], "--config", f["bad.toml"]], EXIT_USAGE, "cannot read"),
        Case(["lint", f["ok.py"], "--config", nodir], EXIT_USAGE, "does not exist"),
        # explain, demo
        Case(["explain", "PD999"], EXIT_USAGE, "unknown code 'PD999'"),
        Case(["explain", "PD1"], EXIT_USAGE, "unknown code 'PD1'"),
        Case(["demo", "no-such-scenario"], EXIT_USAGE, "unknown scenario"),
        # run: checked before the program starts
        Case(["run"], EXIT_USAGE, "Missing argument"),
        Case(["run", "--"], EXIT_USAGE, "Missing argument"),
        Case(["run", "--", os.path.join(nodir, "cmd")], EXIT_USAGE, "command not found"),
        Case(["run", "--", f["notexec.sh"]], EXIT_USAGE, "cannot run"),
        Case(["run", "--leak-threshold", "-1", "--", "true"], EXIT_USAGE, "--leak-threshold"),
        Case(["run", "--many-threshold", "0", "--", "true"], EXIT_USAGE, "--many-threshold"),
        Case(["run", "--metrics-port", "70000", "--", "true"], EXIT_USAGE, "--metrics-port"),
        Case(["run", "--audit-sample", "2", "--", "true"], EXIT_USAGE, "--audit-sample"),
        Case(["run", "--report", os.path.join(nodir, "r.json"), "--", "true"], EXIT_USAGE,
             "does not exist"),
        Case(["run", "--audit-log", os.path.join(nodir, "a.jsonl"), "--", "true"], EXIT_USAGE,
             "does not exist"),
        # advise: inconsistent or impossible numbers
        Case(["advise", "--workers", "0"], EXIT_USAGE, "--workers"),
        Case(["advise", "--pool-size", "-1"], EXIT_USAGE, "--pool-size"),
        Case(["advise", "--max-overflow", "-2"], EXIT_USAGE, "--max-overflow"),
        Case(["advise", "--headroom", "0.5"], EXIT_USAGE, "--headroom"),
        Case(["advise", "--max-connections", "100", "--reserved", "200"], EXIT_USAGE,
             "reserved 200 must be less than max_connections 100"),
        Case(["advise", "--max-connections", "10", "--used-by-others", "50"], EXIT_USAGE,
             "used by others 50 cannot exceed max_connections 10"),
        Case(["advise", "--pool", "x"], EXIT_USAGE, "--pool needs --from-report"),
        Case(["advise", "--from-report", os.path.join(nodir, "r.json")], EXIT_USAGE,
             "cannot read report"),
        Case(["advise", "--from-report", f["binary.py"]], EXIT_USAGE, "not UTF-8"),
        Case(["advise", "--from-report", f["notreport.json"]], EXIT_USAGE,
             "is not a pooldoctor.report/1 file"),
        Case(["advise", "--from-source", os.path.join(nodir, "x.py")], EXIT_USAGE,
             "no such file"),
        Case(["advise", "--from-source", f["binary.py"]], EXIT_USAGE, "no create_engine()"),
        # the server watch: URLs
        Case(["snapshot", ""], EXIT_USAGE, "bad database url"),
        Case(["snapshot", "not a url"], EXIT_USAGE, "bad database url"),
        Case(["snapshot", "sqlite:///x.db"], EXIT_USAGE, "needs a postgresql or mysql"),
        Case(["snapshot", "nosuchdb://h/d"], EXIT_USAGE, "needs a postgresql or mysql"),
        Case(["snapshot", "postgresql+nodriver://h/d"], EXIT_USAGE, "unknown database or driver"),
        Case(["advise", "mysql+nodriver://h/d"], EXIT_USAGE, "unknown database or driver"),
        Case(["snapshot", "postgresql://u@h:port/d"], EXIT_USAGE, "bad database url"),
        Case(["snapshot", pg.replace(":5432/", ":99999/")], EXIT_USAGE, "out of range"),
        Case(["advise", pg.replace(":5432/", ":0/")], EXIT_USAGE, "out of range"),
        Case(["snapshot", closed, "--timeout", "2"], EXIT_UNAVAILABLE, "Connection refused"),
        Case(["advise", closed], EXIT_UNAVAILABLE, "Connection refused"),
        Case(["watch", closed, "--once"], EXIT_UNAVAILABLE, "Connection refused"),
        Case(["kill", closed, "--all"], EXIT_UNAVAILABLE, "Connection refused"),
        Case(["top", closed, "--iterations", "1"], EXIT_UNAVAILABLE, "Connection refused"),
        Case(["snapshot", "postgresql+psycopg://u@host.invalid/d", "--timeout", "2"],
             EXIT_UNAVAILABLE, "cannot connect"),
        Case(["snapshot", pg.replace("/test", "/no_such_db_pd_bad")], EXIT_UNAVAILABLE,
             "does not exist", "pg"),
        Case(["snapshot", with_password(MYSQL_URL, "pd-wrong-pw")], EXIT_UNAVAILABLE,
             "Access denied", "mysql"),
        # the server watch: options
        Case(["snapshot", pg, "--filter", "bogus"], EXIT_USAGE, "bad filter 'bogus'"),
        Case(["snapshot", pg, "--timeout", "-1"], EXIT_USAGE, "--timeout"),
        Case(["watch", pg, "--near", "0"], EXIT_USAGE, "--near"),
        Case(["watch", pg, "--interval", "-5"], EXIT_USAGE, "not a positive duration"),
        Case(["watch", pg, "--idle", "soon"], EXIT_USAGE, "not a positive duration"),
        Case(["watch", pg, "--growth-samples", "1"], EXIT_USAGE, "--growth-samples"),
        Case(["watch", pg, "--once", "--report", os.path.join(nodir, "r.json")], EXIT_USAGE,
             "does not exist"),
        Case(["watch", pg, "--once", "--state", f["binary.py"]], EXIT_USAGE,
             "cannot read the watch state", "pg"),
        Case(["kill", pg], EXIT_USAGE, "kill needs a filter"),
        Case(["kill", pg, "--pid", "abc"], EXIT_USAGE, "--pid"),
        Case(["top", pg, "--iterations", "0"], EXIT_USAGE, "--iterations"),
        # the dashboard: refused before it serves anything
        Case(["dashboard", "--server", closed], EXIT_UNAVAILABLE, "Connection refused"),
        Case(["dashboard", "--server", "not a url"], EXIT_USAGE, "bad database url"),
        Case(["dashboard", "--server", "sqlite:///x.db"], EXIT_USAGE, "needs a postgresql"),
        Case(["dashboard", "--host", "0.0.0.0"], EXIT_USAGE, "without --token"),
        Case(["dashboard", "--token", "short"], EXIT_USAGE, "at least 8"),
        Case(["dashboard", "--port", "70000"], EXIT_USAGE, "--port"),
        Case(["dashboard", "--runtime-dir", f["ok.py"]], EXIT_USAGE, "is a file"),
    ]


def _ids() -> list[str]:
    fake = {k: k for k in ("empty", "nul.py", "binary.py", "latin1.py", "broken.py", "big.py",
                           "notreport.json", "bad.toml", "ok.py", "notexec.sh", "dir")}
    out = []
    for c in cases(fake):
        words = [a for a in c.args if not a.startswith(("postgresql", "mysql"))]
        out.append(" ".join(words)[:60] or "empty")
    return out


@pytest.mark.parametrize("index", range(len(_ids())), ids=_ids())
def test_bad_input(cli: Cli, files: dict[str, str], index: int,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(files["dir"])  # a relative file written by mistake would show up here
    case = cases(files)[index]
    if case.needs:
        need_server(PG_URL if case.needs == "pg" else MYSQL_URL)
    before = set(os.listdir(files["dir"]))
    code, out, err = cli(*case.args)
    lines = err.strip().splitlines()
    assert code == case.code, (case.args, code, err)
    assert case.piece in err, err
    if code >= EXIT_USAGE:
        assert out == "", out  # nothing on stdout when the command could not do its job
        assert len(lines) == 1 and lines[0].startswith("pooldoctor: error: "), err
        assert lines[0][len("pooldoctor: error: "):][:1].strip(), err
    else:
        assert len(lines) <= 2 and lines[-1].startswith("pooldoctor: "), err  # reason, summary
    assert set(os.listdir(files["dir"])) == before  # nothing written beside the inputs


def test_lint_json_stays_valid_with_unreadable_files(cli: Cli, files: dict[str, str]) -> None:
    for fmt in ("json", "sarif"):
        code, out, err = cli("lint", files["nul.py"], files["latin1.py"], files["broken.py"],
                             "--format", fmt)
        assert code == EXIT_OK and json.loads(out)
        assert err.count("cannot parse") == 3


def test_console_script_in_a_subprocess(tmp_path: Path) -> None:
    """The installed entry point: the same single line, and no report file on a usage error."""
    report = tmp_path / "r.json"
    for args, want in ((["snapshot", "not a url"], EXIT_USAGE),
                       (["run", "--report", str(report), "--leak-threshold", "0", "--", "true"],
                        EXIT_USAGE),
                       (["lint", str(tmp_path), "--select", "NOPE"], EXIT_USAGE)):
        p = subprocess.run([sys.executable, "-m", "pooldoctor", *args], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == want, p.stderr
        assert p.stdout == "" and len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert "Traceback" not in p.stderr
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- privileges


@pytest.fixture
def low_pg_role(pg_url: str) -> Iterator[str]:
    """A PostgreSQL role that may log in and read statistics but not signal backends."""
    name = f"pd_bad_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool,
                              isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.exec_driver_sql(f"CREATE ROLE {name} LOGIN IN ROLE pg_read_all_stats")
    try:
        yield make_url(pg_url).set(username=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as c:
            c.exec_driver_sql(f"DROP ROLE IF EXISTS {name}")
        engine.dispose()


@pytest.fixture
def low_mysql_user() -> Iterator[str]:
    """A MariaDB user with SELECT on the test database only (no PROCESS, no SUPER)."""
    with temporary_mysql_user("pd_bad", "pd-low-pw", "SELECT ON test.*") as url:
        yield url


def test_pg_kill_without_the_privilege(cli: Cli, pg_url: str, low_pg_role: str) -> None:
    app = f"pd-bad-target-{uuid.uuid4().hex[:8]}"
    target = sa.create_engine(pg_url, poolclass=sa.pool.NullPool,
                              connect_args={"application_name": app})
    with target.connect():
        code, out, err = cli("kill", low_pg_role, "--application", app, "--yes")
        assert code == EXIT_UNAVAILABLE, out + err
        assert "not terminated" in out and "must be a superuser" in out, out
        assert "terminated 0 of 1" in out
        code, out, err = cli("snapshot", low_pg_role, "--filter", f"application={app}")
        assert code == EXIT_OK and app in out
    target.dispose()


def test_pg_role_without_connect_rights(cli: Cli, pg_url: str, low_pg_role: str) -> None:
    no_db = low_pg_role.replace("/test", f"/pd_bad_nodb_{uuid.uuid4().hex[:6]}")
    code, _, err = cli("advise", no_db)
    assert code == EXIT_UNAVAILABLE and "does not exist" in err


def test_mysql_without_process_privilege(cli: Cli, low_mysql_user: str) -> None:
    code, out, err = cli("snapshot", low_mysql_user)
    assert code == EXIT_OK and "PROCESS" in out  # a note says what cannot be seen
    code, out, err = cli("advise", low_mysql_user, "--format", "json")
    assert code in (EXIT_OK, EXIT_FINDINGS) and json.loads(out)
    no_db = low_mysql_user.replace("/test", "/pd_bad_nodb")
    code, out, err = cli("snapshot", no_db)
    assert code == EXIT_UNAVAILABLE and "(1044) Access denied" in err


# ----------------------------------------------------------------------------- engine url plugin


@pytest.mark.parametrize(("query", "message"), [
    ("pooldoctor_leak_threshold=abc", "'pooldoctor_leak_threshold' in the engine url must be a "
                                      "number, got 'abc'"),
    ("pooldoctor_leak_threshold=-1", "leak_threshold must be positive, got -1.0"),
    ("pooldoctor_many_threshold=0", "many_threshold must be at least 1, got 0"),
    ("pooldoctor_fork_safety=maybe", "fork_safety must be 'warn' or 'repair'"),
    ("pooldoctor_nope=1", "unknown pooldoctor option 'pooldoctor_nope'"),
])
def test_engine_url_plugin_options(guard: object, tmp_path: Path, query: str,
                                   message: str) -> None:
    """`?plugin=pooldoctor` with a bad option fails at create_engine() with one clear error
    (before: a bad value was an internal error with a traceback and an unguarded engine)."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}?plugin=pooldoctor&{query}"
    with pytest.raises(ValueError) as e:
        sa.create_engine(url)
    assert message in str(e.value)


# ----------------------------------------------------------------------------- pytest plugin


def test_pytest_plugin_options(tmp_path: Path) -> None:
    """Bad plugin options stop pytest before any test runs (exit 4, pytest's usage error)."""
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    pass\n")
    missing = tmp_path / "no-such-folder" / "r.json"
    runs = {
        "--pooldoctor-leak-threshold=-1": "pooldoctor_leak_threshold must be positive",
        "--pooldoctor-leak-threshold=abc": "invalid float value: 'abc'",  # pytest's own
        "--pooldoctor-server=not a url": "bad database url",
        "--pooldoctor-server=sqlite:///x.db": "needs a postgresql or mysql url",
        f"--pooldoctor-report={missing}": "does not exist",
    }
    procs = {arg: subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                                    "--pooldoctor", arg, "test_ok.py"], cwd=tmp_path,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for arg in runs}
    for arg, p in procs.items():
        out, err = p.communicate(timeout=120)
        assert p.returncode == 4, (arg, out, err)
        assert err.count("ERROR: ") == 1 and runs[arg] in err, (arg, err)
        assert "Traceback" not in out + err and "passed" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test_ok.py"]


def test_garbage_in_the_runtime_dir(cli: Cli, pg_url: str, tmp_path: Path) -> None:
    """Published-holds files are read from a shared folder: damaged ones are skipped."""
    rt = tmp_path / "rt"
    rt.mkdir(mode=0o700)
    (rt / "99999991.json").write_bytes(os.urandom(5000))
    (rt / "99999992.json").write_text('{"schema": "pooldoctor.holds/1", "pid": "x", '
                                      '"holds": [1, {"site": 5}]}')
    (rt / "99999993.json").write_text('{"schema": "pooldoctor.holds/1", "pid": 99999993, '
                                      '"holds": [{"server_id": "abc", "site": {"file": 3}}]}')
    (rt / "99999994.json").write_text("[1, 2")
    (rt / f"{os.getpid()}.json").write_text(json.dumps(
        {"schema": "pooldoctor.holds/1", "pid": os.getpid(), "updated": 1e300,
         "holds": [{"server_id": None, "since": "x"}]}))
    for args in (["snapshot", pg_url], ["snapshot", pg_url, "--format", "json"],
                 ["kill", pg_url, "--holder", "*nothing*"], ["top", pg_url, "--iterations", "1"]):
        code, out, err = cli(*args, "--runtime-dir", str(rt))
        assert code == EXIT_OK and out and err == "", (args, err)
